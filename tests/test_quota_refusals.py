"""A save, `versions create --source-path` or `files put` that Gradient Managed's quota refuses leaves nothing
behind: no dataset, no version, no byte. Through the Python API (embedded, and on SeaweedFS over HTTP) and the
console script."""

from __future__ import annotations

import json

import pytest

import gradient_jupyter
from gradient_jupyter.engine import Engine, QuotaExceeded

from .helpers import cli, make_folder

QUOTA = 10_000


def everything(engine: Engine) -> list[str]:
    """Every object key in Gradient Managed's store under the team's folder."""
    return [o.key for o in engine.store(engine.registry.managed()).list(f"{engine.team_id}/")]


@pytest.fixture(params=["embedded", "seaweed"])
def managed(request, tmp_path, monkeypatch) -> Engine:
    """Gradient Managed with a 10,000-byte quota, embedded or on a SeaweedFS bucket over HTTP, set in the Jupyter
    config that the Python API and the console script read; the engine of that config."""
    settings: dict = {"managed_quota": QUOTA}
    if request.param == "seaweed":
        server, bucket = request.getfixturevalue("seaweed_bucket")
        settings.update(
            managed_endpoint=server.endpoint,
            managed_bucket=bucket,
            managed_access_key=server.access_key,
            managed_secret_key=server.secret_key,
        )
    config = tmp_path / "jupyter-config"
    config.mkdir()
    (config / "jupyter_server_config.json").write_text(json.dumps({"GradientStorage": settings}))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config))
    engine = Engine()
    assert engine.store(engine.registry.managed()).quota == QUOTA
    return engine


def test_a_save_of_a_new_dataset_refused_by_the_quota_creates_no_dataset(managed, tmp_path):
    big = make_folder(tmp_path / "big", {"a": b"x" * 6000, "b/c": b"y" * 5000})
    with pytest.raises(QuotaExceeded, match=r"quota exceeded.*\(10000 bytes\); this needs .*\(11000 bytes\)"):
        gradient_jupyter.save("flowers", big, progress=False)
    assert managed.datasets.find("flowers")[0] is None and managed.datasets.list() == []
    assert everything(managed) == []
    # the name is free, and a save that fits the quota makes the dataset as usual
    small = make_folder(tmp_path / "small", {"a": b"x" * 6000})
    s = gradient_jupyter.save("flowers", small, progress=False)
    assert s.dataset.name == "flowers" and s.bytes_sent == 6000


def test_the_console_script_refuses_a_save_and_a_new_version_past_the_quota_leaving_nothing(managed, tmp_path):
    big = make_folder(tmp_path / "big", {"a": b"x" * 6000, "b/c": b"y" * 5000})
    refused = cli("save", "flowers", big)
    assert refused.returncode == 1 and "quota exceeded" in refused.stderr and "(11000 bytes)" in refused.stderr
    listed = cli("datasets", "list")
    assert listed.returncode == 0 and "flowers" not in listed.stdout, listed.stderr
    assert everything(managed) == []

    assert cli("datasets", "create", "--name", "roses").returncode == 0
    refused = cli("datasets", "versions", "create", "--id", "roses", "--source-path", big)
    assert refused.returncode == 1 and "quota exceeded" in refused.stderr and "(11000 bytes)" in refused.stderr
    assert managed.datasets.list_versions("roses", committed=None) == []
    assert not [k for k in everything(managed) if "/versions/" in k]  # not a byte of the refused files was sent

    created = cli("datasets", "versions", "create", "--id", "roses")
    assert created.returncode == 0, created.stderr
    version = managed.datasets.list_versions("roses", committed=False)[0].version
    refused = cli("datasets", "files", "put", "--id", f"roses:{version}", "--source-path", big)
    assert refused.returncode == 1 and "quota exceeded" in refused.stderr and "(11000 bytes)" in refused.stderr
    assert managed.datasets.list_files("roses", version) == []
    assert not [k for k in everything(managed) if "/uploads/" in k or "/data/" in k]
