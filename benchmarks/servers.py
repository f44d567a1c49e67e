"""What the benchmark measures against: SeaweedFS or moto on 127.0.0.1, and the TCP latency proxy in front."""

from __future__ import annotations

import functools
import logging
import subprocess
import sys
from pathlib import Path

from results import Failed

HERE = Path(__file__).resolve().parent


def start_moto(speedups: bool):
    """A ThreadedMotoServer on 127.0.0.1 in this process; returns (server, url)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if speedups:
        # moto lists its own package folder on every request (under a global lock) to route it; the answer never
        # changes, so remember it. This only makes the local server less of a bottleneck, for every client alike.
        from moto import backends

        backends.list_of_moto_modules = functools.cache(lambda f=backends.list_of_moto_modules: tuple(f()))
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://127.0.0.1:{port}"


class ProxyProcess:
    """benchmarks/latency_proxy.py in its own process (its own GIL); it stops when we close its stdin."""

    def __init__(self, target: str, rtt_ms: float):
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "latency_proxy.py"), "--target", target, "--rtt-ms", str(rtt_ms)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise Failed(f"latency proxy did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def stop(self) -> str:
        self.proc.stdin.close()
        try:
            out = self.proc.stdout.read()
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out = ""
        return out.strip()
