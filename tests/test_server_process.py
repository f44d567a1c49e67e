"""The extension as users get it: enabled by its jupyter-config, driven over HTTP by a script with `requests`."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import requests

from .helpers import SECRET
from .helpers.jupyter_process import Server, jupyter_env

MiB = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent


def test_jupyter_server_extension_list_shows_it_enabled(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "jupyter", "server", "extension", "list"],
        capture_output=True,
        text=True,
        env=jupyter_env(tmp_path),
        timeout=120,
    )
    out = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout + r.stderr)
    assert re.search(r"gradient_jupyter enabled", out), out
    assert re.search(r"gradient_jupyter \S+ OK", out), out


def test_the_wheel_ships_the_config_that_enables_it_and_the_openapi_document(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(tmp_path.glob("gradient_jupyter-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    config = [n for n in names if n.endswith("etc/jupyter/jupyter_server_config.d/gradient_jupyter.json")]
    assert config and ".data/data/" in config[0], names
    assert '"gradient_jupyter": true' in zipfile.ZipFile(wheel).read(config[0]).decode()
    assert "gradient_jupyter/server/openapi.json" in names


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("server"))
    yield s
    s.stop()


def test_a_script_runs_the_whole_flow_over_http_with_a_token(server, s3_bucket):
    endpoint, bucket = s3_bucket
    assert requests.get(server.url + "storage-providers", timeout=30).status_code == 403  # no token, no entry
    r = server(
        "POST",
        "storage-providers",
        json={
            "name": "moto",
            "type": "s3",
            "config": {"bucket": bucket, "endpoint": endpoint, "accessKey": "k", "secretAccessKey": SECRET},
        },
    )
    assert r.status_code == 201 and SECRET not in r.text
    provider = r.json()["id"]
    ds = server("POST", "datasets", json={"name": "scripted", "storageProviderId": provider}).json()
    v = server("POST", f"datasets/{ds['id']}/versions", json={"message": "v1"}).json()["version"]
    files = {"a.txt": b"alpha\n", "sub/b.bin": os.urandom(2 * MiB + 5)}
    for path, data in files.items():
        assert server("PUT", f"datasets/{ds['id']}/versions/{v}/files/{path}", data=data).status_code == 200
    assert server("POST", f"datasets/{ds['id']}/versions/{v}/commit").json()["isCommitted"]
    assert server("PUT", f"datasets/{ds['id']}/tags/prod", json={"version": v}).status_code == 200
    resolved = server("GET", "datasets/ref/scripted:prod").json()
    assert resolved["version"]["version"] == v and resolved["version"]["fileCount"] == 2
    listing = server("GET", f"datasets/{ds['id']}/versions/{v}/files").json()["files"]
    for f in listing:
        with server("GET", f"datasets/scripted/versions/{v}/files/{f['path']}", stream=True) as r:
            r.raise_for_status()
            data = b"".join(r.iter_content(256 * 1024))
        assert data == files[f["path"]] and hashlib.sha256(data).hexdigest() == f["sha256"]
        assert r.headers["X-Gradient-SHA256"] == f["sha256"]
    assert SECRET not in "".join(server.log)


class RandomBody:
    """A request body of `size` random bytes, made as it is read (requests streams objects with a length)."""

    def __init__(self, size):
        self.left, self.sha = size, hashlib.sha256()
        self.size = size

    def __len__(self):
        return self.left

    def read(self, n=-1):
        n = self.left if n < 0 else min(n, self.left)
        chunk = os.urandom(n)
        self.left -= n
        self.sha.update(chunk)
        return chunk


@pytest.mark.slow
def test_a_body_larger_than_tornados_buffer_streams_through_with_bounded_memory(server):
    ds = server("POST", "datasets", json={"name": "big"}).json()
    v = server("POST", f"datasets/{ds['id']}/versions", json={}).json()["version"]
    base = f"datasets/{ds['id']}/versions/{v}/files/"
    assert server("PUT", base + "warmup", data=os.urandom(2 * MiB)).status_code == 200
    with server("GET", base + "warmup", stream=True) as r:
        assert len(r.content) == 2 * MiB
    before = server.peak_rss()
    body = RandomBody(160 * MiB)  # tornado's default max_buffer_size and max_body_size are 100 MiB
    r = server("PUT", base + "big.bin", data=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"path": "big.bin", "size": body.size, "sha256": body.sha.hexdigest()}
    with server("GET", base + "big.bin", stream=True) as r:
        h = hashlib.sha256()
        for chunk in r.iter_content(MiB):
            h.update(chunk)
    assert h.hexdigest() == body.sha.hexdigest()
    grew = server.peak_rss() - before
    print(f"peak RSS of the server grew by {grew / MiB:.1f} MiB for a {body.size // MiB} MiB upload and download")
    assert grew < 48 * MiB
    chunked = server("PUT", base + "chunked.bin", data=iter([b"a" * MiB] * 3))  # Transfer-Encoding: chunked
    assert chunked.status_code == 200 and chunked.json()["size"] == 3 * MiB
