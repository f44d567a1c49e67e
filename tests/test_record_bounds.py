"""Records from outside are bounded (docs/threat-model.md): a bucket record, a hint file of the data home, or a
record a load or a mount keeps in a folder that is nested deeper than any the engine writes (100 KB of '[') or larger
than its limit is refused by engine/records.py `read_json` before parsing; a listing skips it with a warning and
the others still show, any other read names it. Through a real Jupyter server and the console script."""

from __future__ import annotations

import json

import pytest

from gradient_jupyter.engine.records import MAX_DEPTH, MAX_RECORD, BadRecord, read_json

from .helpers import cli, make_folder

pytestmark = pytest.mark.reliability

DEEP = b"[" * 100_000  # raised RecursionError in json.loads: every listing answered 500


def put(engine, key: str, data: bytes) -> None:
    engine.store(engine.registry.managed()).put_bytes(key, data)


def test_read_json_bounds_depth_and_size_and_keeps_what_strings_hold():
    def nested(n):
        return b"[" * n + b"]" * n

    assert read_json(b'{"a": ' + nested(MAX_DEPTH - 1) + b"}", "k") == {"a": json.loads(nested(MAX_DEPTH - 1))}
    for raw in (b'{"a": ' + nested(MAX_DEPTH) + b"}", DEEP, b"{" * 50_000, b'{"a": [}'):
        with pytest.raises(BadRecord, match="not JSON"):
            read_json(raw, "teams/t/x.json")
    # brackets, escaped quotes and backslashes inside strings are text, not nesting
    text = {"p": "[[[[[[[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{{{{{{{{{{{", "q": 'a\\"[\\', "r": '"' * 40 + "]]"}
    assert read_json(json.dumps(text).encode(), "k") == text
    with pytest.raises(BadRecord, match=f"larger than {MAX_RECORD} bytes") as info:
        read_json(b"{}" + b" " * MAX_RECORD, "teams/t/datasets/x/dataset.json")
    assert "teams/t/datasets/x/dataset.json" in info.value.message


async def test_a_deeply_nested_record_is_skipped_in_rest_listings_and_named_when_asked(api, engine_of):
    codes = [(await api("POST", "datasets", {"name": name}))[0] for name in ("fine", "poisoned", "huge")]
    assert codes == [201, 201, 201]
    by_name = {d.name: d for d in engine_of.datasets.list()}
    layout = engine_of.datasets.layout
    deep_key = layout.dataset(by_name["poisoned"].id) + "dataset.json"
    put(engine_of, deep_key, DEEP)
    put(engine_of, layout.dataset(by_name["huge"].id) + "dataset.json", b"{}" + b" " * (MAX_RECORD + 1))
    code, body = await api("GET", "datasets")
    assert code == 200 and [d["name"] for d in body["datasets"]] == ["fine"], body
    code, body = await api("GET", f"datasets/{by_name['poisoned'].id}")
    assert code == 502 and body["reason"] == "bad-record" and deep_key in body["message"], body
    assert "nested" in body["message"]


def test_the_console_lists_around_a_poisoned_record_hint_and_pending_list(engine, tmp_path):
    data = make_folder(tmp_path / "data", {"a.csv": b"1,2\n"})
    for name in ("fine", "poisoned"):
        assert cli("save", name, data).returncode == 0
    poisoned = engine.datasets.get("poisoned")
    layout = engine.datasets.layout
    deep_key = layout.dataset(poisoned.id) + "dataset.json"
    put(engine, deep_key, DEEP)
    for hint in ("dataset-names.json", "latest-versions.json", "bucket-regions.json"):
        (engine.home / "cache" / hint).parent.mkdir(parents=True, exist_ok=True)
        (engine.home / "cache" / hint).write_bytes(DEEP)
    listing = cli("datasets", "list")
    assert listing.returncode == 0 and "fine" in listing.stdout and "poisoned" not in listing.stdout, listing
    assert deep_key in listing.stderr and "Traceback" not in listing.stderr, listing.stderr
    asked = cli("datasets", "versions", "list", "--id", poisoned.id)
    assert asked.returncode == 1 and deep_key in asked.stderr and "nested" in asked.stderr, asked.stderr

    # a save's list of what it uploads (pending.json) is only a way to reuse leftovers: a forged one is passed over
    fine = engine.datasets.get("fine")
    draft = engine.datasets.create_version(fine)
    pending_key = layout.pending(fine.id, draft.version)
    put(engine, pending_key, DEEP)
    saved = cli("save", "fine", make_folder(tmp_path / "more", {"b.csv": b"3,4\n"}))
    assert saved.returncode == 0 and "Traceback" not in saved.stderr, saved.stderr
    loaded = cli("load", "fine", tmp_path / "out")
    assert loaded.returncode == 0, loaded.stderr
    assert (tmp_path / "out" / "b.csv").read_bytes() == b"3,4\n"


def test_a_poisoned_load_record_counts_as_unknown_and_a_poisoned_mount_record_is_named(engine, tmp_path):
    assert cli("save", "ds", make_folder(tmp_path / "data", {"a.csv": b"1,2\n"})).returncode == 0
    dest = tmp_path / "out"
    assert cli("load", "ds", dest).returncode == 0
    (dest / ".gradient" / "loaded.json").write_bytes(DEEP)
    again = cli("load", "ds", dest)  # the file there is the version's: nothing to do, nothing refused
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
    (dest / "a.csv").write_bytes(b"mine")  # no trusted record says load wrote it: a local change, kept
    refused = cli("load", "ds", dest)
    assert refused.returncode == 1 and (dest / "a.csv").read_bytes() == b"mine", refused.stderr

    folder = tmp_path / "mounted"
    assert cli("mount", "ds", folder).returncode == 0, "mount"
    (record,) = (engine.home / "mounts").iterdir()  # what a mount made is recorded in the data home, not in DIR
    record.write_bytes(DEEP)
    gone = cli("unmount", folder)
    assert gone.returncode == 1 and str(record) in gone.stderr and "Traceback" not in gone.stderr, gone.stderr
    assert (folder / "a.csv").exists()  # nothing removed
    remount = cli("mount", "ds", folder)
    assert remount.returncode == 1 and str(record) in remount.stderr, remount.stderr
