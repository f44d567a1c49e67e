"""Progress bars for the front ends: the engine reports ProgressEvents, a front end draws them with tqdm."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

PHASES = {"hash": "Hashing", "upload": "Uploading", "download": "Downloading", "verify": "Checking"}
# Phases whose bar shows only once they have lasted this long: load's check of the files DEST already holds is
# mostly over before a bar could help (their hashes are known), and drawing one costs a reload more than the
# check itself (tqdm's import alone is about 25 ms).
QUIET_SECONDS = {"verify": 0.5}


def text_bar(**kwargs):
    """A text bar on stderr (the console script)."""
    from tqdm import tqdm

    return tqdm(file=sys.stderr, unit_scale=True, unit_divisor=1024, **kwargs)


def auto_bar(**kwargs):
    """A widget bar in a notebook kernel, a text bar elsewhere (tqdm.auto decides)."""
    from tqdm.auto import tqdm

    return tqdm(unit_scale=True, unit_divisor=1024, **kwargs)


class ProgressBars:
    """A ProgressEvent callback drawing one byte bar per phase; use it as a context manager so bars always close.

    `make_bar(total=, unit=, desc=)` returns a tqdm-like bar. Events may come from worker threads.
    """

    def __init__(self, make_bar: Callable | None):
        self.make_bar = make_bar
        self.bar: Any = None
        self.phase: str | None = None
        self.started = 0.0  # when the phase began (time.monotonic)
        self.lock = threading.Lock()
        self.closed = False  # once closed (the transfer ended, Ctrl-C too), a late event draws no bar again

    def __call__(self, event) -> None:
        if self.make_bar is None or self.closed:
            return
        with self.lock:
            if event.phase != self.phase:
                self._close()
                self.phase, self.started = event.phase, time.monotonic()
            if self.bar is None:
                if time.monotonic() - self.started < QUIET_SECONDS.get(event.phase, 0):
                    return
                self.bar = self.make_bar(total=event.bytes_total, unit="B", desc=PHASES.get(event.phase, event.phase))
            bar = self.bar
            if bar.total != event.bytes_total:
                bar.total = event.bytes_total
            bar.set_postfix_str(f"{event.files_done}/{event.files_total} files", refresh=False)
            bar.update(event.bytes_done - bar.n)

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> ProgressBars:
        return self

    def __exit__(self, *exc) -> None:
        with self.lock:
            self.closed = True
            self._close()
