"""Local folders for tests: write one from a dict of paths to bytes, read one back, a SHA-256 in hex."""

from __future__ import annotations

import hashlib
from pathlib import Path


def make_folder(root: Path, files: dict[str, bytes]) -> Path:
    """Write `files` (relative path: bytes) under `root`, making folders as needed; returns `root`."""
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def read_folder(root: Path) -> dict[str, bytes]:
    """The files of a folder, without the record loads keep in `.gradient/`."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] != ".gradient"
    }


def sha(data: bytes | str) -> str:
    """The SHA-256 of `data` (text as UTF-8), in hex, as manifests hold it."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()
