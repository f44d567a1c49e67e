"""`load` never loses local work: what it wrote is recorded in DEST/.gradient/, local changes are listed and refused
before anything is written unless --overwrite, and a killed load's temporary files go away with the next load."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import gradient_jupyter
from gradient_jupyter.engine import Engine, GradientStorage, LocalChanges
from gradient_jupyter.engine.hashcache import RACY_SECONDS

from .helpers import cli, make_folder, read_folder


@pytest.fixture
def two_versions(tmp_path):
    data = make_folder(tmp_path / "data", {"a.csv": b"1,2\n", "b.csv": b"3,4\n", "keep/c.txt": b"c"})
    assert cli("save", "pets", data, "--tag", "one").returncode == 0
    (data / "a.csv").write_bytes(b"1,2\n5,6\n")
    (data / "b.csv").write_bytes(b"3,4\n7,8\n")
    assert cli("save", "pets", data, "--tag", "two").returncode == 0
    return data


def test_load_refuses_to_overwrite_local_edits_and_lists_them(two_versions, tmp_path):
    dest = tmp_path / "work"
    assert cli("load", "pets:one", dest).returncode == 0
    assert (dest / ".gradient" / "loaded.json").is_file()
    (dest / "a.csv").write_bytes(b"my edit\n")  # a local change
    (dest / "mine.txt").write_bytes(b"not in the version: left alone")
    refused = cli("load", "pets:two", dest)
    assert refused.returncode == 1
    assert "local changes" in refused.stderr and "a.csv" in refused.stderr and "b.csv" not in refused.stderr
    assert "--overwrite" in refused.stderr
    assert (dest / "a.csv").read_bytes() == b"my edit\n" and (dest / "b.csv").read_bytes() == b"3,4\n"  # nothing
    assert cli("load", "pets:two", dest, "--overwrite").returncode == 0
    assert (dest / "a.csv").read_bytes() == b"1,2\n5,6\n" and (dest / "mine.txt").exists()
    assert cli("load", "pets:one", dest).returncode == 0  # files an earlier load wrote are no local change


def test_a_file_no_load_wrote_is_a_local_change(two_versions, tmp_path):
    dest = make_folder(tmp_path / "work", {"a.csv": b"someone else's"})
    with pytest.raises(LocalChanges) as refused:
        gradient_jupyter.load("pets:one", dest, progress=False)
    assert refused.value.paths == ["a.csv"] and refused.value.status == 409
    assert not (dest / "b.csv").exists()
    gradient_jupyter.load("pets:one", dest, overwrite=True, progress=False)
    assert (dest / "a.csv").read_bytes() == b"1,2\n"


def test_an_edit_with_the_same_size_and_a_restored_mtime_is_seen(two_versions, tmp_path):
    dest = tmp_path / "work"
    gradient_jupyter.load("pets:one", dest, progress=False)
    st = os.stat(dest / "a.csv")
    old = st.st_mtime_ns - int(RACY_SECONDS * 2e9)  # a file modified this recently is never cached
    os.utime(dest / "a.csv", ns=(old, old))
    gradient_jupyter.load("pets:one", dest, progress=False)  # the hash cache learns a.csv
    assert str(dest / "a.csv") in Engine(GradientStorage()).hash_cache.known([dest / "a.csv"])
    st = os.stat(dest / "a.csv")
    (dest / "a.csv").write_bytes(b"9,9\n")  # same size
    os.utime(dest / "a.csv", ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime restored, as touch -r or cp -p do
    again = cli("load", "pets:one", dest)
    assert again.returncode == 1 and "a.csv" in again.stderr
    assert cli("load", "pets:one", dest, "--overwrite").returncode == 0
    assert (dest / "a.csv").read_bytes() == b"1,2\n"


def test_a_killed_load_leaves_temporary_files_the_next_load_removes(two_versions, tmp_path):
    dest = tmp_path / "work"
    (dest / "keep").mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a process id that is surely gone
    leftover = dest / "keep" / f".gradient-{dead.pid}-x1y2.part"
    leftover.write_bytes(b"half a file")
    live = dest / f".gradient-{os.getpid()}-busy.part"  # a load running right now keeps its file
    live.write_bytes(b"being written")
    assert cli("load", "pets:two", dest).returncode == 0
    assert not leftover.exists() and live.exists()
    assert read_folder(dest / "keep") == {"c.txt": b"c"}
