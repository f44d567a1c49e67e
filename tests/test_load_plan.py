"""A load decides before it writes (engine/transfer.py `plan_load`): what is already there is skipped, a local
change refuses the load, and planning writes nothing."""
from __future__ import annotations

import pytest

from gradient_jupyter.engine import LocalChanges, transfer

from .test_datasets import make_folder, read_folder


def test_the_plan_fetches_only_what_dest_lacks_and_writes_nothing(engine, tmp_path):
    data = make_folder(tmp_path / "data", {"a.csv": b"1,2\n", "b.csv": b"3,4\n", "sub/c.txt": b"c"})
    transfer.save(engine, "planned", data, message="first")
    dest = tmp_path / "dest"
    transfer.load(engine, "planned", dest)
    (dest / "b.csv").unlink()
    before = read_folder(dest)
    plan = transfer.plan_load(engine, "planned", dest)
    assert [e.path for e in plan.todo] == ["b.csv"] and len(plan.entries) == 3
    assert plan.targets["sub/c.txt"] == dest / "sub" / "c.txt"
    assert read_folder(dest) == before  # planning wrote nothing
    (dest / "a.csv").write_bytes(b"my edit\n")
    with pytest.raises(LocalChanges) as refused:
        transfer.plan_load(engine, "planned", dest)
    assert refused.value.paths == ["a.csv"]
    assert [e.path for e in transfer.plan_load(engine, "planned", dest, overwrite=True).todo] == ["a.csv", "b.csv"]
