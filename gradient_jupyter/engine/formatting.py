"""Plain words for numbers, shared by the engine's messages and every front end."""

from __future__ import annotations


def human_bytes(n: int) -> str:
    """A size in binary units, as people read it: 512 B, 1.5 KiB, 3.0 GiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
