"""Verified reads of one file of a committed version, in place: any byte range, or the whole file, through the
content cache (engine/content/cache.py). No byte is returned before it matched the manifest.

A file whose manifest entry has block SHA-256s (`blockSize`, `blocks`: recorded at save for large files) is read in
aligned blocks: a range costs the blocks it touches, each verified on arrival, and a sequential reader gets the next
blocks fetched ahead of it in parallel. Any other file is fetched whole and verified once. Either way the verified
bytes are kept in the cache, so no version fetches them again.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import IntegrityError, NotFound
from ..hashing import CHUNK, file_chunks
from ..models import Dataset, FileEntry, Version
from ..stores import Store
from .cache import ContentCache

if TYPE_CHECKING:
    from ..core import Engine

READ_AHEAD_BYTES = 64 * 1024**2  # what a sequential reader has in flight ahead of it


class FileReader:
    """One manifest entry of a version, read through the cache. Thread-safe."""

    def __init__(self, cache: ContentCache, store: Store, entry: FileEntry, where: str):
        self.cache, self.store, self.entry = cache, store, entry
        self.name = f"{where}: {entry.path!r}"  # what errors say: which version, which file
        if entry.sha256 is None or entry.key is None or (entry.blocks and not entry.block_size):
            raise IntegrityError(f"{self.name}: its manifest entry lacks the sha256, key or blockSize to read it by.")
        self.sha256: str = entry.sha256
        self.key: str = entry.key
        self.block_size: int = entry.block_size or entry.size
        self._lock = threading.Lock()
        self._pending: dict[int, Future] = {}
        self._next = -1  # where a sequential reader would read next
        self._asked_copies = False
        self._streak = 0  # consecutive sequential reads: read-ahead starts at 3 and grows with it (a column chunk of
        # a few blocks is read without fetching past it; a scan soon has many blocks in flight)

    @property
    def size(self) -> int:
        return self.entry.size

    def read(self, start: int, end: int) -> bytes:
        """Bytes start..end-1 (clipped to the file), verified."""
        start, end = max(0, start), min(end, self.entry.size)
        if start >= end:
            return b""
        whole = self.cache.get(self.sha256, self.entry.size)
        if whole is None and self.entry.blocks and not self._asked_copies:
            self._asked_copies = True  # once per reader: a file `load` wrote may hold the bytes (cache.py)
            whole = self.cache.from_copy(self.sha256, self.entry.size)
        if whole is None and not self.entry.blocks:
            whole = self.local_file()
        if whole is not None:
            return _pread(whole, start, end)
        bs = self.block_size
        first, last = start // bs, (end - 1) // bs
        self._streak = self._streak + 1 if start == self._next else 0
        self._next = end
        for attempt in range(2):
            paths = self._blocks(range(first, last + 1), ahead=self._streak - 2)
            try:
                if first == last:  # one block: no pieces to join
                    return _pread(paths[0], start - first * bs, end - first * bs)
                return b"".join(
                    _pread(path, max(start, i * bs) - i * bs, min(end, (i + 1) * bs) - i * bs)
                    for i, path in zip(range(first, last + 1), paths, strict=True)
                )
            except FileNotFoundError:  # evicted (or joined into its whole file) between fetch and read: once more
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _blocks(self, indexes: range, ahead: int = 0) -> list[Path]:
        """The cache files of the blocks at `indexes`, fetched in parallel where missing, and up to `ahead` blocks
        after them fetched in the background (bounded by READ_AHEAD_BYTES)."""
        wanted = {i: self._submit(i) for i in indexes}
        ahead = min(ahead, max(1, READ_AHEAD_BYTES // self.block_size))
        for i in range(indexes.stop, min(len(self.entry.blocks), indexes.stop + ahead)):
            self._submit(i)
        return [wanted[i].result() for i in indexes]

    def _submit(self, i: int) -> Future:
        with self._lock:
            future = self._pending.get(i)
            if future is not None and not (future.done() and (future.exception() or not future.result().exists())):
                return future
            sha, size = self.entry.blocks[i], self._block_len(i)
            found = self.cache.get(sha, size)
            if found is not None:
                future = Future()
                future.set_result(found)
            else:
                future = self.cache.pool.submit(self._fetch_block, i)
            self._pending[i] = future
            return future

    def _block_len(self, i: int) -> int:
        return min(self.block_size, self.entry.size - i * self.block_size)

    def _fetch_block(self, i: int) -> Path:
        start = i * self.block_size
        return self.cache.fill(
            self.entry.blocks[i],
            self._block_len(i),
            lambda: self._stream(start, start + self._block_len(i)),
            f"{self.name} (block {i + 1} of {len(self.entry.blocks)})",
        )

    def _stream(self, start: int, end: int):
        try:  # a store may find the object missing when asked or at the first chunk: either way, say which file
            if start == 0 and end == self.entry.size:
                yield from self.store.stream(self.key, CHUNK)
            else:
                yield from self.store.stream_range(self.key, start, end, CHUNK)
        except NotFound as exc:
            raise IntegrityError(
                f"{self.name}: its bytes are missing from the store (object {self.key!r} was deleted behind our back)."
            ) from exc

    def local_file(self) -> Path:
        """The whole file in the cache (fetched and verified if it is not there): what mount links and load copies."""
        e = self.entry
        found = self.cache.get(self.sha256, e.size)
        if found is not None:
            return found
        if not e.blocks:
            return self.cache.fill(self.sha256, e.size, lambda: self._stream(0, e.size), self.name)
        found = self.cache.from_copy(self.sha256, e.size)
        if found is not None:
            return found
        # Fetch the blocks in parallel, then check the file's own SHA-256 as they are joined, before it enters the
        # cache under that name: blocks prove only what the manifest's block list says. Another process joining
        # the same blocks may finish first and let them go: then its whole file serves, or they are fetched again.
        for attempt in range(3):
            paths = self._blocks(range(len(e.blocks)))
            try:
                return self.cache.fill(self.sha256, e.size, partial(_joined, paths), self.name)
            except FileNotFoundError:
                if attempt == 2:
                    raise
            finally:
                for sha in e.blocks:  # the whole file serves every range now: keep one copy, not two
                    self.cache.discard(sha)
        raise AssertionError("unreachable")


def _joined(paths: list[Path]):
    for path in paths:
        yield from file_chunks(path)


def _pread(path: Path, start: int, end: int) -> bytes:
    with open(path, "rb") as f:
        return os.pread(f.fileno(), end - start, start)


# END


class VersionReader:
    """One committed version, readable file by file without downloading the rest; every read is verified. How it
    shows is the front ends' (output.py `OpenVersion`)."""

    def __init__(self, engine: Engine, ds: Dataset, version: Version, entries: list[FileEntry]):
        self.engine, self.dataset, self.version = engine, ds, version
        self._entries = {e.path: e for e in entries}

    @property
    def files(self) -> dict[str, int]:
        """path -> size of every file of the version."""
        return {p: e.size for p, e in sorted(self._entries.items())}

    def _entry(self, path: str) -> FileEntry:
        if path not in self._entries:
            raise NotFound(f"{self.version.ref} has no file {path!r}.", reason="unknown-file")
        return self._entries[path]

    def read_bytes(self, path: str) -> bytes:
        """The whole file, verified against the manifest (through the content cache, cache.py)."""
        e = self._entry(path)
        return self.engine.reader(self.dataset, self.version.version, e).read(0, e.size)

    def open(self, path: str):
        """A binary file object of one verified file: its entry in the content cache, opened read-only."""
        return open(self.engine.reader(self.dataset, self.version.version, self._entry(path)).local_file(), "rb")

    def __repr__(self) -> str:
        return f"<VersionReader {self.version!r}>"


def open_version(engine: Engine, ref: str) -> VersionReader:
    """`ref` (a committed version) opened for reading in place (datasets' `committed_entries`)."""
    return VersionReader(engine, *engine.datasets.committed_entries(ref, "read"))
