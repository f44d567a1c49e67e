"""This machine and process, for the records that name their writer (a save's pending.json, a commit's
committing.json, a load's temporary files), and whether a writer of this machine still runs."""

from __future__ import annotations

import os


def this_host() -> str:
    """The machine's name, as records of this machine's writers give it."""
    import socket  # here: a console-script reload never needs it (tests/test_cli_start.py)

    return socket.gethostname()


def process_alive(pid: int) -> bool:
    """Whether a process of this machine with this id runs (one of another user's counts as running)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except OSError:
        return False
    return True
