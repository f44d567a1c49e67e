"""History: what changed between two file lists, and where each version came from (its lineage).

`diff_files` is the diff behind `datasets versions diff`, `save --dry-run` and the panel: pure and fast (no store,
no file bytes, linear in the number of files). `diff` compares two committed versions from their manifests.
`created_by` and `check_lineage` make and check a version's `parent`/`createdBy`. See README.md, "History".
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import BadInput, Conflict, NotFound
from .formatting import human_bytes
from .ids import VERSION_ID
from .models import FileEntry
from .processes import this_host

if TYPE_CHECKING:
    from .core import Engine

log = logging.getLogger("gradient_jupyter")


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
        return {
            "added": [f.to_json() for f in self.added],
            "removed": [f.to_json() for f in self.removed],
            "modified": [m.to_json() for m in self.modified],
            "renamed": [r.to_json() for r in self.renamed],
            "unchanged": self.unchanged,
            "bytesAdded": self.bytes_added,
            "bytesRemoved": self.bytes_removed,
            "from": self.before_ref,
            "to": self.after_ref,
        }

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
        return (
            f"{len(self.added)} added, {len(self.removed)} removed, {len(self.modified)} modified, "
            f"{len(self.renamed)} renamed, {self.unchanged} unchanged; "
            f"+{human_bytes(self.bytes_added)}, -{human_bytes(self.bytes_removed)}"
        )

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


def _index(items: Iterable, keep) -> dict:
    """path -> ((size, sha256), item). Entries are made only for what changed: most files of a diff do not."""
    out = {}
    for item in items:
        if isinstance(item, dict):
            path, same = item["path"], (item["size"], item.get("sha256"))
        elif isinstance(item, FileEntry):
            path, same = item.path, (item.size, item.sha256)
        else:
            path, same = item[0], (item[1], item[2])
        if keep is None or keep(path):
            out[path] = (same, item)
    return out


def diff_files(
    before: Iterable,
    after: Iterable,
    *,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    before_ref: str | None = None,
    after_ref: str | None = None,
) -> Diff:
    """What changed from the file list `before` to `after`.

    Entries are FileEntry objects, manifest-style dicts (`path`, `size`, `sha256`) or (path, size, sha256) tuples.
    Two entries hold the same bytes when size and SHA-256 are equal (an entry without SHA-256 is compared by size
    and only equals another without one). A path removed and another added with the same bytes is a rename;
    when several removed and added paths share the same bytes, they pair in path order, so the result never
    depends on input order. Only entries whose path passes `include`/`exclude` (see `path_filter`) are compared.
    """
    keep = path_filter(include, exclude) if include or exclude else None
    old, new = _index(before, keep), _index(after, keep)
    out = Diff(before_ref=before_ref, after_ref=after_ref)
    gone = []
    for path, (same, a) in old.items():
        b = new.get(path)
        if b is None:
            gone.append(_entry(a))
        elif same == b[0]:
            out.unchanged += 1
        else:
            out.modified.append(Modified(path, _entry(a), _entry(b[1])))
    came = [_entry(b) for path, (_, b) in new.items() if path not in old]
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
        if targets and e.sha256:
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


# -- lineage: where a version came from ---------------------------------------------------------------------------
GIT_COMMIT = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")  # SHA-1 or SHA-256 object names
_TEXT_FIELDS = {"user": 256, "host": 256, "tool": 256, "notebook": 4096}  # field -> longest value believed


def created_by(path=None) -> dict:
    """`createdBy` of a new version: user, host, tool, the notebook when run in a kernel Jupyter started (it sets
    `JPY_SESSION_NAME` to the notebook's path), and `gitCommit` + `dirty` when `path` is inside a git work tree."""
    from ..version import __version__

    out = {"user": _user(), "host": this_host(), "tool": f"gradient-jupyter {__version__}"}
    notebook = os.environ.get("JPY_SESSION_NAME")
    if notebook:
        out["notebook"] = notebook
    if path is not None:
        out.update(git_state(path))
    checked = check_created_by(out, "this process")
    assert checked is not None  # it is a dict: made just above
    return checked


def _user() -> str:
    """The person: JupyterHub's user where a hub started this process (it sets JUPYTERHUB_USER), else the OS
    user. Requests through the server APIs name jupyter_server's user instead (server/service.py)."""
    import getpass

    hub_user = os.environ.get("JUPYTERHUB_USER")
    if hub_user:
        return hub_user

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid without a passwd entry (some containers)
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def git_state(path) -> dict:
    """{"gitCommit", "dirty"} of the git work tree holding `path` (dirty: changes under `path`, untracked files
    included), asked of the `git` executable; {} when there is no git, no work tree or no commit yet."""
    import shutil
    import subprocess  # here, like getpass above: loading and reading versions never need them

    git = shutil.which("git")
    if git is None or not os.path.isdir(path):
        return {}
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}  # a status never takes the index lock

    def ask(*words) -> str | None:
        done = subprocess.run([git, *words], cwd=path, capture_output=True, text=True, timeout=60, env=env)
        return done.stdout.strip() if done.returncode == 0 else None

    try:
        commit = ask("rev-parse", "--verify", "--quiet", "HEAD")
        if not commit or not GIT_COMMIT.fullmatch(commit):
            return {}
        status = ask("status", "--porcelain", "--", ".")
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("git could not tell the commit of %s: %s", path, exc)
        return {}
    return {"gitCommit": commit} if status is None else {"gitCommit": commit, "dirty": bool(status)}


def check_lineage(info: dict, where: str) -> tuple[str | None, dict | None]:
    """`parent` and `createdBy` of a version record, as far as they can be believed: bucket data is untrusted, so
    a field of the wrong shape is dropped with a warning naming `where` (the record's key); the rest still shows."""
    parent = info.get("parent")
    if parent is not None and not (isinstance(parent, str) and VERSION_ID.fullmatch(parent)):
        log.warning("Ignoring the parent recorded in %s: %r is not a version id.", where, parent)
        parent = None
    by = info.get("createdBy")
    return parent, None if by is None else check_created_by(by, where)


def check_created_by(by, where: str) -> dict | None:
    if not isinstance(by, dict):
        log.warning("Ignoring createdBy in %s: it is not an object.", where)
        return None
    out: dict[str, str | bool] = {}
    bad: list[str] = []
    for name, limit in _TEXT_FIELDS.items():
        value = by.get(name)
        if isinstance(value, str) and 0 < len(value) <= limit and value.isprintable():
            out[name] = value
        elif value is not None:
            bad.append(name)
    commit, dirty = by.get("gitCommit"), by.get("dirty")
    if isinstance(commit, str) and GIT_COMMIT.fullmatch(commit):
        out["gitCommit"] = commit
        if isinstance(dirty, bool):
            out["dirty"] = dirty
        elif dirty is not None:
            bad.append("dirty")
    elif commit is not None:
        bad.append("gitCommit")
    if bad:
        log.warning("Ignoring createdBy field(s) %s in %s: not of the expected shape.", ", ".join(bad), where)
    return out


def who(by: dict | None) -> str:
    """`user@host` of a createdBy, for one-line listings ('' when not recorded)."""
    if not by:
        return ""
    return "@".join(part for part in (by.get("user"), by.get("host")) if part)


# -- the diff of two versions ------------------------------------------------------------------------------------
def diff(
    engine: Engine, ref_a: str, ref_b: str | None = None, *, include: Iterable[str] = (), exclude: Iterable[str] = ()
) -> Diff:
    """What changed from version `ref_a` to version `ref_b` of one dataset; without `ref_b`, what changed in
    `ref_a` since its parent (for versions made before parents were recorded: the committed version before it).
    Read from the two manifests only: no file bytes. Both versions must be committed."""
    datasets = engine.datasets
    manifests: dict[str, dict] = {}
    ds, a = datasets.resolve(ref_a, manifests=manifests)
    _must_be_committed(a)
    if ref_b is not None:
        ds_b, b = datasets.resolve(ref_b, manifests=manifests)
        if ds_b.id != ds.id:
            raise BadInput(
                f"{ref_a!r} and {ref_b!r} are versions of two datasets ({ds.name} and {ds_b.name}): "
                f"compare versions of one dataset, e.g. --to {ds.name}:<version or tag>.",
                reason="two-datasets",
            )
        _must_be_committed(b)
        before, after = a, b
    else:
        before, after = _parent_of(datasets, ds, a, manifests), a

    def files(v) -> list[dict]:  # the manifest's entries as they are: diff_files reads dicts without copying
        if v is None:
            return []
        manifest = manifests.get(v.version) or datasets.manifest(ds, v.version)
        if manifest is None:
            raise NotFound(f"Version {v.ref} was deleted while being compared.", reason="unknown-version")
        return manifest["files"]

    return diff_files(
        files(before),
        files(after),
        include=include,
        exclude=exclude,
        before_ref=before.ref if before else None,
        after_ref=after.ref,
    )


def _must_be_committed(v) -> None:
    if not v.is_committed:
        raise Conflict(
            f"Version {v.ref} is not committed: only committed versions can be compared. Commit it "
            f"first (datasets versions commit --id {v.ref}), or see its files with "
            f"'datasets files list --id {v.ref}'.",
            reason="not-committed",
        )


def _parent_of(datasets, ds, v, manifests: dict):
    """The version `v` was made from: its recorded parent, nothing for a first version, or (when it predates
    recorded lineage) the committed version just before it."""
    if v.parent is not None:
        try:
            parent = datasets.get_version(ds, v.parent)
        except NotFound as exc:
            raise NotFound(
                f"The parent of {v.ref}, version {v.parent}, no longer exists (it was deleted): "
                f"compare with another version instead, with --to.",
                reason="unknown-parent",
            ) from exc
        _must_be_committed(parent)
        return parent
    if v.created_by is not None:  # lineage recorded, no parent: the dataset's first version
        return None
    older = [
        o
        for o in datasets.list_versions(ds, committed=True, manifests=manifests)
        if (o.dt_committed, o.version) < (v.dt_committed, v.version)
    ]
    return older[0] if older else None
