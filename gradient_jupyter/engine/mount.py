"""mount and unmount: a read-only folder of a committed version, like Gradient's `/datasets/<name>`.

The folder is built from the content cache (engine/cache.py): files are hard links to verified cache entries where
the file system allows, copies where not; files are 0444 and folders 0555. It is built beside DIR and swapped in,
so mounting another version at DIR replaces it at once. `DIR/.gradient/mount.json` records what the mount made:
`unmount` removes only that.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .datasets import manifest_entries
from .errors import BadInput, Conflict, IntegrityError
from .ids import DATASET_NAME
from .models import Dataset, Version
from .records import MAX_LIST, read_json_file

RECORD = Path(".gradient") / "mount.json"
FORMAT = "gradient-jupyter/mount@1"


@dataclass
class MountResult:
    dataset: Dataset
    version: Version
    folder: Path
    files: int
    size: int
    linked: int  # files that share the cache's bytes (hard links) rather than copies
    unchanged: bool = False  # that version was mounted there already: nothing was done


def default_folder(ds: Dataset, root=None) -> Path:
    """`<root or cwd>/datasets/<dataset name>`, as on Gradient. The name comes from the bucket: it becomes a folder
    name only if it has a dataset name's syntax (no '/', no '..')."""
    if not isinstance(ds.name, str) or not DATASET_NAME.fullmatch(ds.name):
        raise IntegrityError(
            f"Dataset {ds.id} has the name {ds.name!r}, which is not a dataset name: its record was "
            "forged or damaged. Give the folder to mount at.",
            reason="bad-record",
        )
    return Path(root or Path.cwd()) / "datasets" / ds.name


def mount(engine, ref: str, folder=None, *, progress=None) -> MountResult:
    """Make `folder` (default ./datasets/<dataset name>) a read-only view of the committed version `ref`.
    `progress` gets ProgressEvents ("download" phase) as files are verified into the cache and linked."""
    from .transfer import _Progress, _targets

    manifests: dict[str, dict] = {}
    ds, version = engine.datasets.resolve(ref, manifests=manifests)
    if not version.is_committed:
        raise Conflict(f"Version {version.ref} is not committed yet: commit it, then mount it.", reason="not-committed")
    manifest = manifests.get(version.version) or engine.datasets.manifest(ds, version.version) or {}
    entries = manifest_entries(manifest)
    folder = Path(folder if folder is not None else default_folder(ds)).expanduser().absolute()
    if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
        folder.rmdir()  # an empty folder (a mount point made beforehand) is taken over
    if os.path.lexists(folder) and not is_mount(folder):
        raise BadInput(
            f"{str(folder)!r} exists and is not a mount: choose another folder, or move it away "
            "(mount never replaces files it did not make).",
            reason="not-a-mount",
        )
    record = mounted(folder)
    if record and (record.get("dataset"), record.get("version")) == (ds.id, version.version):
        # e.g. the server mounting settings.yaml's integrations again at each start: no fetch, no rebuild
        return MountResult(ds, version, folder, len(entries), sum(e.size for e in entries), 0, unchanged=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.gradient-mount-"))
    try:
        targets = _targets(build, [e.path for e in entries])
        placing = _Progress(progress, "download", len(entries), sum(e.size for e in entries))

        def place(e):  # verified into the cache, then linked; all in the side folder, so a failure leaves DIR be
            reader = engine.reader(ds, version.version, e)
            try:
                linked = _place(reader.local_file(), targets[e.path])
            except FileNotFoundError:  # evicted by another fill before we linked it: fetch it again
                linked = _place(reader.local_file(), targets[e.path])
            placing.add(1, e.size)
            return linked

        linked = sum(engine.map(place, entries, engine.settings.max_concurrency))
        made = build / RECORD
        made.parent.mkdir()
        made.write_text(
            json.dumps(
                {
                    "format": FORMAT,
                    "dataset": ds.id,
                    "name": ds.name,
                    "version": version.version,
                    "files": [e.path for e in entries],
                }
            )
        )
        _set_modes(build, file_mode=0o444, dir_mode=0o555)
        if os.path.lexists(folder):
            _exchange(build, folder)  # `build` now holds the previous mount
            _remove(build)
        else:
            os.rename(build, folder)
    except BaseException:
        if build.exists():
            _set_modes(build, file_mode=None, dir_mode=0o755)
            shutil.rmtree(build, ignore_errors=True)
        raise
    return MountResult(ds, version, folder, len(entries), sum(e.size for e in entries), linked)


def unmount(folder) -> list[str]:
    """Remove what a mount made at `folder`; returns the paths of files kept because no mount made them."""
    folder = Path(folder).expanduser().absolute()
    if not is_mount(folder):
        raise BadInput(
            f"{str(folder)!r} is not a mount (no {RECORD.as_posix()} made by mount): nothing removed.",
            reason="not-a-mount",
        )
    return _remove(folder)


def is_mount(folder: Path) -> bool:
    """Whether a mount made `folder`; a record there that is not JSON of ours is refused, naming it (BadRecord)."""
    try:
        record = _record(folder)
    except OSError:
        return False
    return record is not None and record.get("format") == FORMAT and not folder.is_symlink()


def mounted(folder: Path) -> dict | None:
    """The record of the mount at `folder` (dataset id, name, version, files), or None."""
    return _record(folder) if is_mount(folder) else None


def _record(folder: Path) -> dict | None:
    return read_json_file(folder / RECORD, MAX_LIST)


def _place(src: Path, target: Path) -> bool:
    """Hard-link the cache entry at `target` (True), or copy it where links are not possible (False)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, target)
        return True
    except OSError:  # another file system, or one without hard links
        shutil.copyfile(src, target)
        os.chmod(target, 0o444)
        return False


def _set_modes(top: Path, *, file_mode: int | None, dir_mode: int) -> None:
    for dirpath, _, filenames in os.walk(top):
        os.chmod(dirpath, dir_mode)
        if file_mode is not None:
            for name in filenames:
                path = os.path.join(dirpath, name)
                if not os.path.islink(path):
                    os.chmod(path, file_mode)


def _exchange(a: Path, b: Path) -> None:
    """Swap two folders at once (Linux renameat2 RENAME_EXCHANGE); elsewhere two renames, a moment apart."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), 2) == 0:  # AT_FDCWD, RENAME_EXCHANGE
            return
    except (OSError, AttributeError):
        pass
    aside = b.with_name(b.name + ".gradient-old")
    os.rename(b, aside)
    os.rename(a, b)
    os.rename(aside, a)


def _remove(folder: Path) -> list[str]:
    """Delete the files the record lists, the record, then folders left empty; return what else was there."""
    record = _record(folder) or {}
    made = set(record.get("files", [])) if isinstance(record.get("files"), list) else set()
    _set_modes(folder, file_mode=None, dir_mode=0o755)
    kept = []
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            if rel in made or rel == RECORD.as_posix():
                path.unlink()
            else:
                kept.append(rel)
    for dirpath, _, _ in sorted(os.walk(folder), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)
    return sorted(kept)
