"""What `save` versions and what it answers: tags never move silently, an unchanged folder makes no new version,
and what no one meant to version (.git, checkpoints, the data home, an empty PATH) stays out. Through the console
script, the Python API and the magic in a real kernel."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import gradient_jupyter
from gradient_jupyter.engine import BadInput, Engine, GradientStorage, NotFound, TagInUse

from .helpers import cli, make_folder


def versions(name: str, committed=True) -> list:
    return Engine(GradientStorage()).datasets.list_versions(name, committed=committed)


def ref_of(out: str) -> str:
    return re.search(r"(ds[a-z0-9]{13}:[a-z0-9]{7})", out).group(1)


def test_save_tag_refuses_to_move_a_tag_unless_move_tag(tmp_path):
    data = make_folder(tmp_path / "data", {"a.csv": b"1,2\n"})
    first = cli("save", "mnist", data, "--tag", "v1")
    assert first.returncode == 0, first.stderr
    (data / "a.csv").write_bytes(b"1,2\n3,4\n")
    refused = cli("save", "mnist", data, "--tag", "v1")
    assert refused.returncode == 1
    assert f"Tag 'v1' already names version {ref_of(first.stdout)}" in refused.stderr and "--move-tag" in refused.stderr
    assert len(versions("mnist")) == 1 and versions("mnist", committed=False) == []  # nothing sent, nothing begun
    moved = cli("save", "mnist", data, "--tag", "v1", "--move-tag")
    assert moved.returncode == 0, moved.stderr
    assert "tag v1" in moved.stdout and ref_of(moved.stdout) != ref_of(first.stdout)
    assert [v.tags for v in versions("mnist")] == [("v1",), ()]
    again = cli("save", "mnist", data, "--tag", "v1")  # the tag already names the answer: nothing moves
    assert again.returncode == 0 and "Unchanged" in again.stdout and ref_of(again.stdout) == ref_of(moved.stdout)


def test_python_save_tag_in_use_is_a_typed_refusal(tmp_path):
    data = make_folder(tmp_path / "data", {"a": b"1"})
    first = gradient_jupyter.save("pets", data, tag="v1", progress=False)
    (data / "a").write_bytes(b"2")
    with pytest.raises(TagInUse) as refused:
        gradient_jupyter.save("pets", data, tag="v1", progress=False)
    assert refused.value.status == 409 and refused.value.reason == "tag-in-use"
    moved = gradient_jupyter.save("pets", data, tag="v1", move_tag=True, progress=False)
    assert moved.version.tags == ("v1",) and moved.ref != first.ref and not moved.unchanged


def test_unchanged_folder_commits_nothing_and_answers_the_latest_version(tmp_path):
    data = make_folder(tmp_path / "data", {"a.csv": b"1,2\n", "d/b.bin": os.urandom(3000)})
    first = cli("save", "mnist", data, "-m", "first")
    assert first.returncode == 0, first.stderr
    again = cli("save", "mnist", data, "-m", "again", "--tag", "stable")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"Unchanged: {ref_of(first.stdout)} (dataset mnist, tag stable)")
    assert "no new version" in again.stdout and "0 B sent" in again.stdout
    assert [(v.message, v.tags) for v in versions("mnist")] == [("first", ("stable",))]
    os.rename(data / "a.csv", data / "c.csv")  # same bytes under a new path is a change
    renamed = cli("save", "mnist", data)
    assert renamed.returncode == 0 and renamed.stdout.startswith("Saved ") and len(versions("mnist")) == 2


def test_save_leaves_out_what_no_one_meant_to_version(tmp_path):
    data = make_folder(
        tmp_path / "data",
        {
            "keep.csv": b"k",
            "sub/keep.txt": b"k",
            ".git/HEAD": b"ref",
            "sub/.ipynb_checkpoints/x-checkpoint.ipynb": b"{}",
            "pkg/__pycache__/m.pyc": b"\0",
            ".gradient/loaded.json": b"{}",
            "scratch.tmp": b"t",
            "build/out.o": b"o",
            "notes/draft.md": b"d",
            "notes/final.md": b"f",
            "sub/big.h5": b"h",
            ".gradientignore": b"*.tmp\nbuild/\n",
        },
    )
    # --exclude takes one or more globs, and may be given again (the grammar's `--exclude GLOB ...`)
    r = cli("save", "tidy", data, "--exclude", "notes/draft.md", "--exclude", "*.h5", "scratch.tmp")
    assert r.returncode == 0, r.stderr
    engine = Engine(GradientStorage())
    files = [f.path for f in engine.datasets.list_files("tidy", versions("tidy")[0].version)]
    assert files == [".gradientignore", "keep.csv", "notes/final.md", "sub/keep.txt"]


def test_a_folder_put_by_versions_create_or_files_put_leaves_out_what_save_leaves_out(tmp_path):
    data = make_folder(
        tmp_path / "data",
        {
            "keep.csv": b"k",
            "sub/keep.txt": b"k",
            ".git/HEAD": b"ref",
            "sub/.ipynb_checkpoints/x-checkpoint.ipynb": b"{}",
            "pkg/__pycache__/m.pyc": b"\0",
            ".gradient/loaded.json": b"{}",
            "scratch.tmp": b"t",
            "build/out.o": b"o",
            ".gradientignore": b"*.tmp\nbuild/\n",
        },
    )
    kept = [".gradientignore", "keep.csv", "sub/keep.txt"]
    engine = Engine(GradientStorage())
    assert cli("datasets", "create", "--name", "tidy").returncode == 0
    made = cli("datasets", "versions", "create", "--id", "tidy", "--source-path", data)
    assert made.returncode == 0 and "Put 3 files" in made.stdout, made.stdout + made.stderr
    assert [f.path for f in engine.datasets.list_files("tidy", versions("tidy")[0].version)] == [
        f"data/{path}" for path in kept
    ]

    assert cli("datasets", "versions", "create", "--id", "tidy").returncode == 0
    draft = versions("tidy", committed=False)[0].version
    put = cli("datasets", "files", "put", "--id", f"tidy:{draft}", "--source-path", f"{data}/", "--target-path", "raw")
    assert put.returncode == 0 and "Put 3 files" in put.stdout, put.stdout + put.stderr
    assert [f.path for f in engine.datasets.list_files("tidy", draft)] == [f"raw/{path}" for path in kept]

    nothing = make_folder(tmp_path / "nothing", {".git/HEAD": b"ref", "__pycache__/m.pyc": b"\0"})
    refused = cli("datasets", "files", "put", "--id", f"tidy:{draft}", "--source-path", nothing)
    assert refused.returncode == 1 and "holds no files" in refused.stderr and ".gradientignore" in refused.stderr
    refused = cli("datasets", "files", "put", "--id", f"tidy:{draft}", "--source-path", engine.home)
    assert refused.returncode == 1 and "data home" in refused.stderr  # its registry and secrets stay home
    registry = next(p for p in Path(engine.home).rglob("*") if p.is_file())  # named alone, a file of it too
    refused = cli("datasets", "files", "put", "--id", f"tidy:{draft}", "--source-path", registry)
    assert refused.returncode == 1 and "data home" in refused.stderr, refused.stderr
    assert [f.path for f in engine.datasets.list_files("tidy", draft)] == [f"raw/{path}" for path in kept]


@pytest.mark.parametrize("path", ["", "missing", "file.txt", "HOME"])
def test_save_refuses_an_empty_missing_or_non_folder_path_and_the_data_home(tmp_path, aws_env, path):
    (tmp_path / "file.txt").write_text("x")
    Engine(GradientStorage())  # makes the data home
    target = aws_env if path == "HOME" else (path and tmp_path / path)
    r = cli("save", "oops", target, cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.startswith("Error: ") and "Traceback" not in r.stderr
    assert {"": "empty PATH", "missing": "does not exist", "file.txt": "is not a folder", "HOME": "data home"}[
        path
    ] in r.stderr
    with pytest.raises(NotFound):  # not even the dataset was made
        versions("oops")


def test_save_refuses_a_folder_with_nothing_to_save(tmp_path):
    data = make_folder(tmp_path / "data", {".git/HEAD": b"ref"})
    r = cli("save", "empty", data)
    assert r.returncode == 1 and "holds no files to save" in r.stderr


def test_the_magic_refuses_an_empty_path_and_a_tag_in_use_in_a_real_kernel(tmp_path):
    make_folder(tmp_path / "data", {"a": b"1"})
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(src)
        for src in (
            "%load_ext gradient_jupyter",
            "%gradient_storage save nb data --tag v1",
            "%gradient_storage save nb '' ",
            "open('data/a', 'w').write('2')\n%gradient_storage save nb data --tag v1",
            "%gradient_storage save nb data --tag v1 --move-tag",
        )
    ]
    NotebookClient(
        nb, timeout=120, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    errors = ["\n".join(o.traceback) for c in nb.cells for o in c.outputs if o.output_type == "error"]
    assert len(errors) == 2, errors
    assert "empty PATH" in errors[0] and "Tag 'v1' already names version" in errors[1]
    assert [v.tags for v in versions("nb")] == [("v1",), ()]


def test_dry_run_lists_what_would_change_and_sends_nothing(tmp_path):
    data = make_folder(tmp_path / "data", {"a.csv": b"1", "b.csv": b"2", "c.csv": b"3"})
    new = cli("save", "dry", data, "--dry-run")
    assert new.returncode == 0, new.stderr
    assert "A a.csv\nA b.csv\nA c.csv\n3 added" in new.stdout and "Nothing was sent" in new.stdout
    with pytest.raises(NotFound):  # not even the dataset was made
        versions("dry")
    first = cli("save", "dry", data)
    (data / "a.csv").write_bytes(b"changed")
    (data / "b.csv").unlink()
    (data / "d.csv").write_bytes(b"new")
    r = cli("save", "dry", data, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert f"against the latest version {ref_of(first.stdout)}" in r.stdout
    assert "M a.csv\nD b.csv\nA d.csv\n1 added, 1 removed, 1 modified, 0 renamed, 1 unchanged" in r.stdout
    assert len(versions("dry")) == 1 and versions("dry", committed=False) == []
    preview = gradient_jupyter.save("dry", data, dry_run=True, progress=False)
    assert [f.path for f in preview.added] == ["d.csv"] and [m.path for m in preview.modified] == ["a.csv"]


@pytest.mark.parametrize("path", ["", "   ", None])
def test_python_save_refuses_an_empty_path(path):
    with pytest.raises(BadInput) as refused:
        gradient_jupyter.save("oops", path, progress=False)
    assert refused.value.reason == "no-path" and "empty PATH" in refused.value.message


def test_a_folder_holding_the_data_home_is_saved_without_it(tmp_path, aws_env):
    assert aws_env.parent == tmp_path  # the data home (registry, secrets, caches) lives in the folder saved below
    (tmp_path / "mine.txt").write_text("mine")
    r = cli("save", "around", tmp_path)
    assert r.returncode == 0, r.stderr
    engine = Engine(GradientStorage())
    files = [f.path for f in engine.datasets.list_files("around", versions("around")[0].version)]
    assert "mine.txt" in files and not any(f.startswith(aws_env.name + "/") for f in files)
