"""The content cache: verified bytes in the data home, addressed by their SHA-256 (whole files and blocks alike).

Shared by reading in place (`gradient://`), `mount` and `load`, and by every version and process of one data home:
bytes fetched once are not fetched again. An entry appears only once its bytes matched their SHA-256 (written
under a temporary name, then linked into place, so several processes can fill it at once). Entries are read-only
files; the least recently used are evicted beyond `c.GradientStorage.cache_size`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .errors import IntegrityError

SHA256 = re.compile(r"[0-9a-f]{64}")
STALE_TMP_SECONDS = 3600  # a fill left behind by a killed process


class ContentCache:
    """Files named by the SHA-256 of their bytes under `<root>/objects/`; see the module docstring."""

    def __init__(self, root: Path, limit: int, *, workers: int = 8):
        self.root = Path(root)
        self.objects, self.tmp = self.root / "objects", self.root / "tmp"
        for folder in (self.root, self.objects, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o700)
        self.limit = limit
        self.workers = workers
        self._lock = threading.Lock()
        self._filling: dict[str, threading.Lock] = {}
        self._usage: int | None = None  # bytes in the cache as this process last counted them
        self._pool: ThreadPoolExecutor | None = None

    @property
    def pool(self) -> ThreadPoolExecutor:
        """Threads that fetch blocks for readers (read-ahead and parallel ranges)."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="gradient-read")
        return self._pool

    def path(self, sha256: str) -> Path:
        if not SHA256.fullmatch(sha256):  # names come from manifests: only a checked SHA-256 may become a path
            raise ValueError(f"not a SHA-256: {sha256!r}")
        return self.objects / sha256[:2] / sha256

    def get(self, sha256: str, size: int) -> Path | None:
        """The entry's file if the cache has it (and marks it used), else None."""
        path = self.path(sha256)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        if st.st_size != size:  # cannot happen through fill(); never serve it
            self.discard(sha256)
            return None
        with contextlib.suppress(OSError):  # the access time orders eviction; set explicitly (noatime mounts)
            os.utime(path, ns=(time.time_ns(), st.st_mtime_ns))
        return path

    def fill(self, sha256: str, size: int, chunks: Callable[[], Iterable[bytes]], name: str) -> Path:
        """The entry for `sha256`, from the cache or else from `chunks()`, checked (size, SHA-256) before anyone
        can see it. A mismatch raises IntegrityError with `name` (which file, which version) in the message."""
        with self._filling_lock(sha256):
            found = self.get(sha256, size)
            if found:
                return found
            fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix="fill-")
            try:
                h, n = hashlib.sha256(), 0
                with os.fdopen(fd, "wb") as f:
                    for chunk in chunks():
                        n += len(chunk)
                        if n > size:
                            raise IntegrityError(
                                f"{name} in the store has more bytes than its manifest says "
                                f"({size}): it was changed behind our back."
                            )
                        h.update(chunk)
                        f.write(chunk)
                if n != size or h.hexdigest() != sha256:
                    raise IntegrityError(
                        f"{name} in the store does not match its manifest (expected {size} bytes, "
                        f"SHA-256 {sha256}; got {n} bytes, SHA-256 {h.hexdigest()}): it was changed "
                        "or corrupted behind our back."
                    )
                path = self._install(tmp, sha256)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        self._account(size, keep=path)
        return path

    def add_file(self, src, sha256: str, size: int) -> None:
        """Keep a copy of a local file already verified against `sha256` (what `load` just wrote).
        Files larger than an eighth of the limit are not kept: one load must not flush the whole cache."""
        if size > self.limit // 8 or self.get(sha256, size):
            return
        fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix="add-")
        os.close(fd)
        try:
            shutil.copyfile(src, tmp)
            if os.path.getsize(tmp) != size:
                return
            path = self._install(tmp, sha256)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._account(size, keep=path)

    def _install(self, tmp: str, sha256: str) -> Path:
        os.chmod(tmp, 0o444)
        path = self.path(sha256)
        path.parent.mkdir(parents=True, exist_ok=True)  # parents: a `cache clear` may have just run elsewhere
        try:
            os.link(tmp, path)  # never replaces: an entry another process filled first stands (same bytes)
        except FileExistsError:
            pass
        return path

    def discard(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(sha256))

    @contextlib.contextmanager
    def _filling_lock(self, sha256: str):
        """One fetch per entry at a time in this process: a second reader waits, then finds it cached."""
        with self._lock:
            lock = self._filling.setdefault(sha256, threading.Lock())
        with lock:
            yield
        with self._lock:
            if not lock.locked():
                self._filling.pop(sha256, None)

    # -- size limit ----------------------------------------------------------------------------------------------
    def _entries(self) -> list[tuple[float, int, Path]]:
        out = []
        for folder in self.objects.iterdir():
            for entry in os.scandir(folder) if folder.is_dir() else ():
                with contextlib.suppress(FileNotFoundError):
                    st = entry.stat()
                    out.append((st.st_atime, st.st_size, Path(entry.path)))
        return out

    def _account(self, added: int, keep: Path | None = None) -> None:
        with self._lock:
            if self._usage is not None:
                self._usage += added
                if self._usage <= self.limit:
                    return
        self.evict(keep=keep)

    def evict(self, keep: Path | None = None) -> int:
        """Remove least recently used entries until the cache fits its limit; returns the bytes removed."""
        entries = sorted(self._entries())
        total = sum(size for _, size, _ in entries)
        removed = 0
        for _, size, path in entries:
            if total - removed <= self.limit:
                break
            if path == keep:  # the entry a reader is about to use
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += size
        now = time.time()
        for leftover in self.tmp.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if now - leftover.stat().st_mtime > STALE_TMP_SECONDS:
                    leftover.unlink()
        with self._lock:
            self._usage = total - removed
        return removed

    def info(self) -> dict:
        """Where the cache is, how many entries and bytes it holds, and its limit."""
        entries = self._entries()
        return {
            "path": str(self.root),
            "entries": len(entries),
            "bytes": sum(s for _, s, _ in entries),
            "limitBytes": self.limit,
        }

    def clear(self) -> dict:
        """Remove every entry; returns what was removed (as `info`). Mounted files keep their bytes (own links)."""
        before = self.info()
        for folder in (self.objects, self.tmp):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(exist_ok=True)
            os.chmod(folder, 0o700)
        with self._lock:
            self._usage = 0
        return before
