"""What changed between two file lists: the diff behind `datasets versions diff`, `save --dry-run` and the panel.

Pure and fast: no store, no file bytes, linear in the number of files. See README.md, "History".
"""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .models import FileEntry
from .stores import human_bytes


@dataclass(frozen=True)
class Modified:
    """A path whose bytes changed (size and/or SHA-256)."""

    path: str
    before: FileEntry
    after: FileEntry

    def to_json(self) -> dict:
        return {"path": self.path, "before": self.before.to_json(), "after": self.after.to_json()}


@dataclass(frozen=True)
class Renamed:
    """The same bytes (SHA-256 and size) under a new path."""

    from_path: str
    to_path: str
    size: int
    sha256: str

    def to_json(self) -> dict:
        return {"from": self.from_path, "to": self.to_path, "size": self.size, "sha256": self.sha256}


@dataclass
class Diff:
    """What changed from `before` to `after`. Lists are sorted by path (renames by their new path).

    `bytes_added` counts added files and the new sizes of modified ones; `bytes_removed` counts removed files and
    the old sizes of modified ones; renamed files move no bytes. `before_ref`/`after_ref` name the two sides when
    known (a version ref, or a folder for `save --dry-run`).
    """

    added: list[FileEntry] = field(default_factory=list)
    removed: list[FileEntry] = field(default_factory=list)
    modified: list[Modified] = field(default_factory=list)
    renamed: list[Renamed] = field(default_factory=list)
    unchanged: int = 0
    bytes_added: int = 0
    bytes_removed: int = 0
    before_ref: str | None = None
    after_ref: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.modified or self.renamed)

    def to_json(self) -> dict:
        return {"added": [f.to_json() for f in self.added], "removed": [f.to_json() for f in self.removed],
                "modified": [m.to_json() for m in self.modified], "renamed": [r.to_json() for r in self.renamed],
                "unchanged": self.unchanged, "bytesAdded": self.bytes_added, "bytesRemoved": self.bytes_removed,
                "from": self.before_ref, "to": self.after_ref}

    def changes(self) -> list[tuple[str, str]]:
        """(status, text) per change, in path order: ('A', path), ('D', path), ('M', path), ('R', 'old -> new').
        Paths are shown escaped when they hold control characters (bucket data may try to forge lines)."""
        rows = [(f.path, "A", shown(f.path)) for f in self.added]
        rows += [(f.path, "D", shown(f.path)) for f in self.removed]
        rows += [(m.path, "M", shown(m.path)) for m in self.modified]
        rows += [(r.to_path, "R", f"{shown(r.from_path)} -> {shown(r.to_path)}") for r in self.renamed]
        rows.sort(key=lambda row: (row[0], row[1]))
        return [(status, text) for _, status, text in rows]

    def summary(self) -> str:
        """One line: counts and bytes."""
        return (f"{len(self.added)} added, {len(self.removed)} removed, {len(self.modified)} modified, "
                f"{len(self.renamed)} renamed, {self.unchanged} unchanged; "
                f"+{human_bytes(self.bytes_added)}, -{human_bytes(self.bytes_removed)}")

    def lines(self) -> list[str]:
        """The console form: `A path`, `D path`, `M path`, `R old -> new`, then the summary."""
        return [f"{status} {text}" for status, text in self.changes()] + [self.summary()]

    def __str__(self) -> str:
        return "\n".join(self.lines())


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def shown(path: str) -> str:
    """A path safe to print on one line: as is, or Python-quoted when it holds control characters."""
    return repr(path) if _CONTROL.search(path) else path


def path_filter(include: Iterable[str] = (), exclude: Iterable[str] = ()):
    """A predicate on file paths: matches one of `include` (when given) and none of `exclude`.

    Globs are fnmatch patterns on the whole path (`*` also crosses '/'), as for `load --include/--exclude`.
    """
    def one_regex(globs):
        globs = [globs] if isinstance(globs, str) else list(globs or ())
        return re.compile("|".join(fnmatch.translate(g) for g in globs)).match if globs else None

    inc = one_regex(include)
    exc = one_regex(exclude)
    return lambda path: (inc is None or inc(path) is not None) and (exc is None or exc(path) is None)


def _entry(item) -> FileEntry:
    if isinstance(item, FileEntry):
        return item
    if isinstance(item, dict):
        return FileEntry(item["path"], item["size"], item.get("sha256"), item.get("key"))
    path, size, sha256 = item[:3]
    return FileEntry(path, size, sha256)


def diff_files(before: Iterable, after: Iterable, *, include: Iterable[str] = (), exclude: Iterable[str] = (),
               before_ref: str | None = None, after_ref: str | None = None) -> Diff:
    """What changed from the file list `before` to `after`.

    Entries are FileEntry objects, manifest-style dicts (`path`, `size`, `sha256`) or (path, size, sha256) tuples.
    Two entries hold the same bytes when size and SHA-256 are equal (an entry without SHA-256 is compared by size
    and only equals another without one). A path removed and another added with the same bytes is a rename;
    when several removed and added paths share the same bytes, they pair in path order, so the result never
    depends on input order. Only entries whose path passes `include`/`exclude` (see `path_filter`) are compared.
    """
    keep = path_filter(include, exclude) if include or exclude else None
    old = {e.path: e for e in map(_entry, before) if keep is None or keep(e.path)}
    new = {e.path: e for e in map(_entry, after) if keep is None or keep(e.path)}
    out = Diff(before_ref=before_ref, after_ref=after_ref)
    gone = []
    for path, a in old.items():
        b = new.get(path)
        if b is None:
            gone.append(a)
        elif a.size == b.size and a.sha256 == b.sha256:
            out.unchanged += 1
        else:
            out.modified.append(Modified(path, a, b))
    came = [b for path, b in new.items() if path not in old]
    gone.sort(key=lambda e: e.path)
    came.sort(key=lambda e: e.path)
    # renames: pair removed and added paths holding the same bytes, in path order
    by_bytes: dict[tuple[str, int], list[FileEntry]] = {}
    for e in reversed(came):  # reversed: pop() then hands out the smallest path first
        if e.sha256:
            by_bytes.setdefault((e.sha256, e.size), []).append(e)
    paired: set[str] = set()
    for e in gone:
        targets = by_bytes.get((e.sha256, e.size)) if e.sha256 else None
        if targets:
            t = targets.pop()
            paired.add(t.path)
            out.renamed.append(Renamed(e.path, t.path, e.size, e.sha256))
        else:
            out.removed.append(e)
    out.added = [e for e in came if e.path not in paired]
    out.modified.sort(key=lambda m: m.path)
    out.renamed.sort(key=lambda r: r.to_path)
    out.bytes_added = sum(e.size for e in out.added) + sum(m.after.size for m in out.modified)
    out.bytes_removed = sum(e.size for e in out.removed) + sum(m.before.size for m in out.modified)
    return out
