"""The diff of two file lists (engine/history.py): what `datasets versions diff`, `save --dry-run` and the panel
show."""

from __future__ import annotations

import random

from gradient_jupyter.engine.history import diff_files, path_filter
from gradient_jupyter.engine.models import FileEntry

from .helpers import sha


def entry(path: str, content: str) -> FileEntry:
    return FileEntry(path, len(content), sha(content))


def test_added_removed_modified_renamed_unchanged_and_bytes():
    before = [
        entry("keep.csv", "same"),
        entry("gone.txt", "old file"),
        entry("data/a.csv", "1,2"),
        entry("old/name.bin", "moved bytes"),
    ]
    after = [
        entry("keep.csv", "same"),
        entry("new.txt", "brand new"),
        entry("data/a.csv", "1,2,3"),
        entry("new/name.bin", "moved bytes"),
    ]
    d = diff_files(before, after)
    assert [f.path for f in d.added] == ["new.txt"]
    assert [f.path for f in d.removed] == ["gone.txt"]
    assert [(m.path, m.before.size, m.after.size, m.before.sha256, m.after.sha256) for m in d.modified] == [
        ("data/a.csv", 3, 5, sha("1,2"), sha("1,2,3"))
    ]
    assert [(r.from_path, r.to_path, r.size) for r in d.renamed] == [("old/name.bin", "new/name.bin", 11)]
    assert d.unchanged == 1
    assert d.bytes_added == len("brand new") + 5
    assert d.bytes_removed == len("old file") + 3
    assert d.lines() == [
        "M data/a.csv",
        "D gone.txt",
        "A new.txt",
        "R old/name.bin -> new/name.bin",
        "1 added, 1 removed, 1 modified, 1 renamed, 1 unchanged; +14 B, -11 B",
    ]
    assert d.changed


def test_identical_lists_have_no_changes():
    files = [entry(f"f{i}", str(i)) for i in range(5)]
    d = diff_files(files, list(reversed(files)))
    assert not d.changed and d.unchanged == 5 and d.bytes_added == d.bytes_removed == 0
    assert d.lines() == ["0 added, 0 removed, 0 modified, 0 renamed, 5 unchanged; +0 B, -0 B"]


def test_same_size_other_bytes_is_modified():
    d = diff_files([entry("a", "xxxx")], [entry("a", "yyyy")])
    assert [m.path for m in d.modified] == ["a"] and d.unchanged == 0


def test_renames_of_identical_files_pair_in_path_order_whatever_the_input_order():
    before = [entry(p, "dup") for p in ("z", "b", "m")]
    after = [entry(p, "dup") for p in ("y", "c", "a", "q")]
    results = []
    for _ in range(5):
        random.shuffle(before)
        random.shuffle(after)
        d = diff_files(before, after)
        results.append(([(r.from_path, r.to_path) for r in d.renamed], [f.path for f in d.added]))
    assert results[0] == ([("b", "a"), ("m", "c"), ("z", "q")], ["y"])
    assert all(r == results[0] for r in results)


def test_a_copy_of_an_unchanged_file_is_added_not_renamed():
    d = diff_files([entry("a", "x")], [entry("a", "x"), entry("b", "x")])
    assert [f.path for f in d.added] == ["b"] and not d.renamed and d.unchanged == 1


def test_dicts_and_tuples_are_accepted():
    d = diff_files([{"path": "a", "size": 1, "sha256": sha("1"), "key": "k"}], [("a", 1, sha("2"))])
    assert [m.path for m in d.modified] == ["a"]
    assert d.modified[0].before.key == "k"


def test_entries_without_sha256_compare_by_size_and_never_rename():
    d = diff_files([FileEntry("a", 3), FileEntry("b", 2)], [FileEntry("a", 3), FileEntry("c", 2)])
    assert d.unchanged == 1 and [f.path for f in d.removed] == ["b"] and [f.path for f in d.added] == ["c"]


def test_include_and_exclude_globs_choose_the_paths_compared():
    before = [entry("data/a.csv", "1"), entry("data/b.json", "2"), entry("notes.md", "3")]
    after = [entry("data/a.csv", "9"), entry("data/b.json", "8"), entry("notes.md", "7")]
    assert [m.path for m in diff_files(before, after, include=["data/*"]).modified] == ["data/a.csv", "data/b.json"]
    assert [m.path for m in diff_files(before, after, include=["data/*"], exclude=["*.json"]).modified] == [
        "data/a.csv"
    ]
    assert [m.path for m in diff_files(before, after, exclude="data/*").modified] == ["notes.md"]
    keep = path_filter(["*.csv"], ["tmp/*"])
    assert keep("a/b.csv") and not keep("tmp/b.csv") and not keep("b.txt")


def test_control_characters_in_paths_cannot_forge_lines():
    d = diff_files([], [entry("evil\nD everything", "x")])
    assert d.lines()[0] == "A 'evil\\nD everything'"
    assert len(d.lines()) == 2


def test_json_form():
    d = diff_files([entry("a", "1"), entry("r", "same")], [entry("a", "22"), entry("s", "same"), entry("n", "")])
    j = d.to_json()
    assert j["added"] == [{"path": "n", "size": 0, "sha256": sha("")}]
    assert j["modified"] == [
        {
            "path": "a",
            "before": {"path": "a", "size": 1, "sha256": sha("1")},
            "after": {"path": "a", "size": 2, "sha256": sha("22")},
        }
    ]
    assert j["renamed"] == [{"from": "r", "to": "s", "size": 4, "sha256": sha("same")}]
    assert j["removed"] == [] and j["unchanged"] == 0 and j["bytesAdded"] == 2 and j["bytesRemoved"] == 1
