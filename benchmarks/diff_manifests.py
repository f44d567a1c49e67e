"""How long the diff of two large manifests takes (`datasets versions diff`, `save --dry-run`, the panel's diff).

    python3 benchmarks/diff_manifests.py [--files 100000] [--runs 5]

Builds two manifests' file lists in memory (no store, no I/O): the second has 1% of the files modified, 1% removed,
1% renamed (same bytes, new path), 1% added, and the rest unchanged, then times `diff_files` on them `--runs` times
and prints the median and the slowest run. Goal: under a second for 100,000 files. CPU only, single-threaded.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gradient_jupyter.engine.history import diff_files


def manifests(n: int) -> tuple[list[dict], list[dict]]:
    def entry(path: str, content: str) -> dict:
        return {
            "path": path,
            "size": len(content),
            "sha256": hashlib.sha256(content.encode()).hexdigest(),
            "key": f"team/datasets/ds/versions/v/data/{path}",
        }

    before = [entry(f"part-{i // 1000:03d}/file-{i:06d}.csv", f"content {i}") for i in range(n)]
    after = []
    for i, e in enumerate(before):
        kind = i % 100
        if kind == 0:  # modified
            after.append(entry(e["path"], f"changed {i}"))
        elif kind == 1:  # removed
            continue
        elif kind == 2:  # renamed
            after.append({**e, "path": e["path"].replace("file-", "moved-")})
        else:
            after.append(e)
        if kind == 3:  # added
            after.append(entry(f"new/{i:06d}.csv", f"new {i}"))
    return before, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    before, after = manifests(args.files)
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        d = diff_files(before, after)
        times.append(time.perf_counter() - start)
    print(f"{args.files:,} files vs {len(after):,}: {d.summary()}")
    print(
        f"diff_files: median {statistics.median(times):.3f} s, slowest {max(times):.3f} s over {args.runs} runs "
        f"(goal: < 1 s for 100,000 files)"
    )


if __name__ == "__main__":
    main()
