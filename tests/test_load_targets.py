"""Load never writes outside its destination, also through symbolic links inside it (embedded store: no server)."""

from __future__ import annotations

import os

import pytest

from gradient_jupyter.engine import BadInput
from gradient_jupyter.engine.transfer import load, save


@pytest.fixture
def saved(engine, tmp_path):
    src = tmp_path / "src"
    for rel in ("a/one.txt", "a/b/two.txt", "top.txt"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(rel)
    save(engine, "links", src)
    return engine


def test_a_linked_folder_leading_outside_is_refused_and_nothing_is_written(saved, tmp_path):
    outside, dest = tmp_path / "outside", tmp_path / "dest"
    outside.mkdir()
    dest.mkdir()
    (dest / "a").symlink_to(outside, target_is_directory=True)
    with pytest.raises(BadInput) as err:
        load(saved, "links", dest)
    assert err.value.reason == "hostile-path" and "outside" in err.value.message
    assert os.listdir(outside) == []
    assert sorted(os.listdir(dest)) == ["a"]


def test_a_linked_file_leading_outside_is_refused(saved, tmp_path):
    outside, dest = tmp_path / "outside.txt", tmp_path / "dest"
    outside.write_text("keep me")
    dest.mkdir()
    (dest / "top.txt").symlink_to(outside)
    with pytest.raises(BadInput) as err:
        load(saved, "links", dest)
    assert err.value.reason == "hostile-path"
    assert outside.read_text() == "keep me"


def test_links_that_stay_inside_are_followed(saved, tmp_path):
    dest = tmp_path / "dest"
    (dest / "real").mkdir(parents=True)
    (dest / "a").symlink_to(dest / "real", target_is_directory=True)
    load(saved, "links", dest)
    assert (dest / "real" / "b" / "two.txt").read_text() == "a/b/two.txt"
    assert (dest / "top.txt").read_text() == "top.txt"


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_loaded_files_get_the_users_umask_like_cp(saved, tmp_path, umask):
    """`gradient-jupyter load` and `files get` make files as cp would (0o666 less the umask), not private 0o600."""
    import stat
    import subprocess
    import sys

    def run(*words):
        r = subprocess.run(
            [sys.executable, "-m", "gradient_jupyter.cli", *words],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            timeout=120,
            preexec_fn=lambda: os.umask(umask),
        )
        assert r.returncode == 0, r.stderr

    run("load", "links", str(tmp_path / "loaded"))
    run("datasets", "files", "get", "--id", "links", "--target-path", str(tmp_path / "got"))
    for rel in ("loaded/top.txt", "loaded/a/b/two.txt", "got/top.txt"):
        assert stat.S_IMODE((tmp_path / rel).stat().st_mode) == 0o666 & ~umask, rel
