"""The benchmark's data: many small files in nested folders, a copy with 1% changed, and a few large files."""

from __future__ import annotations

import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

MIB = 1024**2


@dataclass
class Data:
    small: Path
    changed: Path
    large: Path
    small_bytes: int
    changed_bytes: int  # bytes of the changed files in `changed`
    changed_paths: list[str]  # relative paths of the changed files
    large_bytes: int

    @property
    def changed_files(self) -> int:
        return len(self.changed_paths)


def generate(root: Path, files: int, large_count: int, large_mib: int, seed: int = 8) -> Data:
    """Incompressible files: `files` of 4-64 KiB in nested folders, a copy with 1% changed, and large ones."""
    rng = random.Random(seed)
    small, changed, large = root / "small", root / "changed", root / "large"
    small_bytes = 0
    for i in range(files):
        path = small / f"d{i % 8}" / f"e{(i // 8) % 16:02d}" / f"part-{i:05d}.bin"
        if i % 50 == 0:
            path = small / f"top-{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        size = rng.randint(4 * 1024, 64 * 1024)
        path.write_bytes(os.urandom(size))
        small_bytes += size
    # A copy with fresh modification times (copyfile, not copy2), then 1% of it rewritten with a new size, so that
    # size-and-time tools (aws s3 sync) see the change too.
    shutil.copytree(small, changed, copy_function=shutil.copyfile)
    paths = sorted(p for p in changed.rglob("*") if p.is_file())
    picked = rng.sample(paths, max(1, len(paths) // 100))
    changed_bytes = 0
    for p in picked:
        old = p.stat().st_size
        size = rng.choice([s for s in (rng.randint(4 * 1024, 64 * 1024), old + 1) if s != old])
        p.write_bytes(os.urandom(size))
        changed_bytes += size
    large.mkdir(parents=True)
    for i in range(large_count):
        with open(large / f"large-{i}.bin", "wb") as f:
            for _ in range(large_mib):
                f.write(os.urandom(MIB))
    settle(small)
    settle(large)
    return Data(
        small,
        changed,
        large,
        small_bytes,
        changed_bytes,
        sorted(p.relative_to(changed).as_posix() for p in picked),
        large_count * large_mib * MIB,
    )


def settle(folder: Path) -> Path:
    """Date every file an hour back: files last changed a moment ago are never taken from ours' hash cache."""
    past = time.time() - 3600
    for p in folder.rglob("*"):
        if p.is_file():
            os.utime(p, (past, past))
    return folder


def fresh_copy(src: Path, dest: Path, *, settled: bool = False) -> Path:
    """A copy with new modification times (or an hour back, if settled)."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest, copy_function=shutil.copyfile)
    return settle(dest) if settled else dest
