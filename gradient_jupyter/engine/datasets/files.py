"""Files of a version: what an uncommitted version holds (data/, refs/ pointers, uploads/, pending.json), putting,
deleting, listing and reading files (layout: datasets/__init__.py)."""

from __future__ import annotations

import builtins
import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from .. import records
from ..errors import BadInput, Immutable, NotFound
from ..ids import check_file_path
from ..models import Dataset, FileEntry, Version
from ..records import manifest_entries
from ..stores import CHUNK, sha256_file
from .base import Part
from .verify import hash_object, verified_stream


class Files(Part):
    """The files of versions: staged in an uncommitted one, listed from the manifest of a committed one."""

    def _pointers(self, ds: Dataset, version: str) -> dict[str, FileEntry | None]:
        """refs/ of an uncommitted version: path -> the file it points at, or None for a deleted file."""
        store = self._store_of(ds)

        def read(key):
            data = self._read_json(store, key)
            return None if data is None else records.pointer(data, key, self.layout.dataset(ds.id), version)

        refs = [o.key for o in store.list(self.layout.refs(ds.id, version))]
        return dict(p for p in self.engine.map(read, refs) if p)

    def _staged(self, ds: Dataset, version: str, *, with_hashes: bool = False) -> dict[str, FileEntry]:
        """Files of an uncommitted version: objects a save wrote under data/, overridden by the pointers under
        refs/ (to a committed object, or to an upload that has arrived under uploads/)."""
        store = self._store_of(ds)
        files = {}
        listing, pointers, arrived = self.engine.map(
            lambda read: read(),
            [
                lambda: list(store.list(self.layout.data(ds.id, version))),
                lambda: self._pointers(ds, version),
                lambda: {o.key: o.size for o in store.list(self.layout.uploads(ds.id, version))},
            ],
        )
        for o in listing:
            path = o.key[len(self.layout.data(ds.id, version)) :]
            sha = hash_object(store, o.key)[0] if with_hashes else None  # never the metadata a writer sets
            files[path] = FileEntry(path, o.size, sha, o.key)
        for path, entry in pointers.items():
            files.pop(path, None)
            if entry is None:
                continue
            if entry.key.startswith(self.layout.uploads(ds.id, version)):
                if entry.key not in arrived:  # a write URL was handed out, but nothing came (yet)
                    continue
                if entry.sha256 is None:  # came by write URL: the commit hashes it
                    entry = FileEntry(path, arrived[entry.key], None, entry.key)
            files[path] = entry
        return files

    def pending_of(self, ds: Dataset, version: str) -> builtins.list[FileEntry] | None:
        """What a save of `version` was uploading (pending.json), checked; None if there is none."""
        state = self.save_state(ds, version)
        return None if state is None else state[0]

    def _uncommitted(self, ds, version: str) -> tuple[Dataset, Version]:
        ds = self.get(ds)
        v = self.get_version(ds, version)
        if v.is_committed:
            raise Immutable(
                f"Version {ds.id}:{version} is committed and cannot change: create a new version "
                "(datasets versions create) to add, replace or delete files."
            )
        return ds, v

    def list_files(self, ds, version: str, *, prefix: str = "") -> builtins.list[FileEntry]:
        ds = self.get(ds)
        v = self.get_version(ds, version)
        if v.is_committed:
            files = manifest_entries(self.manifest(ds, version) or {})
        else:
            files = list(self._staged(ds, version).values())
        return sorted((f for f in files if f.path.startswith(prefix)), key=lambda f: f.path)

    def uploads_prefix(self, ds_id: str, version: str) -> str:
        """Where the files put into an uncommitted version wait for its commit."""
        return self.layout.uploads(ds_id, version)

    def upload_key(self, ds: Dataset, version: str, path: str) -> str:
        """A new object key for bytes of `path` about to be put into an uncommitted version (by this engine or a
        write URL): under uploads/, where no manifest points, and named at random so no two uploads share it.
        The pointer refs/<path> is written first, so the commit and deletes know it."""
        check_file_path(path)
        key = self.layout.uploads(ds.id, version, uuid.uuid4().hex)
        self._write_json(self._store_of(ds), self.layout.refs(ds.id, version, path), {"path": path, "key": key})
        return key

    def upload_key_of(self, ds: Dataset, version: str, path: str) -> str:
        """The upload key `upload_key` gave `path` (for the later calls of a multipart upload)."""
        check_file_path(path)
        entry = self._pointers(ds, version).get(path)
        if entry is None or not entry.object_key.startswith(self.layout.uploads(ds.id, version)):
            raise NotFound(
                f"No upload of {path!r} was started in {ds.id}:{version}: start it again.", reason="no-such-upload"
            )
        return entry.object_key

    def check_put_quota(self, ds, sources: builtins.list[Path]) -> None:
        """Raise QuotaExceeded, before a version is made or a byte sent, if putting these local files into `ds`
        would pass its store's quota (files identical to a committed one of the dataset cost nothing): a put of
        many files that is refused leaves none of them behind."""
        ds = self.get(ds)
        store = self._store_of(ds)
        if store.quota is None:
            return
        known = self.committed_index(ds)
        hashed = self.engine.map(sha256_file, sources, self.engine.settings.max_concurrency)
        store.check_quota(sum(size for sha, size in hashed if (sha, size) not in known), self.layout.root())

    def put_file(self, ds, version: str, path: str, source) -> FileEntry:
        """Add or replace one file of an uncommitted version. `source`: a local path, bytes, or a binary file.

        The bytes go to a new object under uploads/ (a random name), then refs/<path> points at it; the commit
        verifies and copies them into data/<path>. A file identical to a committed one just points at it."""
        check_file_path(path)
        ds, _ = self._uncommitted(self.writable(self.get(ds), "add files"), version)
        store = self._store_of(ds)
        with _local_copy(source, self.engine.home) as (local, sha, size):
            manifests = self.manifests(ds)
            key = self.committed_index(ds, manifests).get((sha, size))
            if key:  # identical to a committed file: point at it instead of sending it again
                self._write_json(
                    store,
                    self.layout.refs(ds.id, version, path),
                    {"path": path, "size": size, "sha256": sha, "key": key},
                )
                if not self.still_referenced(ds, manifests, [key]):  # its versions were deleted meanwhile
                    key = None
            if not key:
                store.check_quota(size, self.layout.root())
                key = self.layout.uploads(ds.id, version, uuid.uuid4().hex)
                store.put_file(key, local, size=size, sha256=sha)  # a fresh random key: nothing to overwrite
                self._write_json(
                    store,
                    self.layout.refs(ds.id, version, path),
                    {"path": path, "size": size, "sha256": sha, "key": key},
                )
        if store.head(self.manifest_key(ds.id, version)) is not None:  # committed while we wrote: not part of it
            raise Immutable(
                f"Version {ds.id}:{version} was committed while {path!r} was being written; the file is not part of it."
            )
        return FileEntry(path, size, sha, key)

    def delete_file(self, ds, version: str, path: str) -> None:
        """Remove a file from an uncommitted version. Only its pointer changes: objects a commit may be copying
        or have copied are never deleted here."""
        check_file_path(path)
        ds, _ = self._uncommitted(self.writable(self.get(ds), "delete files"), version)
        staged = self._staged(ds, version)
        if path not in staged:
            raise NotFound(f"Version {ds.id}:{version} has no file {path!r}.", reason="unknown-file")
        store = self._store_of(ds)
        self._write_json(store, self.layout.refs(ds.id, version, path), {"path": path, "deleted": True})
        if store.head(self.manifest_key(ds.id, version)) is not None:  # committed meanwhile: the file is part of it
            raise Immutable(
                f"Version {ds.id}:{version} was committed while {path!r} was being deleted; the file is part of it."
            )

    def file_entry(self, ds, version: str, path: str) -> FileEntry:
        check_file_path(path)
        ds = self.get(ds)
        v = self.get_version(ds, version)
        files = (
            manifest_entries(self.manifest(ds, version) or {})
            if v.is_committed
            else list(self._staged(ds, version, with_hashes=True).values())
        )
        for f in files:
            if f.path == path:
                return f
        raise NotFound(f"Version {ds.id}:{version} has no file {path!r}.", reason="unknown-file")

    def read_file(self, ds, version: str, path: str) -> tuple[FileEntry, Iterator[bytes]]:
        """One file's bytes, checked against the manifest while they stream (IntegrityError at the end if not)."""
        ds = self.get(ds)
        entry = self.file_entry(ds, version, path)
        return entry, verified_stream(self._store_of(ds), entry, f"Reading {ds.name}:{version}")


class _local_copy:
    """Give a source as (local path, sha256, size); bytes and file objects are spooled to a temp file in the home."""

    def __init__(self, source, home: Path):
        self.source, self.home = source, Path(home)
        self.tmp: str | None = None

    def __enter__(self):
        if isinstance(self.source, (str, os.PathLike)):
            if not os.path.isfile(self.source):
                raise BadInput(f"{os.fspath(self.source)!r} is not a file.")
            sha, size = sha256_file(self.source)
            return self.source, sha, size
        folder = self.home / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(dir=folder, prefix="upload-")
        h, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as f:
            if isinstance(self.source, (bytes, bytearray, memoryview)):
                f.write(self.source)
                h.update(self.source)
                size = len(self.source)
            else:
                while chunk := self.source.read(CHUNK):
                    f.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
        return self.tmp, h.hexdigest(), size

    def __exit__(self, *exc):
        if self.tmp:
            os.unlink(self.tmp)
