"""The console script in its own process, free loopback ports, and the secret no output may contain."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

SECRET = "s3cr3t-DO-NOT-LEAK-7f9a2b"


def cli(*words, cwd=None, input=None, env=None, timeout=120) -> subprocess.CompletedProcess:
    """The console script in its own process (`python -m gradient_jupyter.cli WORDS`), with this test's
    environment (plus `env`); its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "gradient_jupyter.cli", *map(str, words)],
        capture_output=True,
        text=True,
        input=input,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
