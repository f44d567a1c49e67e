"""SHA-256s of local files, in one place: whole (`sha256_file`), with their blocks (`block_hashes`, for verified
ranged reads: engine/content/reader.py), and the stat that says whether a file changed (`file_state`, `settled`).
The hash cache (hashcache.py) keeps what these found; save, load, mount and the stores read files through them."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

CHUNK = 1024 * 1024


def file_chunks(path: str | os.PathLike) -> Iterator[bytes]:
    """A local file's bytes in CHUNK (1 MiB) pieces."""
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def sha256_file(path: str | os.PathLike, progress: Callable[[int], None] | None = None) -> tuple[str, int]:
    """(hex SHA-256, size) of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    size = 0
    for chunk in file_chunks(path):
        h.update(chunk)
        size += len(chunk)
        if progress:
            progress(len(chunk))
    return h.hexdigest(), size


class Submits(Protocol):
    """A pool to hand tasks to (work.py `Parts`, a ThreadPoolExecutor)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]: ...


def block_hashes(path, block_size: int, pool: Submits | None = None) -> tuple[str, int, list[str]]:
    """(SHA-256, size, block SHA-256s) of a local file in one read pass. The blocks are hashed on `pool` (the
    engine's `parts`; else a thread of their own) while this thread hashes the file (hashlib lets go of the GIL), so
    on two free cores it costs about one hash."""
    if pool is None:
        with ThreadPoolExecutor(1, thread_name_prefix="gradient-blocks") as own:
            return block_hashes(path, block_size, own)
    h, size, pending = hashlib.sha256(), 0, []
    with open(path, "rb") as f:
        while block := f.read(block_size):
            pending.append(pool.submit(lambda b: hashlib.sha256(b).hexdigest(), block))
            h.update(block)
            size += len(block)
            if len(pending) > 2:
                pending[-3].result()  # at most two blocks held in memory ahead of the block hasher
        blocks = [p.result() for p in pending]
    return h.hexdigest(), size, blocks


class StreamHashes:
    """SHA-256 of bytes as they are written, and, once they reach `threshold`, of each aligned `block_size` block,
    as `block_hashes` would find them (bytes written before the threshold are read back once from `path`, where
    the writer keeps them): a file written through gradient:// is hashed as it is written, not read again."""

    def __init__(self, path: str, block_size: int, threshold: int):
        self.path, self.block_size, self.threshold = path, block_size, threshold
        self.whole, self.size = hashlib.sha256(), 0
        self.blocks: list[str] | None = None  # None until `threshold` bytes were written
        self._block, self._in_block = hashlib.sha256(), 0

    def update(self, data) -> None:
        """`data` was just appended to `path` (flushed)."""
        self.whole.update(data)
        self.size += len(data)
        if self.blocks is not None:
            self._blocks_of(data)
        elif self.size >= self.threshold:
            self.blocks = []
            for chunk in file_chunks(self.path):
                self._blocks_of(chunk)

    def _blocks_of(self, data) -> None:
        view = memoryview(data)
        while view:
            take = min(len(view), self.block_size - self._in_block)
            self._block.update(view[:take])
            self._in_block, view = self._in_block + take, view[take:]
            if self._in_block == self.block_size:
                self.blocks.append(self._block.hexdigest())  # type: ignore[union-attr]
                self._block, self._in_block = hashlib.sha256(), 0

    def result(self) -> tuple[str, int, list[str] | None]:
        """(SHA-256, size, block SHA-256s or None below the threshold) of everything written."""
        blocks = self.blocks
        if blocks is not None and self._in_block:
            blocks = [*blocks, self._block.hexdigest()]
        return self.whole.hexdigest(), self.size, blocks


RACY_SECONDS = 2.0  # a file modified this recently may still change within the same mtime tick: never trust its state


def settled(st: os.stat_result) -> bool:
    """Whether a file was last modified long enough ago that any write to it now moves its `file_state`."""
    return time.time() - st.st_mtime > RACY_SECONDS


def file_state(st: os.stat_result) -> tuple[int, int, int, int]:
    """(size, mtime, ctime, inode) of a file: what moves when it is written (a user can restore its mtime, never
    its ctime). The hash cache trusts it to skip reading a file; `put_new_file` to know a file did not change."""
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino
