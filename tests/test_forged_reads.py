"""A forged version read back (docs/threat-model.md): what anyone with write access to the bucket can commit must not
reach git or gradient-jupyter's own records through a load, a mount or a read, nor exhaust the machine. On a real
S3 store (SeaweedFS over HTTP), through the console script and the Python doors."""

from __future__ import annotations

import json
import time

import fsspec
import pytest

import gradient_jupyter
from gradient_jupyter.engine import IntegrityError
from gradient_jupyter.engine.transfer import load, save

from .helpers import cli, make_folder
from .helpers.providers import seaweed_provider

pytestmark = pytest.mark.reliability

HOOK = b"[core]\n\tfsmonitor = touch owned\n"


@pytest.fixture(scope="module")
def bucket(seaweed):
    return seaweed.bucket()


@pytest.fixture
def weed(engine, seaweed, bucket):
    """A provider on the SeaweedFS bucket; `client` plays the teammate with write access."""
    return seaweed_provider(engine, seaweed, bucket), seaweed.client(), bucket


def forge(engine, weed, tmp_path, edit, files=None) -> str:
    """Commit, as a bucket writer would, a version whose manifest is a real one changed by `edit(files)`: its
    objects and SHA-256s are real, so only the check of the manifest itself can stop it. Returns its ref."""
    provider, client, bucket = weed
    files = files or {"config": HOOK, "a.txt": b"a"}
    real = save(engine, "forged", make_folder(tmp_path / "src", files), provider=provider.id)
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


@pytest.mark.parametrize("path", [".git/config", "sub/.GIT/config", ".gradient/loaded.json", ".git"])
def test_a_forged_version_holding_git_or_gradient_files_is_refused_by_every_door(engine, weed, tmp_path, path):
    def to_reserved(files):
        next(f for f in files if f["path"] == "config")["path"] = path

    ref = forge(engine, weed, tmp_path, to_reserved)
    work = tmp_path / "work"
    work.mkdir()
    for words in (["load", ref, "dest"], ["datasets", "files", "get", "--id", ref, "--target-path", "got"]):
        done = cli(*words, cwd=work)
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


@pytest.mark.parametrize("claimed", [10**15, 4 * 1024**4])
def test_a_forged_size_is_refused_before_any_range_is_planned(engine, weed, tmp_path, claimed):
    """10**15 bytes is more than any store holds: the manifest is refused. 4 TiB could exist, but the object holds
    6 MiB: one HEAD says so before the load plans its ranges (the load once planned ~10**8 of them: MemoryError)."""
    engine.settings.multipart_threshold = engine.settings.part_size = 5 * 1024**2

    def grow(files):
        next(f for f in files if f["path"] == "big.bin")["size"] = claimed

    ref = forge(engine, weed, tmp_path, grow, {"big.bin": b"b" * 6 * 1024**2})
    started = time.monotonic()
    with pytest.raises(IntegrityError, match="big.bin") as refused:
        load(engine, ref, tmp_path / "dest")
    assert time.monotonic() - started < 10
    said = "more than any store holds" if claimed == 10**15 else f"expected {claimed} bytes, the store holds 6291456"
    assert said in refused.value.message
    assert not (tmp_path / "dest").exists()
