"""A cache of file SHA-256s keyed by (path, size, mtime, inode), like git's index: unchanged files are not re-read."""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from .stores import sha256_file

RACY_SECONDS = 2.0  # a file modified this recently may still change within the same mtime tick: never cache it


class HashCache:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,"
                         " ino INTEGER, sha256 TEXT)")
        self._pending: list[tuple] = []

    def fresh(self, path, st: os.stat_result | None = None) -> tuple[str, int]:
        """(SHA-256, size) of a file read now (for files `known` did not find), remembered for next time."""
        path = os.path.abspath(path)
        st = st or os.stat(path)
        sha, size = sha256_file(path)
        after = os.stat(path)
        same = (after.st_size, after.st_mtime_ns, after.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)
        if same and size == st.st_size and time.time() - st.st_mtime > RACY_SECONDS:
            with self._lock:
                self._pending.append((path, size, st.st_mtime_ns, st.st_ino, sha))
        return sha, size

    def known(self, paths) -> dict[str, tuple[str, int]]:
        """abspath -> (SHA-256, size) for the files among `paths` whose size, mtime and inode are as cached."""
        stats = {}
        for path in paths:
            path = os.path.abspath(path)
            try:
                st = os.stat(path)
            except OSError:
                continue
            stats[path] = (st.st_size, st.st_mtime_ns, st.st_ino)
        found = {}
        names = list(stats)
        for i in range(0, len(names), 500):  # one query per 500 files, not one per file
            batch = names[i:i + 500]
            with self._lock:
                rows = self._db.execute(f"SELECT path, size, mtime_ns, ino, sha256 FROM hashes WHERE path IN "
                                        f"({','.join('?' * len(batch))})", batch).fetchall()
            for path, size, mtime_ns, ino, sha in rows:
                if stats[path] == (size, mtime_ns, ino):
                    found[path] = (sha, size)
        return found

    def flush(self) -> None:
        """Write what was learned, in one transaction."""
        with self._lock:
            rows, self._pending = self._pending, []
            if rows:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")

    def close(self) -> None:
        self.flush()
        self._db.close()
