"""`latest` is the newest committed version as the bucket holds it now, even when this machine remembers which
version was latest and reads that version's records with the listings in one round (engine/datasets/versions.py):
a version committed elsewhere since, a deleted one, a draft committed since, a rename and a new tag all show."""

from __future__ import annotations

import pytest

from gradient_jupyter.engine import Engine, GradientStorage, NotFound
from gradient_jupyter.engine.transfer import load, save

from .helpers import make_folder, read_folder


def other_machine() -> Engine:
    """Another engine on the same bucket; it never reads this engine's memory of what was latest."""
    return Engine(GradientStorage())


def test_latest_follows_the_bucket_after_it_was_remembered(engine, tmp_path):
    first = save(engine, "moving", make_folder(tmp_path / "v1", {"a.txt": b"one"}))
    assert load(engine, "moving", tmp_path / "out").version.version == first.version.version
    assert load(engine, "moving", tmp_path / "out").version.version == first.version.version  # as remembered

    second = save(other_machine(), "moving", make_folder(tmp_path / "v2", {"a.txt": b"two"}), message="second")
    again = load(engine, "moving", tmp_path / "out2")
    assert again.version.version == second.version.version and again.version.message == "second"
    assert read_folder(tmp_path / "out2") == {"a.txt": b"two"}

    other_machine().datasets.update_version("moving", second.version.version, message="renamed message")
    assert engine.datasets.resolve("moving")[1].message == "renamed message"
    other_machine().datasets.set_tag("moving", "gold", second.version.version)
    assert engine.datasets.resolve("moving")[1].tags == ("gold",)

    others = other_machine()  # a delete of the second version cut short once its manifest was gone
    others.store(second.dataset.storage_provider_id).delete(
        [others.datasets.manifest_key(second.dataset.id, second.version.version)]
    )
    assert engine.datasets.resolve("moving")[1].version == first.version.version
    assert engine.datasets.resolve(first.dataset.id)[1].version == first.version.version  # by id too
    other_machine().datasets.delete_version("moving", first.version.version)
    with pytest.raises(NotFound, match="no committed version"):
        engine.datasets.resolve("moving")


def test_a_draft_committed_since_can_be_latest(engine, tmp_path):
    first = save(engine, "drafted", make_folder(tmp_path / "v1", {"a.txt": b"one"}))
    draft = engine.datasets.create_version("drafted", message="draft")
    assert engine.datasets.resolve("drafted")[1].version == first.version.version
    others = other_machine()
    others.datasets.put_file("drafted", draft.version, "a.txt", b"draft bytes")
    others.datasets.commit("drafted", draft.version)
    assert engine.datasets.resolve("drafted")[1].version == draft.version


def test_a_renamed_or_deleted_dataset_is_not_found_by_its_old_name(engine, tmp_path):
    save(engine, "before", make_folder(tmp_path / "v1", {"a.txt": b"one"}))
    assert engine.datasets.resolve("before")[1].is_committed
    other_machine().datasets.update("before", name="after")
    with pytest.raises(NotFound):
        engine.datasets.resolve("before")
    assert engine.datasets.resolve("after")[0].name == "after"
    other_machine().datasets.delete("after")
    with pytest.raises(NotFound):
        engine.datasets.resolve("after")
