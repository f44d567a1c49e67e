"""What a benchmark run measured (`Result`), and the tables it prints: medians and ratios, and issue 16's targets."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from data import MIB, Data

if TYPE_CHECKING:
    from run import Bench

TOOL_NAMES = {
    "ours": "ours",
    "ours-cli": "ours (console script)",
    "aws": "aws s3 sync",
    "s5cmd": "s5cmd cp",
    "boto3": "boto3 loop",
    "sha256sum": "sha256sum",
    "aws-incr": "aws s3 sync (incremental)",
}


@dataclass
class Result:
    workload: str  # e.g. "small save"
    mode: str  # "local", "proxy" or "-"
    tool: str
    seconds: list[float] = field(default_factory=list)  # what the ratios use: a command's whole run
    call: list[float] = field(default_factory=list)  # ours: the save/load call alone, without start-up
    rss: list[int] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # user + system seconds of the tool's processes
    extra: dict = field(default_factory=dict)
    error: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

    @property
    def call_median(self) -> float | None:
        return statistics.median(self.call) if self.call else None


class Failed(Exception):
    pass


def rate(r: Result, data: Data, files: int) -> str:
    if r.median is None:
        return ""
    size = {"small": data.small_bytes, "large": data.large_bytes, "change": data.small_bytes}[r.workload.split()[0]]
    if r.workload.startswith("large"):
        return f"{size / MIB / r.median:.1f} MiB/s"
    return f"{files / r.median:.0f} files/s"


def cpu_per_file(r: Result, files: int) -> float | None:
    """Milliseconds of CPU (user + system, from getrusage of the tool's processes) per file of workload (1)."""
    if not r.cpu or not r.workload.startswith(("small save", "small load")):
        return None
    return statistics.median(r.cpu) / files * 1000


def table(bench: Bench, files: int) -> list[str]:
    """One row per workload, mode and tool: medians, and how many times faster ours is than each baseline."""
    ours = {(r.workload, r.mode): r for r in bench.results.values() if r.tool == "ours"}
    columns = [
        ("workload", 17),
        ("mode", 5),
        ("tool", 26),
        ("median s", 9),
        ("min-max s", 11),
        ("rate", 14),
        ("CPU s", 6),
        ("CPU ms/file", 11),
        ("ours x faster", 13),
        ("ours call s", 11),
        ("ours peak RSS", 13),
    ]
    rows = [
        "| " + " | ".join(name.ljust(w) if i < 3 else name.rjust(w) for i, (name, w) in enumerate(columns)) + " |",
        "|" + "|".join("-" * (w + 2) for _, w in columns) + "|",
    ]
    for r in bench.results.values():
        o = ours.get((r.workload, r.mode))
        cells = [r.workload, r.mode, TOOL_NAMES.get(r.tool, r.tool)]
        if r.error or r.median is None:
            cells += ["failed" if r.error else "n/a"] + [""] * 7
        else:
            ratio = ""
            if r.tool not in ("ours", "ours-cli") and o and o.median:
                # hashing compares the work alone; everything else compares whole commands
                mine = o.call_median if r.workload == "large hash" else o.median
                ratio = f"{r.median / mine:.2f}x"
            cells += [
                f"{r.median:.2f}",
                f"{min(r.seconds):.2f}-{max(r.seconds):.2f}",
                "" if "hash" in r.workload else rate(r, bench.data, files),
                f"{statistics.median(r.cpu):.1f}" if r.cpu else "",
                f"{cpu_per_file(r, files):.2f}" if r.cpu and cpu_per_file(r, files) is not None else "",
                ratio,
                f"{r.call_median:.2f}" if r.tool == "ours" and r.call else "",
                f"{max(r.rss) / MIB:.0f} MiB" if r.rss else "",
            ]
        rows.append(
            "| "
            + " | ".join(
                c.ljust(w) if i < 3 else c.rjust(w) for i, (c, (_, w)) in enumerate(zip(cells, columns, strict=True))
            )
            + " |"
        )
    return rows


def targets(bench: Bench, files: int) -> list[str]:
    """Issue 16's targets, each with what was measured: | target | measured | goal | met |."""
    R = bench.results
    out = ["| target | measured | goal | |", "|---|---|---|---|"]

    def row(text: str, value: float | None, goal: str, met, fmt: str = "{:.2f}x", also: str = "") -> None:
        shown = "n/a" if value is None else fmt.format(value) + also
        verdict = "not measured" if value is None else ("met" if met(value) else "**MISSED**")
        out.append(f"| {text} | {shown} | {goal} | {verdict} |")

    def ratio(workload: str, mode: str, base: str, *, call: bool = False) -> float | None:
        o, b = R.get((workload, mode, "ours")), R.get((workload, mode, base))
        if not (o and b and o.median and b.median):
            return None
        return b.median / (o.call_median if call else o.median)

    def versus(text: str, workload: str, mode: str, base: str, goal: float) -> None:
        """Ours as a whole command (start-up included, like the baselines); the call alone in brackets."""
        call = ratio(workload, mode, base, call=True)
        row(
            text,
            ratio(workload, mode, base),
            f">= {goal:g}x",
            at_least(goal),
            also=f" (call {call:.2f}x)" if call else "",
        )

    def at_least(goal: float):
        return lambda v: v >= goal

    modes = bench.args.modes
    for op in ("save", "load"):
        for mode in modes:
            versus(f"small {op}, {mode}: s5cmd / ours", f"small {op}", mode, "s5cmd", 1)
            versus(f"small {op}, {mode}: aws s3 sync / ours", f"small {op}", mode, "aws", 2.5)
    for op in ("save", "load"):
        for mode in modes:
            versus(f"large {op}, {mode}: aws s3 sync / ours", f"large {op}", mode, "aws", 1)
            versus(f"large {op}, {mode}: s5cmd / ours", f"large {op}", mode, "s5cmd", 0.8)
    for mode in modes:
        versus(f"1% change, {mode}: aws s3 sync to a new prefix / ours", "change save", mode, "aws", 10)
        o = R.get(("change save", mode, "ours"))
        sent = max(o.extra["bytes_sent"]) if o and o.extra.get("bytes_sent") else None
        row(
            f"1% change, {mode}: bytes sent (changed files hold {bench.data.changed_bytes})",
            sent,
            f"= {bench.data.changed_bytes}",
            lambda v: v == bench.data.changed_bytes,
            "{:d}",
        )
    for kind in ("small", "large"):
        for mode in modes:
            for cache in ("warm", "cold"):
                full, held = R.get((f"{kind} load", mode, "ours")), R.get((f"{kind} reload {cache}", mode, "ours"))
                typed = R.get((f"{kind} reload {cache}", mode, "ours-cli"))
                value = full.median / typed.median if full and typed and full.median and typed.median else None
                call = full.call_median / held.call_median if full and held and full.call and held.call else None
                row(
                    f"{kind} load into a folder holding the files, {mode}, {cache} hash cache: ours full load / "
                    "`gradient-jupyter load` into the folder (whole commands)",
                    value,
                    ">= 20x",
                    at_least(20),
                    also=f" (calls {call:.1f}x)" if call else "",
                )
    for op in ("save", "load"):
        for mode in modes:
            o, b = R.get((f"small {op}", mode, "ours")), R.get((f"small {op}", mode, "s5cmd"))
            mine, theirs = (cpu_per_file(o, files) if o else None), (cpu_per_file(b, files) if b else None)
            row(
                f"CPU per file, small {op}, {mode}: ours ms (s5cmd {theirs:.2f} ms)"
                if theirs is not None
                else f"CPU per file, small {op}, {mode}: ours ms",
                mine,
                "<= s5cmd's",
                lambda v, t=theirs: t is not None and v <= t,
                "{:.2f} ms",
            )
    o, s = R.get(("large hash", "-", "ours")), R.get(("large hash", "-", "sha256sum"))
    row(
        "hashing (2): ours throughput / sha256sum's",
        s.median / o.call_median if o and s and o.call and s.median else None,
        ">= 0.85x",
        at_least(0.85),
    )
    rss = [max(r.rss) for r in R.values() if r.tool == "ours" and r.workload == "small save" and r.rss]
    row(
        f"peak RSS of ours saving {files} files (the target is for 20,000)",
        max(rss) / MIB if rss else None,
        "< 300 MiB",
        lambda v: v < 300,
        "{:.0f} MiB",
    )
    return out
