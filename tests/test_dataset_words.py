"""The `datasets`, `save` and `load` words of SPEC 6, behind the console script (in-process and as a subprocess)."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess

import pytest

from gradient_jupyter.cli import Context, HelpRequested, UsageError, build_parser, run
from gradient_jupyter.engine import Conflict, GradientError, Immutable, NotFound

from .helpers import cli, make_folder, read_folder

REF = re.compile(r"ds[a-z0-9]{13}:[a-z0-9]{7}")
SUMMARY = re.compile(
    r"\d+ files, [\d.]+ (B|KiB|MiB) (sent|received), [\d.]+ (B|KiB|MiB) copied in the store, "
    r"[\d.]+ (B|KiB|MiB) skipped, in [\d.]+ s"
)


@pytest.fixture
def words(engine):
    """Run words against the test's engine, as the console script would; returns the output object."""
    ctx = Context(engine_factory=lambda: engine)
    return lambda *w: run(list(w), ctx)


def state(engine):
    """Everything a command could change: datasets, all versions with their files, tags."""
    out = []
    for d in engine.datasets.list():
        versions = engine.datasets.list_versions(d, committed=None)
        files = {v.version: [(f.path, f.size) for f in engine.datasets.list_files(d, v.version)] for v in versions}
        out.append((d.id, d.name, d.description, [v.to_json() for v in versions], files, engine.datasets.list_tags(d)))
    return out


def test_save_and_load_round_trip_through_the_console_script(tmp_path):
    data = make_folder(tmp_path / "data", {"a.csv": b"x,y\n1,2\n", "sub/b.bin": os.urandom(3000)})
    saved = cli("save", "mnist", str(data), "-m", "first", "--tag", "v1")
    assert saved.returncode == 0, saved.stderr
    headline, line = saved.stdout.splitlines()
    assert re.fullmatch(rf"Saved {REF.pattern} \(dataset mnist, tag v1\)", headline)
    assert SUMMARY.fullmatch(line) and line.startswith("2 files, 2.9 KiB sent")
    assert "Hashing" in saved.stderr and "Uploading" in saved.stderr  # the text progress bars
    ref = REF.search(headline).group()

    loaded = cli("load", "mnist:v1", cwd=tmp_path)  # no DEST: ./mnist
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.splitlines()[0] == f"Loaded {ref} (dataset mnist, tag v1) into {tmp_path / 'mnist'}"
    assert "Downloading" in loaded.stderr
    assert read_folder(tmp_path / "mnist") == read_folder(data)

    again = cli("save", "mnist", str(data))
    assert again.returncode == 0 and again.stdout.splitlines()[1].startswith("2 files, 0 B sent")
    reload = cli("load", ref, str(tmp_path / "mnist"))
    assert reload.returncode == 0 and "0 B received" in reload.stdout and "2.9 KiB skipped" in reload.stdout

    some = cli("load", "mnist", str(tmp_path / "some"), "--include", "*.csv")
    assert some.returncode == 0 and read_folder(tmp_path / "some") == {"a.csv": b"x,y\n1,2\n"}
    rest = cli("load", "mnist", str(tmp_path / "rest"), "--exclude", "*.csv", "--exclude", "nothing")
    assert rest.returncode == 0 and list(read_folder(tmp_path / "rest")) == ["sub/b.bin"]


def test_engine_refusals_exit_1_and_usage_errors_exit_2(tmp_path):
    missing = cli("load", "nope")
    assert missing.returncode == 1 and missing.stderr.startswith("Error: Unknown dataset 'nope'")
    assert "Traceback" not in missing.stderr
    not_a_folder = cli("save", "x", str(tmp_path / "absent"))
    assert not_a_folder.returncode == 1 and "is not a folder" in not_a_folder.stderr
    bad = cli("datasets", "tags", "set", "--id", "mnist", "--name", "t")
    assert bad.returncode == 2 and bad.stderr.startswith("usage: gradient-jupyter datasets tags set")
    assert "expected DATASET:VERSION" in bad.stderr
    listing = cli("datasets", "list")
    assert listing.returncode == 0 and "(none)" in listing.stdout


def test_a_destination_that_cannot_be_written_is_a_plain_error(tmp_path):
    make_folder(tmp_path / "d", {"f": b"1"})
    assert cli("save", "one", str(tmp_path / "d")).returncode == 0
    (tmp_path / "occupied").write_bytes(b"mine")
    r = cli("load", "one", str(tmp_path / "occupied"))
    assert r.returncode == 1 and f"'{tmp_path / 'occupied'}' exists and is not a folder" in r.stderr
    assert "Traceback" not in r.stderr and (tmp_path / "occupied").read_bytes() == b"mine"


def test_save_to_a_named_s3_provider_and_load_back(tmp_path, s3_bucket):
    endpoint, bucket = s3_bucket
    created = cli(
        "storageProviders",
        "create",
        "s3",
        "--name",
        "moto",
        "--bucket",
        bucket,
        "--endpoint",
        endpoint,
        "--region",
        "us-east-1",
        "--accessKey",
        "testing",
        "--secretAccessKey",
        "testing",
    )
    assert created.returncode == 0, created.stderr
    data = make_folder(tmp_path / "data", {"one.txt": b"1", "two/three.txt": b"3"})
    saved = cli("save", "remote", str(data), "--provider", "moto")
    assert saved.returncode == 0, saved.stderr
    details = cli("datasets", "details", "--id", "remote")
    assert "moto (sp" in details.stdout
    assert cli("load", "remote:latest", str(tmp_path / "back")).returncode == 0
    assert read_folder(tmp_path / "back") == read_folder(data)
    wrong = cli("save", "remote", str(data), "--provider", "Gradient Managed")
    assert wrong.returncode == 1 and "lives in storage provider 'moto'" in wrong.stderr


def test_dataset_words(words, engine):
    created = words("datasets", "create", "--name", "flowers", "--description", "petals")
    assert re.fullmatch(r"Created dataset: ds[a-z0-9]{13}", str(created))
    ds_id = created.data["id"]
    assert created.data["storageProviderId"] == engine.registry.managed().id
    listing = words("datasets", "list")
    assert listing.rows == [["flowers", ds_id, "Gradient Managed", "petals"]]
    assert "<table>" in listing._repr_html_()
    shown = words("datasets", "details", "--id", ds_id)
    assert dict(shown.rows)["description"] == "petals"
    assert str(words("datasets", "update", "--id", "flowers", "--name", "blooms")) == f"Updated dataset: {ds_id}"
    assert engine.datasets.get(ds_id).name == "blooms"
    with pytest.raises(GradientError, match="Nothing to update"):
        words("datasets", "update", "--id", "blooms")
    with pytest.raises(Conflict, match="exists already"):
        words("datasets", "create", "--name", "blooms")
    with pytest.raises(NotFound, match="Unknown storage provider"):
        words("datasets", "create", "--name", "other", "--storageProviderId", "nowhere")
    assert str(words("datasets", "delete", "--id", "blooms")) == f"Deleted dataset: {ds_id}"
    assert engine.datasets.list() == []


def test_versions_and_files_words(words, engine, tmp_path):
    make_folder(tmp_path, {"a.csv": b"a", "folder/b.txt": b"bb", "folder/deep/c.txt": b"ccc", "loose.txt": b"l"})
    words("datasets", "create", "--name", "pets")
    made = words("datasets", "versions", "create", "--id", "pets", "--message", "draft")
    ref = REF.search(str(made)).group()
    version = ref.split(":")[1]
    vid = f"pets:{version}"

    out = words(
        "datasets",
        "files",
        "put",
        "--id",
        vid,
        "--source-path",
        str(tmp_path / "a.csv"),
        str(tmp_path / "folder"),
        "--source-path",
        str(tmp_path / "folder") + "/",
        "--target-path",
        "in",
    )
    assert str(out) == f"Put 5 files (11 B) into {ref}"
    words("datasets", "files", "put", "--id", vid, "--source-path", str(tmp_path / "loose.txt"))
    paths = [e.path for e in engine.datasets.list_files("pets", version)]
    assert paths == ["in/a.csv", "in/b.txt", "in/deep/c.txt", "in/folder/b.txt", "in/folder/deep/c.txt", "loose.txt"]

    top = words("datasets", "files", "list", "--id", vid)
    assert top.rows == [["in/", "11 B in 5 files"], ["loose.txt", "1 B"]]
    folder = words("datasets", "files", "list", "--id", vid, "--path", "/in/folder")
    assert folder.rows == [["in/folder/b.txt", "2 B"], ["in/folder/deep/", "3 B in 1 file"]]
    assert words("datasets", "files", "list", "--id", vid, "--path", "in/a.csv").rows == [["in/a.csv", "1 B"]]
    with pytest.raises(NotFound, match="No file or folder 'in/a'"):
        words("datasets", "files", "list", "--id", vid, "--path", "in/a")
    everything = words("datasets", "files", "list", "--id", vid, "--recursive")
    assert [r[0] for r in everything.rows] == paths
    assert words("datasets", "files", "list", "--id", vid, "--recursive", "false").rows == top.rows

    before = state(engine)
    with pytest.raises(NotFound, match="'in/nothing'"):
        words("datasets", "files", "delete", "--id", vid, "--path", "in/a.csv", "in/nothing")
    with pytest.raises(GradientError, match="Source path not found"):
        words("datasets", "files", "put", "--id", vid, "--source-path", str(tmp_path / "a.csv"), str(tmp_path / "x"))
    assert state(engine) == before
    out = words("datasets", "files", "delete", "--id", vid, "--path", "in/folder", "in/a.csv")
    assert str(out) == f"Deleted 3 files from {ref}"
    assert [e.path for e in engine.datasets.list_files("pets", version)] == ["in/b.txt", "in/deep/c.txt", "loose.txt"]

    uncommitted = words("datasets", "versions", "list", "--id", "pets", "--isCommitted", "false")
    assert [r[1] for r in uncommitted.rows] == [ref] and uncommitted.rows[0][4] == "no"
    assert words("datasets", "versions", "list", "--id", "pets").rows == []
    words("datasets", "versions", "update", "--id", vid, "--message", "ready")
    assert str(words("datasets", "versions", "commit", "--id", vid)) == f"Committed dataset version: {ref}"
    assert str(words("datasets", "versions", "commit", "--id", vid)) == "Dataset version already committed"
    shown = dict(words("datasets", "versions", "details", "--id", "pets").rows)  # no ':' means latest
    assert shown["id"] == ref and shown["message"] == "ready" and shown["files"] == "3" and shown["committed"] == "true"

    before = state(engine)
    with pytest.raises(Immutable, match="committed and cannot change"):
        words("datasets", "files", "put", "--id", vid, "--source-path", str(tmp_path / "a.csv"))
    with pytest.raises(Immutable):
        words("datasets", "files", "delete", "--id", vid, "--path", "loose.txt")
    assert state(engine) == before

    got = words(
        "datasets",
        "files",
        "get",
        "--id",
        "pets:latest",
        "--source-path",
        "in/deep",
        "loose.txt",
        "--target-path",
        str(tmp_path / "got"),
    )
    assert read_folder(tmp_path / "got") == {"in/deep/c.txt": b"ccc", "loose.txt": b"l"}
    assert str(got).startswith(f"Downloaded {ref}")
    with pytest.raises(NotFound, match="'nothing'"):
        words(
            "datasets",
            "files",
            "get",
            "--id",
            "pets",
            "--source-path",
            "nothing",
            "--target-path",
            str(tmp_path / "none"),
        )
    assert not (tmp_path / "none").exists()
    words("datasets", "files", "get", "--id", vid, "--target-path", str(tmp_path / "all"))
    assert sorted(read_folder(tmp_path / "all")) == ["in/b.txt", "in/deep/c.txt", "loose.txt"]

    assert str(words("datasets", "versions", "delete", "--id", vid)) == f"Deleted dataset version: {ref}"
    assert engine.datasets.list_versions("pets", committed=None) == []


def test_versions_create_with_source_paths_commits_and_refuses_missing_paths(words, engine, tmp_path):
    make_folder(tmp_path / "src", {"x.txt": b"x", "y/z.txt": b"z"})
    words("datasets", "create", "--name", "quick")
    out = str(words("datasets", "versions", "create", "--id", "quick", "--source-path", str(tmp_path / "src") + "/"))
    lines = out.splitlines()
    ref = REF.search(lines[0]).group()
    assert lines == [f"Created dataset version: {ref}", "Put 2 files (2 B)", f"Committed dataset version: {ref}"]
    _, latest = engine.datasets.resolve("quick")
    assert latest.ref == ref and latest.file_count == 2
    before = state(engine)
    with pytest.raises(GradientError, match="Source path not found"):
        words("datasets", "versions", "create", "--id", "quick", "--source-path", str(tmp_path / "missing"))
    assert state(engine) == before


def test_tag_words(words, engine, tmp_path):
    make_folder(tmp_path / "d", {"f": b"1"})
    first = run(["save", "cats", str(tmp_path / "d")], Context(engine_factory=lambda: engine))
    (tmp_path / "d" / "g").write_bytes(b"2")
    second = run(["save", "cats", str(tmp_path / "d")], Context(engine_factory=lambda: engine))
    ds_id = first.dataset.id
    assert (
        str(words("datasets", "tags", "set", "--id", f"cats:{first.version.version}", "--name", "prod"))
        == f"Set dataset tag: {ds_id}:prod -> {first.version.version}"
    )
    assert words("datasets", "tags", "list", "--id", "cats").rows == [["prod", first.ref]]
    words("datasets", "tags", "set", "--id", f"{ds_id}:{second.version.version}", "--name", "prod")  # moves it
    assert words("datasets", "tags", "list", "--id", ds_id).rows == [["prod", second.ref]]
    assert dict(words("datasets", "versions", "details", "--id", "cats:prod").rows)["id"] == second.ref
    with pytest.raises(GradientError, match="reserved"):
        words("datasets", "tags", "set", "--id", f"cats:{first.version.version}", "--name", "latest")
    draft = engine.datasets.create_version("cats")
    with pytest.raises(Conflict, match="not committed"):
        words("datasets", "tags", "set", "--id", f"cats:{draft.version}", "--name", "early")
    assert str(words("datasets", "tags", "delete", "--id", "cats:prod")) == f"Deleted dataset tag: {ds_id}:prod"
    assert words("datasets", "tags", "list", "--id", "cats").rows == []
    with pytest.raises(NotFound, match="no tag 'prod'"):
        words("datasets", "tags", "delete", "--id", "cats:prod")


@pytest.mark.parametrize(
    "bad, usage_of",
    [
        ("datasets details", "datasets details"),
        ("datasets details --id 'a b'", "datasets details"),
        ("datasets create --description 'no name'", "datasets create"),
        ("datasets versions", "datasets versions"),
        ("datasets versions list --id cats --isCommitted maybe", "datasets versions list"),
        ("datasets versions details --id cats:", "datasets versions details"),
        ("datasets versions commit --id cats", "datasets versions commit"),
        ("datasets versions delete --id cats:TOOLONGVERSION", "datasets versions delete"),
        ("datasets versions create --id cats --source-path", "datasets versions create"),
        ("datasets tags delete --id cats", "datasets tags delete"),
        ("datasets tags set --id cats:abc1234", "datasets tags set"),
        ("datasets files put --id cats:abc1234", "datasets files put"),
        ("datasets files delete --id cats:abc1234", "datasets files delete"),
        ("datasets files get --id cats", "datasets files get"),
        ("datasets files list --id cats --recursive yes", "datasets files list"),
        ("save cats", "save"),
        ("load", "load"),
        ("load cats:a:b", "load"),
        ("save cats folder --frobnicate", "save"),
        ("datasets tags list --id cats extra", "datasets tags list"),
    ],
)
def test_usage_errors_show_that_commands_usage_and_change_nothing(words, engine, tmp_path, bad, usage_of):
    make_folder(tmp_path / "d", {"f": b"1"})
    words("save", "cats", str(tmp_path / "d"))
    before = state(engine)
    with pytest.raises(UsageError) as caught:
        words(*shlex.split(bad))
    assert str(caught.value).startswith(f"usage: gradient-jupyter {usage_of} [-h]")
    assert f"gradient-jupyter {usage_of}: error: " in str(caught.value)
    assert state(engine) == before


def command_paths(parser, path=()):
    """Every word path of the grammar, groups included, found by walking the parser."""
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from command_paths(sub, (*path, name))


def test_help_at_every_level_of_the_grammar():
    paths = list(command_paths(build_parser()))
    assert ("datasets", "files", "get") in paths and ("save",) in paths and len(paths) > 25
    for path in paths:
        with pytest.raises(HelpRequested) as caught:
            run([*path, "--help"])
        assert str(caught.value).startswith(f"usage: gradient-jupyter {' '.join(path)}".rstrip()), path


@pytest.mark.parametrize(
    "path", [["datasets", "--help"], ["datasets", "versions", "create", "--help"], ["save", "-h"], ["load", "--help"]]
)
def test_help_from_the_shell(path):
    r = cli(*path)
    assert r.returncode == 0 and r.stdout.startswith("usage: gradient-jupyter") and r.stderr == ""


def test_the_installed_console_script_saves_and_loads(tmp_path):
    make_folder(tmp_path / "d", {"f.txt": b"installed"})
    script = lambda *w: subprocess.run(["gradient-jupyter", *w], capture_output=True, text=True, timeout=120)  # noqa: E731
    saved = script("save", "inst", str(tmp_path / "d"))
    assert saved.returncode == 0 and saved.stdout.startswith("Saved ds"), saved.stderr
    assert script("load", "inst", str(tmp_path / "back")).returncode == 0
    assert (tmp_path / "back" / "f.txt").read_bytes() == b"installed"
    assert script("datasets", "files", "--help").stdout.startswith("usage: gradient-jupyter datasets files")
