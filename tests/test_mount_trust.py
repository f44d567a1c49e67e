"""What a mount may touch (docs/reading-in-place.md, docs/threat-model.md): only what it made, as it made it; and a
write into a mounted file, even by root (whom 0444 does not stop), reaches no other mount, the content cache or a
later read. On a real S3 store (SeaweedFS over HTTP), through the console script and the Python doors."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import fsspec
import pytest

import gradient_jupyter
from gradient_jupyter.engine import BadInput
from gradient_jupyter.engine.transfer import load, save

from .helpers import cli, make_folder, read_folder
from .helpers.providers import seaweed_provider

FILES = {"a.txt": b"payload-1", "sub/b.csv": b"x,y\n1,2\n"}


@pytest.fixture(scope="module")
def bucket(seaweed):
    return seaweed.bucket()


@pytest.fixture
def saved(engine, seaweed, bucket, tmp_path):
    provider = seaweed_provider(engine, seaweed, bucket)
    return save(engine, "shared", make_folder(tmp_path / "src", FILES), provider=provider.id, tag="v1")


def writable(path):
    """As root a read-only file is written all the same; anyone else makes it writable first (their own file)."""
    if os.geteuid() != 0:
        os.chmod(path.parent, 0o755)
        os.chmod(path, 0o644)
    return path


def test_a_write_into_a_mount_reaches_no_other_mount_the_cache_or_a_later_read(engine, saved, tmp_path):
    m1, m2 = tmp_path / "m1", tmp_path / "m2"
    gradient_jupyter.mount("shared:v1", m1, progress=False)
    gradient_jupyter.mount("shared:v1", m2, progress=False)
    # the audit's write: `cp -p` of a file of the same size whose time is a whole even second
    forged = tmp_path / "forged.txt"
    forged.write_bytes(b"PAYLOAD-1")
    os.utime(forged, (1_700_000_000, 1_700_000_000))
    subprocess.run(["cp", "-p", forged, writable(m1 / "a.txt")], check=True)
    assert (m1 / "a.txt").read_bytes() == b"PAYLOAD-1"  # the write went through

    assert read_folder(m2) == FILES  # another mount
    entry = engine.content_cache.get(hashlib.sha256(b"payload-1").hexdigest(), 9)
    assert entry is not None and entry.read_bytes() == b"payload-1"  # the content cache
    assert fsspec.filesystem("gradient", skip_instance_cache=True).cat("gradient://shared:v1/a.txt") == b"payload-1"
    assert gradient_jupyter.open("shared:v1").read_bytes("a.txt") == b"payload-1"
    gradient_jupyter.mount("shared:v1", tmp_path / "m3", progress=False)
    assert read_folder(tmp_path / "m3") == FILES  # a fresh mount
    load(engine, "shared:v1", tmp_path / "loaded")
    assert read_folder(tmp_path / "loaded") == FILES

    # mounting it again notices the write (the file is no longer the one the mount made) and rebuilds it
    again = cli("mount", "shared:v1", m1, cwd=tmp_path)
    assert again.returncode == 0 and "Rebuilt it" in again.stdout and "a.txt" in again.stdout, again.stderr
    assert read_folder(m1) == FILES
    (kept,) = (p for p in tmp_path.iterdir() if p.name.startswith(".m1.gradient-mount-"))
    assert (kept / "a.txt").read_bytes() == b"PAYLOAD-1" and str(kept) in again.stdout  # the write is kept, named

    # --verify reads every file: an untouched mount is left as it is, an edited one rebuilt
    checked = cli("mount", "shared:v1", m2, "--verify", cwd=tmp_path)
    assert checked.returncode == 0 and "every file checked" in checked.stdout, checked.stderr
    with open(writable(m2 / "sub" / "b.csv"), "r+b") as f:
        f.write(b"X")
    repaired = cli("mount", "shared:v1", m2, "--verify", cwd=tmp_path)
    assert repaired.returncode == 0 and "Rebuilt it" in repaired.stdout and "sub/b.csv" in repaired.stdout
    assert read_folder(m2) == FILES


def test_a_record_in_the_folder_is_never_trusted_and_user_files_are_never_removed(engine, saved, tmp_path):
    # a project folder holding what a forged version (or an archive) could bring: a mount record naming train.py
    project = make_folder(tmp_path / "project", {"train.py": b"my code"})
    forged = {"format": "gradient-jupyter/mount@1", "dataset": saved.dataset.id, "files": ["train.py"]}
    (project / ".gradient").mkdir()
    (project / ".gradient" / "mount.json").write_text(json.dumps(forged))
    gone = cli("unmount", project, cwd=tmp_path)
    assert gone.returncode == 1 and "is not a mount" in gone.stderr and str(project) in gone.stderr, gone.stderr
    remount = cli("mount", "shared:v1", project, cwd=tmp_path)
    assert remount.returncode == 1 and "exists and is not a mount" in remount.stderr and str(project) in remount.stderr
    assert (project / "train.py").read_bytes() == b"my code" and len(list(tmp_path.iterdir())) == 3

    # a real mount that the user replaced with a folder of their own at the same path is not a mount any more
    mounted = tmp_path / "mounted"
    assert cli("mount", "shared:v1", mounted, cwd=tmp_path).returncode == 0
    os.system(f"chmod -R u+w {mounted}")
    shutil.rmtree(mounted)
    make_folder(mounted, {"a.txt": b"mine", "train.py": b"my code"})
    with pytest.raises(BadInput, match="is not a mount"):
        gradient_jupyter.unmount(mounted)
    with pytest.raises(BadInput, match="exists and is not a mount"):
        gradient_jupyter.mount("shared:v1", mounted, progress=False)
    assert read_folder(mounted) == {"a.txt": b"mine", "train.py": b"my code"}


def test_unmount_and_remount_remove_only_the_files_the_mount_made_as_it_made_them(engine, saved, tmp_path):
    folder = tmp_path / "m"
    gradient_jupyter.mount("shared:v1", folder, progress=False)
    os.chmod(folder, 0o755)
    (folder / "a.txt").unlink()
    (folder / "a.txt").write_bytes(b"my own a.txt")  # the same name, another file (it may even reuse the inode)
    (folder / "notes.txt").write_bytes(b"notes")
    assert gradient_jupyter.unmount(folder) == ["a.txt", "notes.txt"]
    assert read_folder(folder) == {"a.txt": b"my own a.txt", "notes.txt": b"notes"}

    gradient_jupyter.mount("shared:v1", tmp_path / "n", progress=False)
    os.chmod(tmp_path / "n", 0o755)
    (tmp_path / "n" / "notes.txt").write_bytes(b"notes")
    save(engine, "shared", make_folder(tmp_path / "src2", {"c.txt": b"c"}), tag="v2")
    replaced = cli("mount", "shared:v2", tmp_path / "n", cwd=tmp_path)  # another version replaces the mount...
    assert replaced.returncode == 0, replaced.stderr
    assert read_folder(tmp_path / "n") == {"c.txt": b"c"}
    (aside,) = (p for p in tmp_path.iterdir() if p.name.startswith(".n.gradient-mount-"))
    assert read_folder(aside) == {"notes.txt": b"notes"}  # ...and what it did not make is kept aside, and named
    assert "notes.txt" in replaced.stdout and str(aside) in replaced.stdout
