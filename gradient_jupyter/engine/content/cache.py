"""The content cache: verified bytes in the data home, addressed by their SHA-256 (whole files and blocks alike).

Shared by reading in place (`gradient://`), `mount` and `load`, and by every version and process of one data home:
bytes fetched once are not fetched again. An entry appears only once its bytes matched their SHA-256 (written
under a temporary name, then linked into place, so several processes can fill it at once). Entries are read-only
files; the least recently used are evicted beyond `c.GradientStorage.cache_size`.

An entry is not read again to be served (a warm read costs what reading a local file costs), but it must still be as
it was written: its size, and its modification time, set when it was installed to a whole even second (STAMP_NS).
Writing into it (by root in the data home, whom read-only files do not stop; mounts are copies, never links to it)
sets the modification time to the moment of the write, nanoseconds and all: such an entry is removed on its next
use, never served. This costs nothing on a read (the one stat an entry's use makes already gives both); on a file
system that keeps only whole seconds, a write can go unseen.

Besides its entries the cache knows where `load` wrote verified bytes (`copies.sqlite3`: SHA-256 -> path), so a
load does not write every byte twice: a later fill or load copies such a file instead of fetching it, and only if its
bytes still match their SHA-256 (the user may have changed or removed it since: then the store is asked).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import IntegrityError
from ..hashing import file_chunks
from ..work import Parts

SHA256 = re.compile(r"[0-9a-f]{64}")
STALE_TMP_SECONDS = 3600  # a fill left behind by a killed process
STAMP_NS = 2 * 10**9  # an entry's modification time is a multiple of this as installed (see the module docstring)


class ContentCache:
    """Files named by the SHA-256 of their bytes under `<root>/objects/`; see the module docstring."""

    def __init__(self, root: Path, limit: int, *, pool: Parts | None = None):
        self.root = Path(root)
        self.objects, self.tmp = self.root / "objects", self.root / "tmp"
        for folder in (self.root, self.objects, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o700)
        self.limit = limit
        self._lock = threading.Lock()
        self._filling: dict[str, threading.Lock] = {}
        self._usage: int | None = None  # bytes in the cache as this process last counted them
        self._pool = pool
        self._copies: sqlite3.Connection | None = None

    @property
    def pool(self) -> Parts:
        """Threads that fetch blocks for readers (read-ahead and parallel ranges): the engine's `parts`, or for a
        cache made on its own, a pool of its own."""
        with self._lock:
            if self._pool is None:
                self._pool = Parts(8, name="gradient-read")
        return self._pool

    def path(self, sha256: str) -> Path:
        if not SHA256.fullmatch(sha256):  # names come from manifests: only a checked SHA-256 may become a path
            raise ValueError(f"not a SHA-256: {sha256!r}")
        return self.objects / sha256[:2] / sha256

    def get(self, sha256: str, size: int) -> Path | None:
        """The entry's file if the cache has it as it was installed (and marks it used), else None."""
        path = self.path(sha256)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        if st.st_size != size or st.st_mtime_ns % STAMP_NS:  # written since it was installed: never serve it
            self.discard(sha256)
            return None
        with contextlib.suppress(OSError):  # the access time orders eviction; set explicitly (noatime mounts)
            os.utime(path, ns=(time.time_ns(), st.st_mtime_ns))
        return path

    def fill(self, sha256: str, size: int, chunks: Callable[[], Iterable[bytes]], name: str) -> Path:
        """The entry for `sha256`, from the cache, else from a file `load` wrote with those bytes (checked), else
        from `chunks()`, checked (size, SHA-256) before anyone can see it. A mismatch of `chunks()` raises
        IntegrityError with `name` (which file, which version) in the message."""
        with self._filling_lock(sha256):
            found = self.get(sha256, size)
            if found:
                return found
            path = self._fill_from_copy(sha256, size) or self._fill_from(sha256, size, chunks, name)
        self._account(size, keep=path)
        return path

    def from_copy(self, sha256: str, size: int) -> Path | None:
        """The entry, if the cache has it or a file `load` wrote still holds those bytes (checked, then kept as the
        entry); None otherwise: the caller fetches (reading in place fetches only the blocks it needs)."""
        found = self.get(sha256, size)
        if found:
            return found
        with self._filling_lock(sha256):
            path = self.get(sha256, size) or self._fill_from_copy(sha256, size)
        if path is not None:
            self._account(size, keep=path)
        return path

    def _fill_from_copy(self, sha256: str, size: int) -> Path | None:
        copy = self.copies_of([sha256]).get(sha256)
        if copy is None or copy[0] != size:
            return None
        try:
            return self._fill_from(sha256, size, lambda: file_chunks(copy[1]), copy[1])
        except (IntegrityError, OSError):  # changed or gone since it was loaded
            return None

    def _fill_from(self, sha256: str, size: int, chunks: Callable[[], Iterable[bytes]], name: str) -> Path:
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
            return self._install(tmp, sha256)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    # -- verified copies outside the cache (see the module docstring) ---------------------------------------------
    def _copies_db(self) -> sqlite3.Connection:
        with self._lock:
            if self._copies is None:
                db = sqlite3.connect(
                    self.root / "copies.sqlite3", timeout=30, isolation_level=None, check_same_thread=False
                )
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("CREATE TABLE IF NOT EXISTS copies (sha256 TEXT PRIMARY KEY, size INTEGER, path TEXT)")
                self._copies = db
            return self._copies

    def remember_copies(self, files: Iterable[tuple[str, int, str]]) -> None:
        """Note that each (SHA-256, size, absolute path) was just written there verified (by `load`); the last
        copy of some bytes is the one remembered."""
        rows = list(files)
        if not rows:
            return
        db = self._copies_db()
        with self._lock:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR REPLACE INTO copies VALUES (?, ?, ?)", rows)
            db.execute("COMMIT")

    def copies_of(self, sha256s: Iterable[str]) -> dict[str, tuple[int, str]]:
        """SHA-256 -> (size, path) of a file `load` wrote with those bytes: a hint only, check the bytes on use."""
        names = list(sha256s)
        db = self._copies_db()
        found: dict[str, tuple[int, str]] = {}
        for i in range(0, len(names), 500):  # one query per 500, not one per file
            batch = names[i : i + 500]
            with self._lock:
                rows = db.execute(
                    f"SELECT sha256, size, path FROM copies WHERE sha256 IN ({','.join('?' * len(batch))})", batch
                ).fetchall()
            found.update((sha, (size, path)) for sha, size, path in rows)
        return found

    def _install(self, tmp: str, sha256: str) -> Path:
        os.chmod(tmp, 0o444)
        now = time.time_ns()
        os.utime(tmp, ns=(now, now - now % STAMP_NS))
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
        """Remove every entry; returns what was removed (as `info`). Mounted files are copies: they stay."""
        before = self.info()
        for folder in (self.objects, self.tmp):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(exist_ok=True)
            os.chmod(folder, 0o700)
        with self._lock:
            self._usage = 0
        db = self._copies_db()
        with self._lock:
            db.execute("DELETE FROM copies")
        return before
