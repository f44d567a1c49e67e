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
from ..errors import BadInput, Conflict, Immutable, IntegrityError, NotFound
from ..hashing import CHUNK, sha256_file
from ..ids import check_file_path, check_version_id
from ..models import Dataset, FileEntry, Version
from ..records import manifest_entries
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
        listed = {o.key: o.size for o in listing}
        for o in listing:
            path = o.key[len(self.layout.data(ds.id, version)) :]
            if path in pointers:
                continue
            sha = hash_object(store, o.key)[0] if with_hashes else None  # a save's: no record (never the metadata)
            files[path] = FileEntry(path, o.size, sha, o.key)
        for path, entry in pointers.items():
            if entry is None:
                continue
            if entry.key == self.layout.data(ds.id, version, path):
                if entry.key not in listed:  # put after the listing was taken: not part of what it answers
                    continue
                if listed[entry.key] != entry.size:
                    raise IntegrityError(
                        f"{path!r} of {ds.id}:{version} in the store is not what was put "
                        f"({entry.size} bytes): it was changed behind our back; put it again."
                    )
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

    def put_file(
        self,
        ds,
        version: str,
        path: str,
        source,
        *,
        hashed: tuple[str, int] | None = None,
        blocks: builtins.list[str] | None = None,
    ) -> FileEntry:
        """Add or replace one file of an uncommitted version. `source`: a local path, bytes, or a binary file;
        `hashed`: the (SHA-256, size) of a local path, and `blocks` its block SHA-256s (of `block_size`), when the
        caller hashed it as it wrote it (engine/hashing.py `StreamHashes`).

        The bytes are sent once, create-only and with their SHA-256 (which the store checks where it can), to
        data/<path>; then refs/<path> records path, size, SHA-256 and key, which is all the commit reads: it
        neither reads nor copies the bytes (commit.py). A path put again into the same version goes to a new
        object under uploads/ (its data/<path> is taken), which the commit verifies and copies. A file identical
        to a committed one just points at it. Any number of processes may put files into one version at once
        (SPEC 9.1); the version is checked with two HEADs, whatever its size."""
        check_file_path(path)
        ds = self.draft(self.writable(self.get(ds), "add files"), version)
        store = self._store_of(ds)
        ref = self.layout.refs(ds.id, version, path)
        with _local_copy(source, self.engine.home, hashed) as (local, sha, size):
            manifests = self.manifests(ds)
            key = self.committed_index(ds, manifests).get((sha, size))
            if key:  # identical to a committed file: point at it instead of sending it again
                self._write_json(store, ref, {"path": path, "size": size, "sha256": sha, "key": key})
                if not self.still_referenced(ds, manifests, [key]):  # its versions were deleted meanwhile
                    key = None
            if not key:
                store.check_quota(size, self.layout.root())
                key = self.layout.data(ds.id, version, path)
                try:
                    store.put_file(key, local, size=size, sha256=sha, mode="create")
                except Conflict:  # put before into this version: data/<path> is taken, never overwritten
                    key = self.layout.uploads(ds.id, version, uuid.uuid4().hex)
                    store.put_file(key, local, size=size, sha256=sha)  # a fresh random key: nothing to overwrite
                found = (
                    (self.engine.settings.block_size, tuple(blocks)) if blocks else self._blocks_of(local, sha, size)
                )
                entry = FileEntry(path, size, sha, key, *found)
                self._write_json(store, ref, records.manifest_file(entry))
        self._still_uncommitted(ds, version, path, key)
        return FileEntry(path, size, sha, key)

    def _blocks_of(self, local, sha: str, size: int) -> tuple[int | None, tuple[str, ...]]:
        """(block size, block SHA-256s) of a large file, as save records them (engine/hashing.py), else (None, ())."""
        settings = self.engine.settings
        if size < settings.block_threshold:
            return None, ()
        from ..hashing import block_hashes

        whole, read, blocks = block_hashes(local, settings.block_size, self.engine.parts)
        if (whole, read) != (sha, size):
            raise IntegrityError(f"{os.fspath(local)!r} changed while it was being put: put it again.")
        return settings.block_size, tuple(blocks)

    def draft(self, ds: Dataset, version: str) -> Dataset:
        """`ds`, if `version` is an uncommitted version of it: two HEADs, however many files it holds. Immutable
        if it is committed, NotFound if there is no such version."""
        check_version_id(version)
        store = self._store_of(ds)
        committed, record = self.engine.map(
            store.head, [self.manifest_key(ds.id, version), self.layout.version_record(ds.id, version)]
        )
        if committed is not None:
            raise Immutable(
                f"Version {ds.id}:{version} is committed and cannot change: create a new version "
                "(datasets versions create) to add, replace or delete files."
            )
        if record is None:
            raise NotFound(f"Dataset {ds.name!r} has no version {version!r}.", reason="unknown-version")
        return ds

    def _still_uncommitted(self, ds: Dataset, version: str, path: str, key: str) -> None:
        """After a put: a commit that came first either took the file (its record was there) or not (then the put
        fails: the file is not part of the version); a version deleted meanwhile (a transaction abandoned) loses
        what the put left."""
        store = self._store_of(ds)
        committed, record = self.engine.map(
            store.head, [self.manifest_key(ds.id, version), self.layout.version_record(ds.id, version)]
        )
        if committed is not None:
            if any(e.path == path and e.object_key == key for e in manifest_entries(self.manifest(ds, version) or {})):
                return
            raise Immutable(
                f"Version {ds.id}:{version} was committed while {path!r} was being written; the file is not part of it."
            )
        if record is None:
            store.delete(
                [
                    k
                    for k in (key, self.layout.refs(ds.id, version, path))
                    if k.startswith(self.layout.version(ds.id, version))
                ]
            )
            raise NotFound(
                f"Version {ds.id}:{version} was deleted while {path!r} was being written.", reason="unknown-version"
            )

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

    def __init__(self, source, home: Path, hashed: tuple[str, int] | None = None):
        self.source, self.home, self.hashed = source, Path(home), hashed
        self.tmp: str | None = None

    def __enter__(self):
        if isinstance(self.source, (str, os.PathLike)):
            if not os.path.isfile(self.source):
                raise BadInput(f"{os.fspath(self.source)!r} is not a file.")
            sha, size = self.hashed or sha256_file(self.source)
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
