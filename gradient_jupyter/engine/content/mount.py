"""mount and unmount: a read-only folder of a committed version, like Gradient's `/datasets/<name>`.

The folder is built from the content cache (engine/content/cache.py), beside DIR, and swapped in, so mounting another
version at DIR replaces it at once. Files are 0444 and folders 0555, but permission bits do not stop root (the usual
user of a notebook container): so a mounted file never shares its bytes with the cache or another mount in a way a
write could reach. Each is a reflink of its cache entry where the file system has them (btrfs, XFS: the blocks are
shared until written, copy-on-write, so a write changes that file only) and a copy elsewhere (ext4, tmpfs, macOS).

What a mount made is recorded in the data home (`<home>/mounts/`), never in DIR, where a loaded version, an archive or
a user can put anything: the folder's identity (device, inode) and each file's (inode, size, modification and change
times, taken once the mount was built). DIR is a mount only if it is still that folder; `unmount` removes only files
that are still the ones it made, and keeps, naming them, files that were added or written since. Mounting the version
already mounted checks each file's identity (one stat a file) and rebuilds the mount if any was written;
`verify=True` also checks every file's bytes against the version's SHA-256.

A mount made by the release before (`OLD_FORMAT`: hard links into the content cache, recorded only in DIR's marker)
is adopted only when it can be proven: every file in it is a hard link of the cache entry of the manifest file at its
path (`_adopt`). Then mount replaces it and unmount removes it as if the data home had recorded it.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BadInput, GradientError, IntegrityError
from ..hashing import CHUNK, file_chunks
from ..hints import write_atomically
from ..ids import DATASET_ID, DATASET_NAME, VERSION_ID
from ..models import Dataset, FileEntry, Version
from ..records import MAX_LIST, read_json_file

if TYPE_CHECKING:
    from ..core import Engine

FORMAT = "gradient-jupyter/mount@2"
# Made in DIR by the mount, for people to see what it is; never read. Its identity, recorded in the data home, is what
# tells the folder the mount made from any other put at that path (which may reuse the folder's inode number).
MARKER = ".gradient/mount.json"
OLD_FORMAT = "gradient-jupyter/mount@1"  # the release before: hard links into the cache, recorded in the marker only
FICLONE = 0x40049409  # Linux ioctl: make the target share the source's blocks, copy-on-write (linux/fs.h)


@dataclass
class MountResult:
    dataset: Dataset
    version: Version
    folder: Path
    files: int
    size: int
    cloned: int  # files that share the cache's blocks copy-on-write (reflinks) rather than being full copies
    unchanged: bool = False  # that version was mounted there already, as it was made: nothing was done
    repaired: list[str] = field(default_factory=list)  # files written since they were mounted: the mount was rebuilt
    kept: list[str] = field(default_factory=list)  # files of the replaced mount that it did not make, moved aside...
    kept_in: Path | None = None  # ...into this folder beside DIR
    adopted: bool = False  # it replaced a mount made by the release before (hard links into the cache)


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


def mount(engine: Engine, ref: str, folder=None, *, verify: bool = False, progress=None) -> MountResult:
    """Make `folder` (default ./datasets/<dataset name>) a read-only view of the committed version `ref`.
    `progress` gets ProgressEvents ("download" phase) as files are verified into the cache and copied. Mounting the
    version already mounted there does nothing, unless a file of it was written since (then it is rebuilt); with
    `verify`, every file's bytes are also checked against the version first."""
    ds, version, entries = engine.datasets.committed_entries(ref, "mount")
    folder = _absolute(folder if folder is not None else default_folder(ds))
    record, why = _recognised(engine, folder)
    if record is None and folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
        folder.rmdir()  # an empty folder (a mount point made beforehand) is taken over
    if os.path.lexists(folder) and record is None:
        raise BadInput(
            f"{str(folder)!r} exists and is not a mount (the data home holds no record of a mount of this folder"
            f"{why}): choose another folder, or move it away (mount never replaces files it did not make).",
            reason="not-a-mount",
        )
    repaired: list[str] = []
    adopted = bool(record and record.get("adopted"))
    if record and not adopted and (record.get("dataset"), record.get("version")) == (ds.id, version.version):
        repaired = _changed(folder, record, entries if verify else None)
        if not repaired:
            # e.g. the server mounting settings.yaml's integrations again at each start: no fetch, no rebuild
            return MountResult(ds, version, folder, len(entries), sum(e.size for e in entries), 0, unchanged=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.gradient-mount-"))
    kept: list[str] = []
    try:
        cloned, made, marker = _build(engine, ds, version, entries, build, progress)
        if os.path.lexists(folder):
            _exchange(build, folder)  # `build` now holds the previous mount
        else:
            os.rename(build, folder)
        _write_record(engine, folder, ds, version, made, marker)
        if record is not None and build.exists():
            kept = _remove(build, record)
    except BaseException:
        if build.exists() and not (record is not None and _folder_identity(build) == record.get("dir")):
            _set_modes(build, file_mode=None, dir_mode=0o755)
            shutil.rmtree(build, ignore_errors=True)
        raise
    return MountResult(
        ds,
        version,
        folder,
        len(entries),
        sum(e.size for e in entries),
        cloned,
        repaired=repaired,
        kept=kept,
        kept_in=build if kept else None,
        adopted=adopted,
    )


def _build(engine: Engine, ds: Dataset, version: Version, entries: list[FileEntry], build: Path, progress):
    """The mount's files in the side folder `build`, verified into the content cache and copied from it, read-only,
    with the marker that names the version: (files cloned, their identities, the marker's identity)."""
    from ..transfer.destination import target_paths
    from ..transfer.progress import TransferProgress

    targets = target_paths(build, [e.path for e in entries])
    placing = TransferProgress(progress, "download", len(entries), sum(e.size for e in entries))

    def place(e):  # verified into the cache, then copied; all in the side folder, so a failure leaves DIR be
        reader = engine.reader(ds, version.version, e)
        try:
            cloned = _copy(reader.local_file(), targets[e.path])
        except FileNotFoundError:  # evicted by another fill before we copied it: fetch it again
            cloned = _copy(reader.local_file(), targets[e.path])
        placing.add(1, e.size)
        return cloned

    cloned = sum(engine.map(place, entries, engine.settings.max_concurrency))
    (build / MARKER).parent.mkdir()
    (build / MARKER).write_text(json.dumps({"dataset": ds.id, "name": ds.name, "version": version.version}))
    _set_modes(build, file_mode=0o444, dir_mode=0o555)
    return cloned, _identities(build, [e.path for e in entries]), _identity(build / MARKER)


def unmount(engine: Engine, folder) -> list[str]:
    """Remove what a mount made at `folder`; returns the paths of files kept because the mount did not make them
    or they were written since."""
    folder = _absolute(folder)
    record, why = _recognised(engine, folder)
    if record is None:
        raise BadInput(
            f"{str(folder)!r} is not a mount (the data home holds no record of a mount of this folder{why}): "
            "nothing removed.",
            reason="not-a-mount",
        )
    kept = _remove(folder, record)
    _record_path(engine, folder).unlink(missing_ok=True)
    return kept


def is_mount(engine: Engine, folder) -> bool:
    return mounted(engine, folder) is not None


def mounted(engine: Engine, folder) -> dict | None:
    """The record of the mount at `folder` (dataset id, name, version, files and their identities), or None if the
    data home has none, or `folder` is no longer the folder that mount made (replaced, or a link)."""
    folder = _absolute(folder)
    record = read_json_file(_record_path(engine, folder), MAX_LIST)
    if record is None or record.get("format") != FORMAT or record.get("folder") != str(folder):
        return None
    if folder.is_symlink() or not folder.is_dir() or _folder_identity(folder) != record.get("dir"):
        return None
    if record.get("marker") is None or _identity(folder / MARKER) != record["marker"]:
        return None  # another folder at that path, even with the same inode number: not the one the mount made
    return record if isinstance(record.get("files"), dict) else None


def _recognised(engine: Engine, folder: Path) -> tuple[dict | None, str]:
    """What mount and unmount take `folder` for: the data home's record of its mount, else the record of a proven
    mount of the release before (`_adopt`), else None and why a marker of that release was not believed ("" if the
    folder has none), to add to the refusal."""
    record = mounted(engine, folder)
    if record is not None:
        return record, ""
    try:
        return _adopt(engine, folder), ""
    except BadInput as exc:
        return None, f"; its {MARKER} says an earlier release mounted it, but {exc.message}"


def _adopt(engine: Engine, folder: Path) -> dict | None:
    """The record of a mount the release before made at `folder`, which kept its record only in DIR's marker
    (`OLD_FORMAT`, untrusted: anyone can write one), or None if the folder has no such marker. Believed only if
    every regular file in the folder but the marker is a hard link of the content cache's entry for the manifest
    file at its path (same device and inode), with no links or other files: bytes only the product put there. The
    entries those links shared may have been written through (by root, whom 0444 does not stop): each is hashed,
    and one that does not match the manifest is dropped from the cache, its file left out of the record (kept, named,
    like a file written since). BadInput says why the folder is not such a mount."""
    old = _old_version(engine, folder)
    if old is None:
        return None
    ds, version, entries = old
    files = {}
    for e in _cache_links(engine, folder, entries):
        if _holds(folder / e.path, e):
            made = _identity(folder / e.path)
            assert made is not None
            files[e.path] = [*made[:4], None]  # building the next mount sets the entry's access time: its ctime
        else:
            engine.content_cache.discard(str(e.sha256))  # written through the link: the cache keeps verified bytes only
    return {
        "format": FORMAT,
        "folder": str(folder),
        "dir": _folder_identity(folder),
        "marker": _identity(folder / MARKER),
        "dataset": ds.id,
        "name": ds.name,
        "version": version,
        "files": files,
        "adopted": True,
    }


def _old_version(engine: Engine, folder: Path) -> tuple[Dataset, str, list[FileEntry]] | None:
    """The dataset, version and files the marker of the release before in `folder` names, or None if it has none."""
    if folder.is_symlink() or not folder.is_dir() or _identity(folder / MARKER) is None:
        return None
    try:
        marker = read_json_file(folder / MARKER, MAX_LIST)
    except GradientError:
        return None
    if not isinstance(marker, dict) or marker.get("format") != OLD_FORMAT:
        return None
    dataset, version = marker.get("dataset"), marker.get("version")
    if not isinstance(dataset, str) or not DATASET_ID.fullmatch(dataset):
        raise BadInput("it names no dataset id", reason="not-a-mount")
    if not isinstance(version, str) or not VERSION_ID.fullmatch(version):
        raise BadInput("it names no version", reason="not-a-mount")
    try:
        ds, found, entries = engine.datasets.committed_entries(f"{dataset}:{version}", "mount")
    except GradientError as exc:
        raise BadInput(f"its version cannot be read ({exc.message})", reason="not-a-mount") from exc
    if (ds.id, found.version) != (dataset, version):  # a tag named like the version id wins in a ref
        raise BadInput(f"its version {dataset}:{version} cannot be read", reason="not-a-mount")
    return ds, version, entries


def _cache_links(engine: Engine, folder: Path, entries: list[FileEntry]) -> list[FileEntry]:
    """The manifest files whose paths in `folder` are hard links of their content cache entries; BadInput naming
    the first other file or link (a folder's marker aside)."""
    by_path, cache = {e.path: e for e in entries}, engine.content_cache
    linked = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:  # a link to a folder is among the folders, not followed
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode) or rel == MARKER:
                continue
            e = by_path.get(rel)
            if e is None or not e.sha256 or not stat.S_ISREG(st.st_mode) or not _same_inode(cache.path(e.sha256), st):
                raise BadInput(
                    f"{rel!r} is not a file it made (a hard link of the content cache)", reason="not-a-mount"
                )
            linked.append(e)
    return linked


def _same_inode(path: Path, st: os.stat_result) -> bool:
    try:
        found = os.lstat(path)
    except OSError:
        return False
    return (found.st_dev, found.st_ino) == (st.st_dev, st.st_ino)


def mounts(engine: Engine) -> list[dict]:
    """The records of every mount the data home knows that still stands (as `mounted` reads them), by folder."""
    found = []
    for path in sorted((Path(engine.home) / "mounts").glob("*.json")):
        record = read_json_file(path, MAX_LIST)
        folder = record.get("folder") if isinstance(record, dict) else None
        if isinstance(folder, str) and (standing := mounted(engine, folder)) is not None:
            found.append(standing)
    return sorted(found, key=lambda r: r["folder"])


def _absolute(folder) -> Path:
    """`folder` made absolute, its parent's links resolved: the one spelling a mount's record is kept under."""
    folder = Path(folder).expanduser().absolute()
    return Path(os.path.realpath(folder.parent)) / folder.name


def _record_path(engine: Engine, folder: Path) -> Path:
    # Named by a hash of the folder's path, so any folder name fits and no part of it becomes a path here.
    return Path(engine.home) / "mounts" / (hashlib.sha256(os.fsencode(folder)).hexdigest() + ".json")


def _write_record(
    engine: Engine, folder: Path, ds: Dataset, version: Version, files: dict, marker: list[int] | None
) -> None:
    record = {
        "format": FORMAT,
        "folder": str(folder),
        "dir": _folder_identity(folder),
        "marker": marker,
        "dataset": ds.id,
        "name": ds.name,
        "version": version.version,
        "files": files,
    }
    write_atomically(_record_path(engine, folder), json.dumps(record))


def _identity(path: Path) -> list[int] | None:
    """What tells a file from another put in its place, or from itself written since: device, inode, size, and the
    modification and change times (a write, `cp -p` or `touch -r` changes the change time, which no one sets back
    short of the clock). None if it is gone or is not a regular file."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _same(path: Path, made: list) -> bool:
    """Whether `path` is still the file whose identity `made` is (a None in it is not compared)."""
    now = _identity(path)
    return now is not None and all(m is None or n == m for n, m in zip(now, made, strict=True))


def _folder_identity(folder: Path) -> list[int] | None:
    """A folder's device and inode: what tells it from another folder put in its place (its times change with
    every file added, and with its modes)."""
    try:
        st = os.lstat(folder)
    except OSError:
        return None
    return [st.st_dev, st.st_ino]


def _identities(top: Path, paths: list[str]) -> dict[str, list[int]]:
    out = {}
    for path in paths:
        made = _identity(top / path)
        assert made is not None  # just made by this mount
        out[path] = made
    return out


def _changed(folder: Path, record: dict, entries: list[FileEntry] | None) -> list[str]:
    """The files of the mount at `folder` that are not as it made them (one stat each), and with `entries` also
    those whose bytes do not match the version's SHA-256 (each file read whole)."""
    made: dict = record["files"]
    changed = [path for path, identity in made.items() if _identity(folder / path) != identity]
    if entries is not None:
        suspect = set(changed)
        for e in entries:
            if e.path not in suspect and not _holds(folder / e.path, e):
                changed.append(e.path)
    return sorted(set(changed))


def _holds(path: Path, e: FileEntry) -> bool:
    h, n = hashlib.sha256(), 0
    try:
        for chunk in file_chunks(path):
            h.update(chunk)
            n += len(chunk)
    except OSError:
        return False
    return n == e.size and h.hexdigest() == e.sha256


def _copy(src: Path, target: Path) -> bool:
    """Copy the cache entry `src` to `target`, 0444: a reflink where the file system makes one (True), else a copy
    (False). Never a hard link: a write through one (root is not stopped by 0444) would change the cache's bytes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as source, open(target, "xb") as made:
        try:
            import fcntl

            fcntl.ioctl(made.fileno(), FICLONE, source.fileno())
            cloned = True
        except (ImportError, OSError):  # ext4, tmpfs, another file system, not Linux: a copy
            _copy_bytes(source, made)
            cloned = False
    os.chmod(target, 0o444)
    return cloned


def _copy_bytes(source, made) -> None:
    """Copy in the kernel where it can (copy_file_range: no bytes through Python, and on some file systems a
    reflink after all), else through Python."""
    size, done = os.fstat(source.fileno()).st_size, 0
    try:
        while done < size:
            copied = os.copy_file_range(source.fileno(), made.fileno(), size - done, done, done)
            if copied == 0:
                break
            done += copied
        if done == size:
            return
    except (AttributeError, OSError):  # not Linux, an old kernel, or across file systems there
        pass
    made.seek(0)
    made.truncate(0)
    source.seek(0)
    shutil.copyfileobj(source, made, CHUNK)


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


def _remove(folder: Path, record: dict) -> list[str]:
    """Delete the files the mount made (still those it made: `record`'s identities), then folders left empty;
    return what else was there (added since, or written since), which stays."""
    made: dict = record["files"]
    _set_modes(folder, file_mode=None, dir_mode=0o755)
    kept = []
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            if rel in made and _same(path, made[rel]) or rel == MARKER and _identity(path) == record["marker"]:
                path.unlink()
            else:
                kept.append(rel)
    for dirpath, _, _ in sorted(os.walk(folder), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)
    return sorted(kept)
