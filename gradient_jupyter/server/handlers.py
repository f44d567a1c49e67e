"""REST handlers: thin doors over the engine (filled in by the server API issue)."""
from __future__ import annotations

default_handlers: list = []
