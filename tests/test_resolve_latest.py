"""`latest` is the newest committed version as the bucket holds it now, even when this machine remembers which
version was latest and reads that version's records with the listings in one round (engine/datasets/refs.py):
a version committed elsewhere since, a deleted one, a draft committed since, a rename and a new tag all show."""

from __future__ import annotations

import json

import pytest

from gradient_jupyter.engine import Engine, GradientStorage, NotFound
from gradient_jupyter.engine.records import BadRecord
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


def test_a_hint_claiming_the_newest_version_is_older_changes_nothing(engine, tmp_path):
    """The data home's cache/latest-versions.json only spares round trips: one that names an older version as the
    latest, and the newest among those older than it, is not believed (docs/threat-model.md)."""
    first = save(engine, "hinted", make_folder(tmp_path / "v1", {"a.txt": b"one"}))
    second = save(engine, "hinted", make_folder(tmp_path / "v2", {"a.txt": b"two"}))
    assert load(engine, "hinted", tmp_path / "out").version.version == second.version.version  # remembered now
    hints = engine.home / "cache" / "latest-versions.json"
    hints.write_text(json.dumps({first.dataset.id: [first.version.version, [second.version.version]]}))
    again = load(engine, "hinted", tmp_path / "out2")
    assert again.version.version == second.version.version and read_folder(tmp_path / "out2") == {"a.txt": b"two"}
    assert engine.datasets.resolve("hinted")[1].version == second.version.version


def test_save_and_load_agree_on_latest_when_a_manifest_is_bad(engine, tmp_path):
    """A bad manifest may be the newest version's, so which version is latest cannot be known: `load` and `save`
    both refuse, naming its key, rather than `save` answering "nothing changed" about an older version."""
    same = {"a.txt": b"one"}
    save(engine, "damaged", make_folder(tmp_path / "v1", same))
    second = save(engine, "damaged", make_folder(tmp_path / "v2", {"a.txt": b"two"}))
    ds, version = second.dataset, second.version.version
    key = engine.datasets.manifest_key(ds.id, version)
    engine.store(ds.storage_provider_id).put_bytes(key, json.dumps({"files": "not a list"}).encode())
    engine.datasets.manifest_cache.forget(ds.storage_provider_id, ds.id, version)
    (engine.home / "cache" / "latest-versions.json").unlink(missing_ok=True)
    with pytest.raises(BadRecord) as loading:
        load(engine, "damaged", tmp_path / "out")
    with pytest.raises(BadRecord) as saving:
        save(engine, "damaged", tmp_path / "v1")  # the first version's files: "nothing changed" if it were latest
    assert key in loading.value.message and key in saving.value.message
