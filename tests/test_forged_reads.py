"""A forged version read back (docs/threat-model.md): what anyone with write access to the bucket can commit must not
reach git or gradient-jupyter's own records through a load, a mount or a read, nor exhaust the machine. On a real
S3 store (SeaweedFS over HTTP), through the console script and the Python doors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import fsspec
import pytest

import gradient_jupyter
from gradient_jupyter.engine import IntegrityError
from gradient_jupyter.engine.transfer import load, save

from .helpers import make_folder

pytestmark = pytest.mark.reliability

HOOK = b"[core]\n\tfsmonitor = touch owned\n"


@pytest.fixture(scope="module")
def bucket(seaweed):
    return seaweed.bucket()


@pytest.fixture
def weed(engine, seaweed, bucket):
    """A provider on the SeaweedFS bucket; `client` plays the teammate with write access."""
    provider = engine.registry.create(
        "weed",
        {
            "bucket": bucket,
            "endpoint": seaweed.endpoint,
            "accessKey": seaweed.access_key,
            "secretAccessKey": seaweed.secret_key,
        },
    )
    return provider, seaweed.client(), bucket


def forge(engine, weed, tmp_path, edit) -> str:
    """Commit, as a bucket writer would, a version whose manifest is a real one changed by `edit(files)`: its
    objects and SHA-256s are real, so only the check of the manifest itself can stop it. Returns its ref."""
    provider, client, bucket = weed
    real = save(engine, "forged", make_folder(tmp_path / "src", {"config": HOOK, "a.txt": b"a"}), provider=provider.id)
    key = engine.datasets.manifest_key(real.dataset.id, real.version.version)
    manifest = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    draft = engine.datasets.create_version(real.dataset)
    manifest["version"] = draft.version
    edit(manifest["files"])
    client.put_object(
        Bucket=bucket,
        Key=engine.datasets.manifest_key(real.dataset.id, draft.version),
        Body=json.dumps(manifest).encode(),
    )
    return f"forged:{draft.version}"


def cli(cwd, *words):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "gradient_jupyter.cli", *words], cwd=cwd, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize("path", [".git/config", "sub/.GIT/config", ".gradient/loaded.json", ".git"])
def test_a_forged_version_holding_git_or_gradient_files_is_refused_by_every_door(engine, weed, tmp_path, path):
    def to_reserved(files):
        next(f for f in files if f["path"] == "config")["path"] = path

    ref = forge(engine, weed, tmp_path, to_reserved)
    work = tmp_path / "work"
    work.mkdir()
    for words in (["load", ref, "dest"], ["datasets", "files", "get", "--id", ref, "--target-path", "got"]):
        done = cli(work, *words)
        assert done.returncode == 1, done.stderr
        assert repr(path) in done.stderr and "forged" in done.stderr and "Traceback" not in done.stderr
    with pytest.raises(IntegrityError, match="which no dataset version holds") as refused:
        load(engine, ref, tmp_path / "dest")
    assert repr(path) in refused.value.message
    with pytest.raises(IntegrityError, match="which no dataset version holds"):
        gradient_jupyter.mount(ref, tmp_path / "mnt")
    with pytest.raises(IntegrityError, match="which no dataset version holds"):
        fsspec.filesystem("gradient", skip_instance_cache=True).cat(f"gradient://{ref}/a.txt")
    with pytest.raises(IntegrityError, match="which no dataset version holds"):
        gradient_jupyter.open(ref)
    assert sorted(p.name for p in work.iterdir()) == [] and not (tmp_path / "dest").exists()
    assert not (tmp_path / "mnt").exists()


def test_save_leaves_git_out_whatever_its_case_so_what_it_versions_loads(engine, weed, tmp_path):
    provider = weed[0]
    folder = make_folder(tmp_path / "src", {".GIT/config": HOOK, "sub/.git": b"gitdir: /x", "a.txt": b"a"})
    saved = save(engine, "cased", folder, provider=provider.id)
    assert saved.files == 1
    load(engine, "cased", tmp_path / "dest")
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == [".gradient", "a.txt"]
