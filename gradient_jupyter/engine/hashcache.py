"""A cache of file SHA-256s keyed by (path, size, mtime, ctime, inode), like git's index: unchanged files are not
re-read. The ctime is what makes it safe: a user can restore a file's mtime (touch -r, cp -p, tar), never its ctime."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

from .hashing import RACY_SECONDS, Submits, block_hashes, settled, sha256_file
from .hashing import file_state as _key

__all__ = ["HashCache", "RACY_SECONDS"]


class HashCache:
    def __init__(self, path: Path, pool: Submits | None = None):
        self._pool = pool  # where block SHA-256s are computed (the engine's `parts`)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        columns = [row[1] for row in self._db.execute("PRAGMA table_info(hashes)")]
        if columns and "ctime_ns" not in columns:  # a cache from before ctime was part of the key: start afresh
            self._db.execute("DROP TABLE hashes")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER,"
            " ctime_ns INTEGER, ino INTEGER, sha256 TEXT)"
        )
        # Block SHA-256s belong to the bytes, not to a path: kept by the file's SHA-256 (see reading.py).
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS blocks (sha256 TEXT, block_size INTEGER, blocks TEXT,"
            " PRIMARY KEY (sha256, block_size))"
        )
        self._pending: list[tuple] = []
        self._pending_blocks: list[tuple] = []

    def fresh(self, path, st: os.stat_result | None = None, block_size: int | None = None) -> tuple[str, int]:
        """(SHA-256, size) of a file read now (for files `known` did not find), remembered for next time.
        With `block_size`, the block SHA-256s are computed in the same read and kept (see `blocks`)."""
        path = os.path.abspath(path)
        st = st or os.stat(path)
        blocks = None
        if block_size:
            sha, size, blocks = block_hashes(path, block_size, self._pool)
        else:
            sha, size = sha256_file(path)
        self.remember(path, st, sha, size, block_size, blocks)
        return sha, size

    def remember(
        self,
        path,
        st: os.stat_result,
        sha: str,
        size: int,
        block_size: int | None = None,
        blocks: list[str] | None = None,
    ) -> None:
        """Keep what a read of the file at `path` (whose state was `st` before the read) found, if the file was
        settled and has not moved since; block SHA-256s are kept by the bytes' SHA-256 either way."""
        path = os.path.abspath(path)
        if block_size and blocks is not None:
            with self._lock:
                self._pending_blocks.append((sha, block_size, json.dumps(blocks)))
        same = _key(os.stat(path)) == _key(st)
        if same and size == st.st_size and settled(st):
            with self._lock:
                self._pending.append((path, size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, sha))

    def known(self, paths) -> dict[str, tuple[str, int]]:
        """abspath -> (SHA-256, size) for the files among `paths` whose size, mtime, ctime and inode are as cached."""
        stats = {}
        for path in paths:
            path = os.path.abspath(path)
            try:
                stats[path] = os.stat(path)
            except OSError:
                continue
        return self.lookup(stats)

    def lookup(self, stats: dict[str, os.stat_result]) -> dict[str, tuple[str, int]]:
        """`known` for files stat'ed already: abspath -> its stat (of the file itself, through any link)."""
        keys = {path: _key(st) for path, st in stats.items()}
        found = {}
        names = list(keys)
        for i in range(0, len(names), 500):  # one query per 500 files, not one per file
            batch = names[i : i + 500]
            with self._lock:
                rows = self._db.execute(
                    f"SELECT path, size, mtime_ns, ctime_ns, ino, sha256 FROM hashes WHERE path "
                    f"IN ({','.join('?' * len(batch))})",
                    batch,
                ).fetchall()
            for path, size, mtime_ns, ctime_ns, ino, sha in rows:
                if keys[path] == (size, mtime_ns, ctime_ns, ino):
                    found[path] = (sha, size)
        return found

    def blocks(self, sha256: str, block_size: int) -> list[str] | None:
        """The block SHA-256s of the bytes with this SHA-256, if a `fresh` with `block_size` computed them."""
        with self._lock:
            for sha, size, blocks in self._pending_blocks:
                if (sha, size) == (sha256, block_size):
                    return json.loads(blocks)
            row = self._db.execute(
                "SELECT blocks FROM blocks WHERE sha256 = ? AND block_size = ?", (sha256, block_size)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def flush(self) -> None:
        """Write what was learned, in one transaction."""
        with self._lock:
            rows, self._pending = self._pending, []
            blocks, self._pending_blocks = self._pending_blocks, []
            if rows or blocks:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?, ?)", rows)
                self._db.executemany("INSERT OR REPLACE INTO blocks VALUES (?, ?, ?)", blocks)
                self._db.execute("COMMIT")

    def close(self) -> None:
        self.flush()
        self._db.close()
