"""Mounts made by the release before (docs/reading-in-place.md, "Upgrading"; docs/threat-model.md): hard links into
the content cache, recorded only in `DIR/.gradient/mount.json`. Re-mount and unmount adopt one only when every file in
it is a hard link of the cache entry of the manifest file at its path; a user's file, or a forged marker over the
user's own files, is refused and nothing is removed. Through the console script and the server's start-up mounts."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time

import pytest

from gradient_jupyter.engine.content.mount import is_mount
from gradient_jupyter.engine.transfer import save

from .helpers import cli, make_folder, read_folder

FILES = {"a.txt": b"payload-1", "sub/b.csv": b"x,y\n1,2\n"}


@pytest.fixture
def saved(engine, tmp_path):
    return save(engine, "shared", make_folder(tmp_path / "src", FILES), tag="v1")


def old_mount(engine, ref, folder):
    """A mount laid out as the release before made it (`git show 15cafcb^:gradient_jupyter/engine/mount.py`): each
    file a hard link of its verified content cache entry, the record only in the folder, files 0444, folders 0555."""
    ds, version, entries = engine.datasets.committed_entries(ref, "mount")
    for e in entries:
        (folder / e.path).parent.mkdir(parents=True, exist_ok=True)
        os.link(engine.reader(ds, version.version, e).local_file(), folder / e.path)
    record = {
        "format": "gradient-jupyter/mount@1",
        "dataset": ds.id,
        "name": ds.name,
        "version": version.version,
        "files": [e.path for e in entries],
    }
    (folder / ".gradient").mkdir()
    (folder / ".gradient" / "mount.json").write_text(json.dumps(record))
    for dirpath, _, filenames in os.walk(folder):
        os.chmod(dirpath, 0o555)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o444)
    return folder


def cache_entry(engine, data: bytes):
    return engine.content_cache.path(hashlib.sha256(data).hexdigest())


def test_a_mount_of_the_release_before_is_replaced_by_mount_and_removed_by_unmount(engine, saved, tmp_path):
    folder = old_mount(engine, "shared:v1", tmp_path / "datasets" / "shared")
    assert os.stat(folder / "a.txt").st_ino == os.stat(cache_entry(engine, b"payload-1")).st_ino
    again = cli("mount", "shared:v1", cwd=tmp_path)  # the default folder, as the server's start-up mounts
    assert again.returncode == 0 and "earlier release" in again.stdout, again.stderr
    assert read_folder(folder) == FILES and is_mount(engine, folder)  # recorded in the data home now
    assert os.stat(folder / "a.txt").st_ino != os.stat(cache_entry(engine, b"payload-1")).st_ino  # a copy
    assert not [p for p in (tmp_path / "datasets").iterdir() if p.name != "shared"]  # nothing kept aside

    other = old_mount(engine, "shared:v1", tmp_path / "other")
    gone = cli("unmount", other, cwd=tmp_path)
    assert gone.returncode == 0 and "kept" not in gone.stdout, gone.stderr + gone.stdout
    assert not other.exists()
    assert cache_entry(engine, b"payload-1").read_bytes() == b"payload-1"  # the cache keeps its entries


def test_a_cache_entry_written_through_an_old_mount_is_dropped_and_the_file_kept(engine, saved, tmp_path):
    folder = old_mount(engine, "shared:v1", tmp_path / "m")
    # root's write (0444 does not stop it) through the hard link: a same-size `cp -p` with a whole even second
    forged = tmp_path / "forged.txt"
    forged.write_bytes(b"PAYLOAD-1")
    os.utime(forged, (1_700_000_000, 1_700_000_000))
    if os.geteuid() != 0:
        os.chmod(folder / "a.txt", 0o644)
    subprocess.run(["cp", "-p", forged, folder / "a.txt"], check=True)
    assert cache_entry(engine, b"payload-1").read_bytes() == b"PAYLOAD-1"  # the cache was written through

    again = cli("mount", "shared:v1", folder, cwd=tmp_path)
    assert again.returncode == 0 and "a.txt" in again.stdout, again.stderr
    assert read_folder(folder) == FILES  # fetched again: the written entry was dropped, not copied
    assert cache_entry(engine, b"payload-1").read_bytes() == b"payload-1"
    (aside,) = (p for p in tmp_path.iterdir() if p.name.startswith(".m.gradient-mount-"))
    assert read_folder(aside) == {"a.txt": b"PAYLOAD-1"} and str(aside) in again.stdout  # kept, named


def test_an_old_mount_holding_a_user_file_is_refused_and_nothing_removed(engine, saved, tmp_path):
    folder = old_mount(engine, "shared:v1", tmp_path / "m")
    os.chmod(folder / "sub", 0o755)
    (folder / "sub" / "notes.txt").write_bytes(b"my notes")
    for words in (("mount", "shared:v1", folder), ("unmount", folder)):
        refused = cli(*words, cwd=tmp_path)
        assert refused.returncode == 1, refused.stdout
        assert str(folder) in refused.stderr and "'sub/notes.txt' is not a file it made" in refused.stderr
    assert read_folder(folder) == {**FILES, "sub/notes.txt": b"my notes"}
    assert not [p for p in tmp_path.iterdir() if "gradient-mount" in p.name]  # nothing built or moved aside


def test_a_forged_old_marker_over_the_users_own_files_is_refused_and_nothing_removed(engine, saved, tmp_path):
    # the user's own files, one even with a version's bytes at its path, and a marker naming that version
    project = make_folder(tmp_path / "project", {"train.py": b"my code", "a.txt": b"payload-1"})
    forged = {"format": "gradient-jupyter/mount@1", "dataset": saved.dataset.id, "version": saved.version.version}
    (project / ".gradient").mkdir()
    (project / ".gradient" / "mount.json").write_text(json.dumps({**forged, "files": ["train.py", "a.txt"]}))
    for words in (("unmount", project), ("mount", "shared:v1", project)):
        refused = cli(*words, cwd=tmp_path)
        assert refused.returncode == 1 and "is not a mount" in refused.stderr and str(project) in refused.stderr
        assert "is not a file it made" in refused.stderr, refused.stderr
    assert read_folder(project) == {"train.py": b"my code", "a.txt": b"payload-1"}
    assert (project / ".gradient" / "mount.json").exists()
    assert not [p for p in tmp_path.iterdir() if "gradient-mount" in p.name]


@pytest.fixture
def old_integration(engine, jp_root_dir, tmp_path):
    """An old mount of `pets` at the Jupyter root's `datasets/pets`, and settings.yaml naming it, before the server
    starts."""
    save(engine, "pets", make_folder(tmp_path / "src", {"cat.txt": b"meow"}), tag="v1")
    (jp_root_dir / "datasets").mkdir()
    old_mount(engine, "pets:v1", jp_root_dir / "datasets" / "pets")
    (jp_root_dir / ".gradient").mkdir()
    (jp_root_dir / ".gradient" / "settings.yaml").write_text("integrations:\n  pets: {type: dataset, ref: pets:v1}\n")
    return jp_root_dir / "datasets" / "pets"


def test_the_server_adopts_an_old_integration_mount_at_start(old_integration, jp_serverapp, engine):
    (app,) = jp_serverapp.extension_manager.extension_apps["gradient_jupyter"]
    for _ in range(600):  # a ceiling, not a timing: the mounts run on the extension's threads
        if app.integrations.done():
            break
        time.sleep(0.1)
    assert app.integrations.result()["pets"].startswith("mounted "), app.integrations.result()
    assert read_folder(old_integration) == {"cat.txt": b"meow"} and is_mount(engine, old_integration)
    assert os.stat(old_integration / "cat.txt").st_ino != os.stat(cache_entry(engine, b"meow")).st_ino
