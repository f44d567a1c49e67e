"""Where the time goes in a py-spy profile (collapsed stacks, `py-spy record --format raw`).

    python benchmarks/profile_summary.py PROFILE.txt [--top 15]

Prints, as shares of all samples of all threads (py-spy samples threads that are on a CPU, so this is CPU time):
the functions that use the time themselves (self), and the functions of gradient_jupyter and botocore that lead to
it (inclusive).
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def frames(stack: str) -> list[tuple[str, str]]:
    """(label, path) per frame; labels drop line numbers so the lines of one function add up."""
    out = []
    for f in stack.split(";"):
        m = FRAME.match(f)
        if not m:
            continue  # process / thread labels
        path = m["file"]
        short = (
            "/".join(path.split("/")[-2:])
            if "gradient_jupyter" in path or "site-packages" in path
            else path.split("/")[-1]
        )
        out.append((f"{m['func']} ({short})", path))
    return out


def summarize(path: Path, top: int = 15) -> list[str]:
    own, inclusive = collections.Counter(), collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        fs = frames(stack)
        if not fs:
            continue
        own[fs[-1][0]] += n
        for label, where in set(fs):
            if "gradient_jupyter" in where or "botocore" in where or "urllib3" in where:
                inclusive[label] += n
    if not total:
        return [f"{path.name}: no samples"]
    lines = [f"{path.name}: {total} samples", "  self:"]
    lines += [f"    {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    lines += ["  inclusive (gradient_jupyter, botocore, urllib3):"]
    lines += [f"    {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top)]
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("profiles", nargs="+", type=Path)
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args()
    for path in args.profiles:
        print("\n".join(summarize(path, args.top)))


if __name__ == "__main__":
    main()
