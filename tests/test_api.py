"""The Python API: gradient_jupyter.save, load and open, with reprs a notebook user can read."""

from __future__ import annotations

import re

import pytest

import gradient_jupyter
from gradient_jupyter.engine import Conflict, IntegrityError, NotFound


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    (root / "labels.csv").write_bytes(b"id,label\n1,cat\n")
    (root / "images" / "1.png").write_bytes(b"\x89PNG" + bytes(5000))
    return root


def test_save_load_open(folder, tmp_path, monkeypatch, capsys):
    saved = gradient_jupyter.save("pets", folder, message="first", tag="v1", progress=False)
    assert re.fullmatch(r"ds[a-z0-9]{13}:[a-z0-9]{7}", saved.ref)
    assert saved.files == 2 and saved.bytes_sent == 5019 and saved.version.tags == ("v1",)
    assert repr(saved).startswith(f"Saved {saved.ref} (dataset pets, tag v1)\n2 files, 4.9 KiB sent")
    html = saved._repr_html_()
    for shown in (saved.ref, "pets", "first", "v1", "4.9 KiB", "<td style='text-align:left'>2</td>"):
        assert shown in html
    assert capsys.readouterr().err == ""  # progress=False draws nothing

    monkeypatch.chdir(tmp_path)
    loaded = gradient_jupyter.load("pets:v1", progress=False)  # default destination ./pets
    assert loaded.destination == str(tmp_path / "pets")
    assert (tmp_path / "pets" / "images" / "1.png").read_bytes() == (folder / "images" / "1.png").read_bytes()
    subset = gradient_jupyter.load(saved.ref, tmp_path / "only", include="*.csv", progress=False)
    assert subset.files == 1 and sorted(p.name for p in (tmp_path / "only").iterdir()) == [".gradient", "labels.csv"]

    opened = gradient_jupyter.open("pets")
    assert opened.ref == saved.ref and opened.files == {"images/1.png": 5004, "labels.csv": 15}
    assert opened.read_bytes("labels.csv") == b"id,label\n1,cat\n"
    with opened.open("images/1.png") as f:
        assert f.read(4) == b"\x89PNG"
    html = opened._repr_html_()
    for shown in (saved.ref, "pets", "v1", "4.9 KiB", "images/1.png", "15 B"):
        assert shown in html
    assert "labels.csv" in repr(opened) and saved.ref in repr(opened)
    with pytest.raises(NotFound, match="no file 'nope'"):
        opened.read_bytes("nope")


def test_progress_bars_draw_on_stderr_outside_a_kernel(folder, capsys):
    gradient_jupyter.save("pets", folder)
    err = capsys.readouterr().err
    assert "Hashing" in err and "Uploading" in err and "2/2 files" in err


def test_open_refuses_what_does_not_exist_or_is_not_committed(folder):
    with pytest.raises(NotFound, match="Unknown dataset 'ghost'"):
        gradient_jupyter.open("ghost")
    gradient_jupyter.save("pets", folder, progress=False)
    draft = gradient_jupyter.default_engine().datasets.create_version("pets")
    with pytest.raises(Conflict, match="not committed"):
        gradient_jupyter.open(f"pets:{draft.version}")


def test_open_verifies_what_it_reads(folder):
    saved = gradient_jupyter.save("pets", folder, progress=False)
    engine = gradient_jupyter.default_engine()
    opened = gradient_jupyter.open(saved.ref)
    entry = engine.datasets.file_entry("pets", saved.version.version, "labels.csv")
    engine.store(saved.dataset.storage_provider_id).put_bytes(entry.key, b"id,label\n1,dog\n")  # tampered
    with pytest.raises(IntegrityError, match="labels.csv"):
        opened.read_bytes("labels.csv")


def test_one_engine_per_process_following_the_data_home(tmp_path, monkeypatch):
    first = gradient_jupyter.default_engine()
    assert gradient_jupyter.default_engine() is first
    monkeypatch.setenv("GRADIENT_JUPYTER_HOME", str(tmp_path / "elsewhere"))
    assert gradient_jupyter.default_engine() is not first
    assert gradient_jupyter.default_engine().home == tmp_path / "elsewhere"


def test_the_api_has_docstrings():
    for fn in (gradient_jupyter.save, gradient_jupyter.load, gradient_jupyter.open, gradient_jupyter.default_engine):
        assert fn.__doc__ and len(fn.__doc__) > 40
