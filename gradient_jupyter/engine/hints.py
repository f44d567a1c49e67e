"""JSON files in the data home's `cache/` that only spare round trips (the dataset-name, latest-version and
bucket-region caches): what they hold is a hint, believed only while the bucket confirms it, so anything unreadable
in one reads as empty (with a warning when it is not JSON we wrote: engine/records.py `read_json`). Imported by the
stores as well as the datasets, so it imports only records.py (and what that imports), no store."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from .records import MAX_LIST, BadRecord, read_json_file

log = logging.getLogger("gradient_jupyter")


def write_atomically(path: Path, text: str) -> None:
    """Write a whole file through a temporary one, so no reader sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class HintFile:
    """One JSON object in a file: read whole ({} if missing, unreadable or not an object), written whole. Two
    processes writing at once may lose one entry, which costs a round trip later, nothing more."""

    def __init__(self, path: Path):
        self.path = path

    def _read(self) -> dict:
        try:
            return read_json_file(self.path, MAX_LIST) or {}
        except OSError:
            return {}
        except BadRecord as exc:
            log.warning("%s It is only a hint: ignored, and written again when next needed.", exc.message)
            return {}

    def _write(self, hints: dict) -> None:
        write_atomically(self.path, json.dumps(hints))
