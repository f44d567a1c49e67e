"""mount and unmount (Python, console script, magic), and `load` sharing the content cache with reading in place."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import fsspec
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import gradient_jupyter
from gradient_jupyter.engine import BadInput, Conflict, Engine, GradientStorage, IntegrityError, transfer
from gradient_jupyter.engine.datasets import manifest_entries

from .helpers import make_folder
from .helpers.countingproxy import CountingProxy


def tree(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".gradient" not in p.parts
    }


@pytest.fixture
def two_versions(engine, tmp_path):
    folder = make_folder(tmp_path / "src", {"a.txt": b"one", "sub/b.csv": b"x,y\n1,2\n"})
    transfer.save(engine, "mnist", folder, tag="v1")
    (folder / "a.txt").write_bytes(b"two")
    (folder / "sub" / "c.txt").write_bytes(b"new")
    transfer.save(engine, "mnist", folder, tag="v2")
    return folder


def test_mount_makes_a_read_only_folder_of_copies_of_the_cache(engine, two_versions, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = gradient_jupyter.mount("mnist:v1")
    folder = tmp_path / "datasets" / "mnist"
    assert "Mounted mnist" in str(result) and str(folder) in str(result)
    assert tree(folder) == {"a.txt": b"one", "sub/b.csv": b"x,y\n1,2\n"}
    for path in (folder / "a.txt", folder / "sub" / "b.csv"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
        cached = engine.content_cache.get(
            __import__("hashlib").sha256(path.read_bytes()).hexdigest(), path.stat().st_size
        )
        assert cached is not None and not os.path.samefile(cached, path)  # a copy (or reflink): no shared inode
    for path in (folder, folder / "sub"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o555


def test_mounting_another_version_replaces_it_and_unmount_removes_only_what_it_made(engine, two_versions, tmp_path):
    folder = tmp_path / "mnt" / "data"
    gradient_jupyter.mount("mnist:v1", folder)
    inode = folder.stat().st_ino
    assert "Already mounted" in str(gradient_jupyter.mount("mnist:v1", folder))  # the same version: left as it is
    assert folder.stat().st_ino == inode
    gradient_jupyter.mount("mnist:v2", folder)
    assert tree(folder) == {"a.txt": b"two", "sub/b.csv": b"x,y\n1,2\n", "sub/c.txt": b"new"}
    assert folder.stat().st_ino != inode  # a new folder swapped in, not the old one edited
    assert [p.name for p in folder.parent.iterdir()] == ["data"]  # nothing left beside it
    os.chmod(folder / "sub", 0o755)
    (folder / "sub" / "mine.txt").write_text("my notes")
    assert gradient_jupyter.unmount(folder) == ["sub/mine.txt"]
    assert tree(folder) == {"sub/mine.txt": b"my notes"}
    with pytest.raises(BadInput, match="is not a mount"):
        gradient_jupyter.unmount(folder)


@pytest.mark.skipif(
    not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat("/tmp").st_dev,
    reason="needs /dev/shm on another file system than /tmp",
)
def test_across_file_systems_files_are_copied(tmp_path, monkeypatch):
    import tempfile

    with tempfile.TemporaryDirectory(dir="/dev/shm") as home:
        monkeypatch.setenv("GRADIENT_JUPYTER_HOME", home)
        engine = Engine(GradientStorage())
        transfer.save(engine, "far", make_folder(tmp_path / "src", {"a.txt": b"one", "b/c.txt": b"two"}))
        result = gradient_jupyter.mount("far", tmp_path / "m")
        assert "copied from the cache" in str(result)
        assert tree(tmp_path / "m") == {"a.txt": b"one", "b/c.txt": b"two"}
        assert stat.S_IMODE((tmp_path / "m" / "b" / "c.txt").stat().st_mode) == 0o444
        assert (tmp_path / "m" / "a.txt").stat().st_nlink == 1


def test_mount_refuses_what_it_must_not_touch(engine, two_versions, tmp_path):
    mine = make_folder(tmp_path / "mine", {"keep.txt": b"mine"})
    with pytest.raises(BadInput, match="exists and is not a mount"):
        gradient_jupyter.mount("mnist", mine)
    assert tree(mine) == {"keep.txt": b"mine"}
    draft = engine.datasets.create_version(engine.datasets.get("mnist"))
    with pytest.raises(Conflict, match="not committed"):
        gradient_jupyter.mount(f"mnist:{draft.version}", tmp_path / "m")
    assert not (tmp_path / "m").exists()
    (tmp_path / "empty").mkdir()
    gradient_jupyter.mount("mnist:v1", tmp_path / "empty")  # an empty mount point is taken over
    assert tree(tmp_path / "empty")["a.txt"] == b"one"


def test_a_tampered_file_fails_the_mount_and_leaves_the_old_one(engine, two_versions, tmp_path):
    folder = tmp_path / "m"
    gradient_jupyter.mount("mnist:v1", folder)
    ds, version = engine.datasets.resolve("mnist:v2")
    key = next(f["key"] for f in engine.datasets.manifest(ds, version.version)["files"] if f["path"] == "sub/c.txt")
    target = engine.home / "managed" / key
    os.chmod(target, 0o600)
    target.write_bytes(b"bad")
    with pytest.raises(IntegrityError, match="sub/c.txt"):
        gradient_jupyter.mount("mnist:v2", folder)
    assert tree(folder) == {"a.txt": b"one", "sub/b.csv": b"x,y\n1,2\n"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gradient-home", "m", "src"]  # no side folder left


def test_hostile_manifest_paths_are_refused(engine, tmp_path):
    transfer.save(engine, "evil", make_folder(tmp_path / "src", {"a.txt": b"a"}))
    ds, version = engine.datasets.resolve("evil")
    key = engine.datasets.manifest_key(ds.id, version.version)
    manifest = json.loads((engine.home / "managed" / key).read_text())
    manifest["files"][0]["path"] = "../escaped.txt"
    os.chmod(engine.home / "managed" / key, 0o600)
    (engine.home / "managed" / key).write_text(json.dumps(manifest))
    for cached in (engine.home / "cache" / "manifests").rglob("*.json"):
        cached.unlink()
    with pytest.raises((BadInput, IntegrityError)):
        gradient_jupyter.mount("evil", tmp_path / "m" / "evil")
    assert not (tmp_path / "m" / "escaped.txt").exists() and not (tmp_path / "m" / "evil").exists()


def test_a_forged_dataset_name_never_becomes_a_folder(engine, tmp_path, monkeypatch):
    saved = transfer.save(engine, "named", make_folder(tmp_path / "src", {"a.txt": b"a"}))
    record = engine.home / "managed" / engine.team_prefix() / "datasets" / saved.dataset.id / "dataset.json"
    data = json.loads(record.read_text())
    data["name"] = "../../escaped"
    os.chmod(record, 0o600)
    record.write_text(json.dumps(data))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    with pytest.raises((BadInput, IntegrityError), match="not a dataset name|Invalid dataset name"):
        gradient_jupyter.mount(saved.dataset.id)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gradient-home", "src", "work"]
    assert not any((tmp_path / "work").rglob("*"))


def test_console_script_mount_unmount_and_cache(engine, two_versions, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}

    def cli(*words):
        return subprocess.run(
            [sys.executable, "-m", "gradient_jupyter.cli", *words],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = cli("mount", "mnist:v2")
    assert done.returncode == 0 and "Mounted mnist" in done.stdout, done.stderr
    assert tree(tmp_path / "datasets" / "mnist")["sub/c.txt"] == b"new"
    info = cli("cache", "info")
    assert info.returncode == 0 and "3 entries" in info.stdout and "cache_size" in info.stdout
    assert cli("unmount", "datasets/mnist").returncode == 0
    assert not (tmp_path / "datasets" / "mnist").exists()
    cleared = cli("cache", "clear")
    assert cleared.returncode == 0 and "removed 3 entries" in cleared.stdout
    assert engine.content_cache.info()["entries"] == 0
    bad = cli("unmount", "src")
    assert bad.returncode == 1 and "is not a mount" in bad.stderr
    assert cli("mount").returncode == 2


def test_magic_mounts(engine, two_versions, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "gradient_jupyter")
        with capture_output() as cap:
            result = shell.run_cell("%gradient_storage mount mnist:v1 here")
        assert result.success and ["Mounted mnist" in o.data["text/plain"] for o in cap.outputs] == [True]
        assert tree(tmp_path / "here")["a.txt"] == b"one"
    finally:
        InteractiveShell.clear_instance()


def test_load_and_read_in_place_share_the_cache(engine, s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    proxy = CountingProxy(endpoint)
    try:
        engine.registry.create("moto", {"bucket": bucket, "endpoint": proxy.endpoint, "region": "us-east-1"})
        data = os.urandom(200_000)
        transfer.save(
            engine, "shared", make_folder(tmp_path / "src", {"big.bin": data, "small.txt": b"s"}), provider="moto"
        )
        proxy.reset()
        transfer.load(engine, "shared", tmp_path / "loaded")
        assert proxy.reset() > len(data)
        assert fsspec.filesystem("gradient", skip_instance_cache=True).cat("gradient://shared/big.bin") == data
        assert proxy.reset() < 8192  # the version's records only: the bytes came from the cache load filled
        transfer.load(engine, "shared", tmp_path / "again")
        assert proxy.reset() < 8192
        assert tree(tmp_path / "again") == {"big.bin": data, "small.txt": b"s"}
        os.chmod(tmp_path / "again" / "big.bin", 0o644)
        (tmp_path / "again" / "big.bin").write_bytes(b"edited")  # loaded files are the user's own, not the cache's
        assert fsspec.filesystem("gradient", skip_instance_cache=True).cat("gradient://shared/big.bin") == data
    finally:
        proxy.close()


def test_load_copies_what_an_earlier_load_wrote_only_while_it_holds_those_bytes(engine, s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    proxy = CountingProxy(endpoint)
    try:
        engine.registry.create("moto", {"bucket": bucket, "endpoint": proxy.endpoint, "region": "us-east-1"})
        data = os.urandom(200_000)
        transfer.save(engine, "twice", make_folder(tmp_path / "src", {"a.bin": data}), provider="moto")
        proxy.reset()
        transfer.load(engine, "twice", tmp_path / "first")
        assert proxy.reset() > len(data)
        assert engine.content_cache.info()["entries"] == 0  # load wrote the bytes once, and noted where
        transfer.load(engine, "twice", tmp_path / "second")
        assert proxy.reset() < 8192  # copied from the first load's file, checked on the way
        assert tree(tmp_path / "second") == {"a.bin": data}

        (tmp_path / "second" / "a.bin").write_bytes(bytes(len(data)))  # the user's edit: same size, other bytes
        transfer.load(engine, "twice", tmp_path / "third")
        assert proxy.reset() > len(data)  # the edited copy was refused: fetched from the store
        assert tree(tmp_path / "third") == {"a.bin": data}

        assert fsspec.filesystem("gradient", skip_instance_cache=True).cat("gradient://twice/a.bin") == data
        assert proxy.reset() < 8192  # reading in place filled the cache from the third load's file
        (entry,) = [p for p in engine.content_cache.objects.rglob("*") if p.is_file()]
        os.chmod(entry, 0o644)
        entry.write_bytes(bytes(len(data)))  # a cache entry that does not hold what its name says
        transfer.load(engine, "twice", tmp_path / "fourth")
        assert tree(tmp_path / "fourth") == {"a.bin": data}  # not copied from the entry, which is gone
        assert not entry.exists()

        engine.content_cache.clear()  # `cache clear` forgets the loaded copies too: the next load asks the store
        proxy.reset()
        transfer.load(engine, "twice", tmp_path / "fifth")
        assert proxy.reset() > len(data) and tree(tmp_path / "fifth") == {"a.bin": data}
    finally:
        proxy.close()


def test_a_large_file_load_wrote_is_read_in_place_without_fetching_it_again(aws_env, s3_bucket, tmp_path):
    engine = Engine(GradientStorage(block_size=64 * 1024, block_threshold=128 * 1024))  # files in blocks
    endpoint, bucket = s3_bucket
    proxy = CountingProxy(endpoint)
    try:
        engine.registry.create("moto", {"bucket": bucket, "endpoint": proxy.endpoint, "region": "us-east-1"})
        data = os.urandom(600_000)
        s = transfer.save(engine, "blocks", make_folder(tmp_path / "src", {"big.bin": data}), provider="moto")
        (entry,) = manifest_entries(engine.datasets.manifest(s.dataset, s.version.version))
        assert entry.blocks  # read in place by blocks, unless a whole copy is at hand
        transfer.load(engine, "blocks", tmp_path / "loaded")
        proxy.reset()
        fs = fsspec.filesystem("gradient", skip_instance_cache=True)
        assert fs.cat_file("gradient://blocks/big.bin", start=100_000, end=300_000) == data[100_000:300_000]
        assert proxy.reset() < 8192  # the loaded file, checked, became the cache's entry: no block was fetched
    finally:
        proxy.close()
