"""Where a load writes: every target checked inside DEST (no link out of it, no two paths naming one file), what is
there already (local changes), the record of what loads wrote (DEST/.gradient/loaded.json), and what a killed load
left behind."""

from __future__ import annotations

import json
import os
import stat
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..datasets import skipped
from ..errors import (
    BadInput,
)
from ..ids import check_file_path
from ..models import FileEntry
from ..processes import process_alive
from ..records import BadRecord, read_json_file

if TYPE_CHECKING:
    from ..core import Engine


def same_name_groups(paths: Iterable[str], *, case_insensitive: bool, normalizing: bool) -> list[list[str]]:
    """Groups of paths that would name one file on a file system that ignores case and/or Unicode normalization
    (NFC and NFD spellings of 'é' are one name on macOS). Empty when every path keeps its own file."""

    def key(path: str) -> str:
        if normalizing:
            path = unicodedata.normalize("NFC", path)
        return path.casefold() if case_insensitive else path

    groups: dict[str, list[str]] = {}
    for path in paths:
        groups.setdefault(key(path), []).append(path)
    return [sorted(g) for g in groups.values() if len(g) > 1]


def folder_folds(folder: Path) -> tuple[bool, bool]:
    """(ignores case, ignores Unicode normalization) for the file system holding `folder` (or its nearest existing
    parent), found by creating one probe file there and asking for it under another spelling."""
    base = folder
    while not base.is_dir() and base != base.parent:
        base = base.parent
    fd, probe = tempfile.mkstemp(dir=base, prefix=".gradient-probe-\u00e9a-")
    os.close(fd)
    try:
        head, name = os.path.split(probe)
        other_case = os.path.join(head, name.replace("a-", "A-", 1))
        other_form = os.path.join(head, unicodedata.normalize("NFD", name))
        return os.path.exists(other_case), os.path.exists(other_form)
    finally:
        os.unlink(probe)


def check_same_names(dest: Path, paths: list[str]) -> None:
    """Refuse a load whose paths would overwrite each other on this file system (case- or normalization-blind)."""
    if not same_name_groups(paths, case_insensitive=True, normalizing=True):
        return  # no two paths could ever meet: no need to ask the file system
    case_insensitive, normalizing = folder_folds(dest)
    clashes = same_name_groups(paths, case_insensitive=case_insensitive, normalizing=normalizing)
    if clashes:
        how = " and ".join(w for w, on in (("case", case_insensitive), ("Unicode normalization", normalizing)) if on)
        shown = "; ".join(" = ".join(repr(p) for p in g) for g in clashes[:5])
        raise BadInput(
            f"Cannot load into {str(dest)!r}: its file system ignores {how}, so these paths of the "
            f"version would be one file and overwrite each other: {shown}. Load them apart with "
            "--include/--exclude, or into a folder on a file system that tells them apart.",
            reason="same-name",
        )


class _Targets(Mapping[str, Path]):
    """path in the version -> `dest / path`, each Path made when first asked for: a load that finds every file in
    place never makes thousands of them."""

    def __init__(self, dest: Path, paths: list[str]):
        self.dest, self._paths = dest, dict.fromkeys(paths)

    def __getitem__(self, path: str) -> Path:
        made = self._paths[path]
        if made is None:
            made = self._paths[path] = self.dest / path
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


def target_paths(
    dest: Path, paths: Iterable[str], files: dict[str, os.stat_result] | None = None
) -> Mapping[str, Path]:
    """Where each manifest path lands. Hostile paths (absolute, '..', backslash, NUL, or escaping dest through a
    link) are refused. Plain strings and one lstat per file: this runs for every file of every load. `files`, if
    given, receives the stat of each target that is a regular file already (through a link: the file it names),
    so that a load need not ask again."""
    real_dest = os.path.realpath(dest)
    inside = real_dest.rstrip(os.sep) + os.sep
    folders: dict[str, str] = {}  # folder of the manifest ("" is dest) -> where it really is
    out = []
    for path in paths:
        try:
            check_file_path(path)
        except BadInput as exc:
            raise BadInput(
                f"Refusing manifest path {path!r}: it is absolute, contains '..', a backslash or NUL (so it could "
                "write outside the destination), or names .git or .gradient. The manifest was forged or damaged.",
                reason="hostile-path",
            ) from exc
        folder, _, name = path.rpartition("/")
        real = os.path.join(folders.get(folder) or _real_folder(dest, folder, folders, path), name)
        try:
            st: os.stat_result | None = os.lstat(real)
        except OSError:
            st = None
        mode = st.st_mode if st else 0
        if stat.S_ISLNK(mode):
            real = os.path.realpath(real)
            try:
                st = os.stat(real)
            except OSError:
                st = None
        if stat.S_ISDIR(mode) or stat.S_ISLNK(mode) and os.path.isdir(real):
            raise BadInput(f"Cannot load {path!r}: {str(dest / path)!r} is a folder.", reason="not-a-file")
        if real != real_dest and not real.startswith(inside):
            raise BadInput(
                f"Refusing manifest path {path!r}: it would land outside {str(dest)!r}.", reason="hostile-path"
            )
        if files is not None and st is not None and stat.S_ISREG(st.st_mode):
            files[path] = st
        out.append(path)
    return _Targets(dest, out)


def _real_folder(dest: Path, folder: str, folders: dict[str, str], path: str) -> str:
    """The real location of a folder of the manifest (below dest), each folder checked once."""
    if folder not in folders:
        parent, _, name = folder.rpartition("/")
        real = os.path.join(_real_folder(dest, parent, folders, path), name) if folder else os.path.realpath(dest)
        if os.path.islink(real):
            real = os.path.realpath(real)
        if os.path.lexists(real) and not os.path.isdir(real):
            raise BadInput(
                f"Cannot load {path!r}: {str(dest / folder)!r} exists and is not a folder. Move it away "
                "or load into another folder.",
                reason="not-a-folder",
            )
        folders[folder] = real
    return folders[folder]


RECORD = ".gradient/loaded.json"  # inside DEST: what loads wrote there, path -> [SHA-256, size]


def read_record(dest: Path) -> dict[str, tuple[str, int]]:
    """What earlier loads wrote into `dest` (empty if nothing, or if the record is not ours to trust)."""
    try:
        files = (read_json_file(dest / RECORD) or {}).get("files")
    except OSError:
        return {}
    except BadRecord as exc:  # not ours: every file there counts as a local change
        skipped(exc)
        return {}
    if not isinstance(files, dict):
        return {}
    return {
        p: (v[0], v[1])
        for p, v in files.items()
        if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], int)
    }


def write_record(dest: Path, entries: list[FileEntry]) -> None:
    """Remember that `dest` now holds these entries' bytes (merged with what earlier loads wrote); a record that
    says so already is left as it is."""
    recorded = read_record(dest)
    if all(recorded.get(e.path) == (e.sha256, e.size) for e in entries):
        return
    files = {p: list(v) for p, v in recorded.items()}
    files.update({e.path: [e.sha256, e.size] for e in entries})
    folder = dest / ".gradient"
    folder.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".loaded-", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps({"format": "gradient-jupyter/loaded@1", "files": files}))
    os.replace(tmp, dest / RECORD)


def local_state(engine: Engine, target: Path, entry: FileEntry, recorded: tuple[str, int] | None) -> tuple[bool, bool]:
    """(same, changed) for one file of DEST that the hash cache does not know: it already holds the entry's bytes;
    it holds bytes that neither the version nor the last load there wrote (a local change, which load never
    overwrites silently)."""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return False, False
    if not stat.S_ISREG(st.st_mode):
        return False, True
    if st.st_size != entry.size and (recorded is None or recorded[1] != st.st_size):
        return False, True  # neither size matches: no need to read it
    return recorded_state(entry, recorded, engine.hash_cache.fresh(target, st))


def recorded_state(entry: FileEntry, recorded: tuple[str, int] | None, held: tuple[str, int]) -> tuple[bool, bool]:
    """(same, changed) of a file of DEST holding bytes with SHA-256 and size `held`."""
    same = held == (entry.sha256, entry.size)
    return same, not same and held != recorded


def remove_leftover_parts(folders: Iterable[Path]) -> None:
    """Temporary files a killed load left behind (their process is gone): the next load into DEST that writes files
    removes them. A killed load leaves them only beside files it had not put in place yet, which the next load of
    that version writes; a load that writes nothing does not read every folder of DEST for them."""
    for folder in folders:
        try:
            names = [d.name for d in os.scandir(folder) if d.is_file(follow_symlinks=False)]
        except OSError:
            continue
        for name in names:
            if not (name.startswith(".gradient-") and name.endswith(".part")):
                continue
            pid = name.split("-")[1]
            if pid.isdigit() and process_alive(int(pid)):
                continue  # another load is writing it right now
            try:
                os.unlink(folder / name)
            except OSError:
                pass


def missing_dirs(dest: Path, targets: list[Path]) -> set[Path]:
    missing = set()
    for t in targets:
        p = t.parent
        while not p.exists() and p not in missing:
            missing.add(p)
            if p == dest or p.parent == p:
                break
            p = p.parent
    if not dest.exists():
        missing.add(dest)
    return missing
