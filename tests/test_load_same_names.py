"""Paths that differ only by case or Unicode normalization: refused on a file system that would make them one file,
loaded side by side on one that tells them apart."""

from __future__ import annotations

import os
import unicodedata

from gradient_jupyter.engine.transfer import folder_folds, same_name_groups

from .helpers import cli, make_folder, read_folder

NFC, NFD = unicodedata.normalize("NFC", "caf\u00e9.txt"), unicodedata.normalize("NFD", "caf\u00e9.txt")


def test_which_paths_would_be_one_file():
    paths = ["Data.csv", "data.csv", "sub/A/x", "sub/a/x", NFC, NFD, "other"]
    assert same_name_groups(paths, case_insensitive=True, normalizing=True) == [
        ["Data.csv", "data.csv"],
        ["sub/A/x", "sub/a/x"],
        sorted([NFC, NFD]),
    ]
    assert same_name_groups(paths, case_insensitive=False, normalizing=True) == [sorted([NFC, NFD])]
    assert same_name_groups(paths, case_insensitive=True, normalizing=False) == [
        ["Data.csv", "data.csv"],
        ["sub/A/x", "sub/a/x"],
    ]
    assert same_name_groups(paths, case_insensitive=False, normalizing=False) == []


def test_the_probe_tells_what_this_file_system_does(tmp_path):
    (tmp_path / "Probe").write_text("1")
    (tmp_path / NFC).write_text("1")
    ignores_case = (tmp_path / "probe").exists()
    ignores_form = (tmp_path / NFD).exists()
    assert folder_folds(tmp_path / "not" / "made" / "yet") == (ignores_case, ignores_form)
    assert sorted(os.listdir(tmp_path)) == sorted(["Probe", NFC])  # the probe file is gone


def test_names_a_case_sensitive_file_system_keeps_apart_load_side_by_side(tmp_path):
    case_insensitive, normalizing = folder_folds(tmp_path)
    files = {"Data.csv": b"upper", "data.csv": b"lower", NFC: b"composed", NFD: b"decomposed"}
    data = make_folder(tmp_path / "data", files)
    assert cli("save", "names", data).returncode == 0
    r = cli("load", "names", tmp_path / "out")
    if case_insensitive or normalizing:  # e.g. macOS: refused, naming the paths, and nothing written
        assert r.returncode == 1 and "would be one file" in r.stderr and not (tmp_path / "out").exists()
    else:
        assert r.returncode == 0, r.stderr
        assert read_folder(tmp_path / "out") == files
