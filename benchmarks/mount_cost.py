"""What mounts of copies cost next to the hard links they replaced (issue 25 item 4), in one run.

    python benchmarks/mount_cost.py [--small 2000] [--large 3] [--large-mib 256] [--runs 3]

Saves two versions on the embedded Gradient Managed provider of a fresh data home: `--small` files of 4-64 KiB and
`--large` files of `--large-mib` MiB. With the content cache warm (a first mount fills it), each version is mounted
into new folders: with hard links to the cache's entries (what mount did before: a write by root went through to the
cache and every other mount), and as mount does now (reflinks where the file system has them, else copies). Reports
the median mount time, the disk each mount adds (blocks of files not shared with the cache), and what checking a
mount costs: mounting the same version again (one stat a file) and `--verify` (every byte hashed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MIB = 1024**2


def added_disk(folder: Path, cache: Path) -> int:
    """Bytes of disk the mount's files hold that the cache's entries do not (hard links add none)."""
    cached = {(st.st_dev, st.st_ino) for st in (p.stat() for p in cache.rglob("*") if p.is_file())}
    total = 0
    for p in folder.rglob("*"):
        st = p.lstat()
        if p.is_file() and (st.st_dev, st.st_ino) not in cached:
            total += st.st_blocks * 512
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=3)
    parser.add_argument("--large-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mount-cost-"))
    os.environ["GRADIENT_JUPYTER_HOME"] = str(work / "home")
    from gradient_jupyter.engine import Engine, GradientStorage, transfer
    from gradient_jupyter.engine.content import mount

    engine = Engine(GradientStorage(managed_quota=64 * 1024**3))
    rng = __import__("random").Random(1)
    small = work / "small"
    for i in range(args.small):
        (small / f"d{i % 20}").mkdir(parents=True, exist_ok=True)
        (small / f"d{i % 20}" / f"f{i}.bin").write_bytes(os.urandom(rng.randint(4, 64) * 1024))
    large = work / "large"
    large.mkdir()
    for i in range(args.large):
        with open(large / f"big{i}.bin", "wb") as f:
            for _ in range(args.large_mib):
                f.write(os.urandom(MIB))
    transfer.save(engine, "small", small)
    transfer.save(engine, "large", large)
    cache = engine.content_cache.objects

    def hard_link(src, target):  # mount before issue 25: the cache's entry itself
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(src, target)
        return True

    copy = mount._copy
    print(f"file system of {work}: {os.popen(f'stat -f -c %T {work}').read().strip()}")
    print("| version | way | mount (median s) | disk added per mount | again (s) | --verify (s) |")
    print("|---|---|---|---|---|---|")
    for name, nbytes in (
        ("small", sum(p.stat().st_size for p in small.rglob("*") if p.is_file())),
        ("large", args.large * args.large_mib * MIB),
    ):
        mount.mount(engine, name, work / f"warm-{name}")  # fills the cache
        for way, place in (("hard links (before)", hard_link), ("copies (now)", copy)):
            mount._copy = place
            times, disk = [], 0
            for run in range(args.runs):
                folder = work / f"{name}-{way[:4]}-{run}"
                os.sync()  # no run pays for the writeback of another's bytes
                started = time.perf_counter()
                mount.mount(engine, name, folder)
                times.append(time.perf_counter() - started)
                disk = added_disk(folder, cache)
            started = time.perf_counter()
            assert mount.mount(engine, name, folder).unchanged
            again = time.perf_counter() - started
            started = time.perf_counter()
            mount.mount(engine, name, folder, verify=True)
            verify = time.perf_counter() - started
            print(
                f"| {name} ({nbytes / MIB:.0f} MiB) | {way} | {statistics.median(times):.3f} | "
                f"{disk / MIB:.1f} MiB | {again:.3f} | {verify:.3f} |"
            )
        mount._copy = copy
    print(f"(left in {work}: remove it with chmod -R u+w {work} && rm -rf {work})")


if __name__ == "__main__":
    main()
