"""Save and load decide before they write (engine/transfer/ `plan_load`, `plan_uploads`): a load skips what is
already there and refuses local changes, writing nothing while it plans; a save sends only new bytes."""

from __future__ import annotations

import pytest

from gradient_jupyter.engine import LocalChanges, transfer

from .helpers import make_folder, read_folder


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


def test_a_save_sends_new_bytes_and_points_at_what_arrived_and_what_the_dataset_holds():
    from gradient_jupyter.engine.models import FileEntry

    entries = [
        FileEntry("old.csv", 3, "a" * 64),
        FileEntry("moved.csv", 3, "a" * 64),
        FileEntry("resumed.bin", 5, "b" * 64),
        FileEntry("new.txt", 1, "c" * 64),
    ]
    known = {("a" * 64, 3): "te1/datasets/ds/versions/v1/data/old.csv"}
    arrived = {("b" * 64, 5): "te1/datasets/ds/versions/v0/data/resumed.bin"}
    to_send, resumed, final = transfer.plan_uploads(entries, known, arrived, lambda e: f"v2/data/{e.path}")
    assert [e.path for e in to_send] == ["new.txt"] and [e.path for e in resumed] == ["resumed.bin"]
    assert [e.key for e in final] == ["te1/datasets/ds/versions/v1/data/old.csv"] * 2 + [
        "te1/datasets/ds/versions/v0/data/resumed.bin",  # no second copy: the draft's object
        "v2/data/new.txt",
    ]


def test_a_glob_given_as_one_string_is_one_glob_not_its_characters(engine, tmp_path):
    """`include`/`exclude` take one glob or several, in load and diff alike (engine/history.py `path_filter`): the
    string "*.csv" once stood for the globs "*", ".", "c", "s", "v", and "*" let every file through."""
    data = make_folder(tmp_path / "data", {"a.csv": b"1\n", "b.txt": b"b", "sub/c.csv": b"3\n"})
    transfer.save(engine, "globbed", data)
    assert [e.path for e in transfer.plan_load(engine, "globbed", tmp_path / "one", include="*.csv").todo] == [
        "a.csv",
        "sub/c.csv",
    ]
    transfer.load(engine, "globbed", tmp_path / "out", exclude="*.csv")
    assert read_folder(tmp_path / "out") == {"b.txt": b"b"}
