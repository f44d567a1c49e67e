"""The bytes of a load: each file from this machine (content cache, a file an earlier load wrote) or the store (whole,
or large files as parallel ranges), verified into a temporary file beside its target, then all renamed into place."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator
from concurrent.futures import wait
from pathlib import Path
from typing import TYPE_CHECKING

from ..datasets import verified_chunks, verified_stream
from ..errors import (
    IntegrityError,
    NotFound,
    StoreError,
)
from ..hashing import CHUNK, file_chunks
from ..models import FileEntry
from ..work import Parts
from .destination import missing_dirs
from .progress import ProgressCallback, TransferProgress

if TYPE_CHECKING:
    from ..core import Engine
    from .load import LoadPlan

O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def fetch_into_place(engine: Engine, plan: LoadPlan, progress: ProgressCallback | None) -> None:
    """Fetch every file of `plan.todo` verified into a temporary file beside its target, then rename them all; on
    any failure remove every temporary file and every folder this made, so dest keeps no partial file.

    A file whose bytes are on this machine already (a content-cache entry, or a file an earlier load wrote) is copied
    from there, checked like a download; what this load wrote is noted in the content cache as such a copy instead of
    being written a second time into the cache (engine/content/cache.py)."""
    ds, version, targets, todo = plan.dataset, plan.version, plan.targets, plan.todo
    if not todo:
        return
    store = engine.store(ds.storage_provider_id)
    cache = engine.content_cache
    created_dirs = missing_dirs(plan.dest, [targets[e.path] for e in todo])
    for folder in sorted({targets[e.path].parent for e in todo}):
        folder.mkdir(parents=True, exist_ok=True)
    copies = cache.copies_of({e.sha256 for e in todo if e.sha256})  # a manifest's entries all have one
    parts: list[str | None] = [None] * len(todo)  # one slot per file, each written by its own thread only
    pid = os.getpid()
    receiving = TransferProgress(progress, "download", len(todo), sum(e.size for e in todo))
    what = f"Loading {ds.name}:{version.version}"
    part_size, in_ranges = engine.settings.part_size, engine.settings.multipart_threshold

    def fetch(item: tuple[int, FileEntry]) -> None:
        i, e = item
        target = targets[e.path]
        # Our own name, not mkstemp's random one (it costs more than the write of a small file); O_EXCL all the same.
        part = parts[i] = f"{target.parent}{os.sep}.gradient-{pid}-{i}.part"
        # 0o666 less the umask, as cp or `aws s3 cp` would make it: loaded files are the user's files
        fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_EXCL | O_CLOEXEC, 0o666)  # RDWR: ranges are read back
        try:
            if _from_this_machine(cache, copies, e, str(target), fd, what):
                receiving.add(1, e.size)
            elif store.parallel_ranges and e.size >= in_ranges:
                _fetch_in_ranges(store, e, fd, part_size, receiving, what, engine.parts)
            else:
                _fetch_whole(store, e, fd, receiving, what)
        finally:
            os.close(fd)

    try:
        engine.map(fetch, list(enumerate(todo)), engine.settings.max_concurrency)
        for i, e in enumerate(todo):
            os.replace(parts[i], targets[e.path])  # type: ignore[arg-type]  # every slot is filled once map returns
            parts[i] = None
    except BaseException:
        _undo(parts, created_dirs)
        raise
    cache.remember_copies((e.sha256, e.size, str(targets[e.path])) for e in todo if e.sha256)


def _fetch_in_ranges(
    store, e: FileEntry, fd: int, part_size: int, receiving: TransferProgress, what: str, pool: Parts
) -> None:
    """A large file as parallel ranges into `fd`, verified as they land (`fetch_ranges`)."""
    # One HEAD first: a forged size would otherwise have a request planned for every part of it.
    _check_size(store, e, what)
    ranges = fetch_ranges(store, e, fd, part_size, receiving, what, pool=pool)
    try:
        with contextlib.closing(ranges):
            for _ in verified_chunks(ranges, e, what):
                pass
    except IntegrityError:
        raise
    except (StoreError, NotFound) as exc:  # the object is gone, or shorter than its manifest says?
        _check_size(store, e, what, exc)
        raise
    receiving.add(1, 0)


def _fetch_whole(store, e: FileEntry, fd: int, receiving: TransferProgress, what: str) -> None:
    """A file as one verified stream into `fd`."""
    if e.size <= CHUNK:  # most files: one chunk, one progress report
        for chunk in verified_stream(store, e, what):
            _write_all(fd, chunk)
        receiving.add(1, e.size)
        return
    for chunk in verified_stream(store, e, what):
        _write_all(fd, chunk)
        receiving.add(0, len(chunk))
    receiving.add(1, 0)


def _undo(parts: list[str | None], created_dirs: set[Path]) -> None:
    """Remove the temporary files a failed load wrote and the folders it made, deepest first."""
    for part in parts:
        if part is None:
            continue
        try:
            os.unlink(part)
        except FileNotFoundError:
            pass
    for folder in sorted(created_dirs, key=lambda p: len(p.parts), reverse=True):
        try:
            folder.rmdir()
        except OSError:
            pass


def _from_this_machine(cache, copies: dict, e: FileEntry, target: str, fd: int, what: str) -> bool:
    """Copy `e`'s bytes into the empty file `fd` from this machine, if it has them: a content-cache entry, or a file
    an earlier load wrote (checked like a download; an entry that does not match is discarded)."""
    entry = cache.get(e.sha256, e.size)
    if entry is not None:
        if _copy_verified(entry, fd, e, what):
            return True
        cache.discard(e.sha256)  # not what its name says: never serve it again
    copy = copies.get(e.sha256)
    return copy is not None and copy[0] == e.size and copy[1] != target and _copy_verified(copy[1], fd, e, what)


def _copy_verified(src, fd: int, e: FileEntry, what: str) -> bool:
    """Copy a local file that should hold `e`'s bytes into the empty file `fd`, checked as it goes; False (and
    `fd` empty again) if it does not hold them, or is gone."""
    try:
        for chunk in verified_chunks(file_chunks(src), e, what):
            _write_all(fd, chunk)
        return True
    except (IntegrityError, OSError):
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        return False


def _write_all(fd: int, data, offset: int | None = None) -> None:
    """Write `data` (any bytes-like object) to `fd`, at `offset` or where the file is, in pieces of at most CHUNK:
    on this machine's Linux 6.18 ext4, writes of 4-8 MiB into the page cache now and then cost 4-8x the CPU of the
    same bytes in 1 MiB writes (0.5-1.2 s instead of 0.14 s for 512 MiB). A write may take less than asked."""
    view, done = memoryview(data), 0
    while done < len(view):
        piece = view[done : done + CHUNK]
        done += os.write(fd, piece) if offset is None else os.pwrite(fd, piece, offset + done)


def _check_size(store, e: FileEntry, what: str, cause: Exception | None = None) -> None:
    """Raise IntegrityError naming the file if its object does not have the manifest's size (else return)."""
    info = store.head(e.key)
    if info is None or info.size != e.size:
        raise IntegrityError(
            f"{what}: {e.path!r} in the store does not match its manifest (expected {e.size} bytes, the store holds "
            f"{'nothing' if info is None else info.size}): it was changed or deleted behind our back."
        ) from cause


def fetch_ranges(
    store, e: FileEntry, fd: int, part_size: int, receiving: TransferProgress, what: str, *, pool: Parts
) -> Generator[bytes]:
    """Download a large object as parallel byte ranges streamed into place, and yield the file's bytes in order as
    each range lands (read back from the page cache), for the caller to verify while the later ranges download. A
    range of another length than asked is refused (IntegrityError), so the bytes verified are the bytes asked for.

    Measured against holding each range in memory to hash it without the read back (benchmarks/README.md): no
    less CPU, three times the memory, and slower, since a file's ranges then wait on its slowest one."""

    def one(start: int):
        offset, end = start, min(start + part_size, e.size)
        for chunk in store.stream_range(e.key, start, end):
            offset += len(chunk)
            if offset > end:
                break
            _write_all(fd, chunk, offset - len(chunk))
        if offset != end:
            raise IntegrityError(
                f"{what}: {e.path!r} in the store does not match its manifest (bytes {start}-{end} asked, "
                f"{'more' if offset > end else offset - start} bytes answered; the manifest says {e.size} bytes): "
                "it was changed behind our back."
            )
        receiving.add(0, end - start)

    starts = range(0, e.size, part_size)
    ranges = [pool.submit(one, start) for start in starts]  # the engine's `parts`: each waits on nothing
    try:
        for start, fetched in zip(starts, ranges, strict=True):
            fetched.result()
            offset, end = start, min(start + part_size, e.size)
            while offset < end and (chunk := os.pread(fd, min(CHUNK, end - offset), offset)):
                yield chunk
                offset += len(chunk)
    finally:  # on any failure: no range may still write into fd once the caller closes it
        for fetched in ranges:
            fetched.cancel()
        wait(ranges)
