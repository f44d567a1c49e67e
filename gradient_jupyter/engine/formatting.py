"""Plain words for numbers and times, shared by the engine's messages and every front end."""

from __future__ import annotations


def human_bytes(n: int) -> str:
    """A size in binary units, as people read it: 512 B, 1.5 KiB, 3.0 GiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def human_time(stamp: str | None) -> str:
    """An ISO time as people read it: date and minute, in UTC like the store keeps it (2026-01-01 09:30)."""
    return (stamp or "")[:16].replace("T", " ")
