"""History through the console script: `datasets versions diff` and `log`, lineage in `details`, bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import cli


def ok(*words, **kwargs) -> str:
    r = cli(*words, **kwargs)
    assert r.returncode == 0, r.stderr
    return r.stdout


def git(folder: Path, *words) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(["git", *words], cwd=folder, capture_output=True, text=True, check=True, env=env).stdout


def saved_ref(output: str) -> str:
    return re.search(r"Saved (ds[a-z0-9]{13}:[a-z0-9]{7})", output).group(1)


def details(ref: str) -> dict:
    """`versions details` as field -> value."""
    rows = ok("datasets", "versions", "details", "--id", ref).splitlines()[3:]
    return {line.split(None, 1)[0]: (line.split(None, 1) + [""])[1].strip() for line in rows}


@pytest.fixture
def history(tmp_path):
    """A dataset 'hist' with two versions saved from a folder in a git work tree: v1 clean, v2 dirty."""
    repo = tmp_path / "repo"
    data = repo / "data"
    (data / "sub").mkdir(parents=True)
    (data / "keep.csv").write_text("a,b\n1,2\n")
    (data / "change.csv").write_text("x\n1\n")
    (data / "gone.txt").write_text("bye")
    (data / "sub" / "old-name.bin").write_bytes(b"\x00moved bytes")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "data")
    commit = git(repo, "rev-parse", "HEAD").strip()
    v1 = saved_ref(ok("save", "hist", str(data), "-m", "first", "--tag", "v1"))
    (data / "change.csv").write_text("x\n1\n2\n")
    (data / "gone.txt").unlink()
    (data / "sub" / "old-name.bin").rename(data / "sub" / "new-name.bin")
    (data / "added.json").write_text("{}")
    v2 = saved_ref(ok("save", "hist", str(data), "-m", "second"))
    return v1, v2, commit


def test_diff_without_to_shows_what_changed_since_the_parent(history):
    v1, v2, _ = history
    out = ok("datasets", "versions", "diff", "--id", "hist").splitlines()
    assert out == [
        f"Changes from {v1} to {v2}",
        "A added.json",
        "M change.csv",
        "D gone.txt",
        "R sub/old-name.bin -> sub/new-name.bin",
        "1 added, 1 removed, 1 modified, 1 renamed, 1 unchanged; +8 B, -7 B",
    ]
    assert ok("datasets", "versions", "diff", "--id", v2).splitlines() == out  # the same version by its id


def test_diff_to_another_version_and_the_first_version_against_nothing(history):
    v1, v2, _ = history
    back = ok("datasets", "versions", "diff", "--id", v2, "--to", "hist:v1").splitlines()
    assert back[0] == f"Changes from {v2} to {v1}"
    assert back[1:-1] == ["D added.json", "M change.csv", "A gone.txt", "R sub/new-name.bin -> sub/old-name.bin"]
    first = ok("datasets", "versions", "diff", "--id", "hist:v1").splitlines()
    assert first[0] == f"Changes from nothing (the dataset's first version) to {v1}"
    assert first[1:] == [
        "A change.csv",
        "A gone.txt",
        "A keep.csv",
        "A sub/old-name.bin",
        "4 added, 0 removed, 0 modified, 0 renamed, 0 unchanged; +27 B, -0 B",
    ]
    same = ok("datasets", "versions", "diff", "--id", v1, "--to", "hist:v1").splitlines()
    assert same[1:] == ["0 added, 0 removed, 0 modified, 0 renamed, 4 unchanged; +0 B, -0 B"]


def test_diff_include_and_exclude_globs(history):
    only_csv = ok("datasets", "versions", "diff", "--id", "hist", "--include", "*.csv").splitlines()
    assert only_csv[1:] == ["M change.csv", "0 added, 0 removed, 1 modified, 0 renamed, 1 unchanged; +6 B, -4 B"]
    no_sub = ok("datasets", "versions", "diff", "--id", "hist", "--exclude", "sub/*", "--exclude", "*.csv")
    assert no_sub.splitlines()[1:-1] == ["A added.json", "D gone.txt"]


def test_lineage_is_recorded_and_shown(history):
    v1, v2, commit = history
    import getpass
    import socket

    first, second = details(v1), details(v2)
    assert first["parent"] == "" and second["parent"] == v1
    for d in (first, second):
        assert d["createdBy"] == f"{getpass.getuser()}@{socket.gethostname()}"
        assert d["tool"] == "gradient-jupyter 0.1.0"
        assert d["notebook"] == ""  # not saved from a notebook
    assert first["gitCommit"] == commit  # the work tree was clean
    assert second["gitCommit"] == f"{commit} (dirty)"


def test_log_is_newest_first_one_line_each(history):
    v1, v2, _ = history
    import getpass
    import socket

    who = f"{getpass.getuser()}@{socket.gethostname()}"
    lines = ok("datasets", "versions", "log", "--id", "hist").splitlines()
    assert lines[0] == "History of hist"
    assert re.fullmatch(rf"{v2}  \d{{4}}-\d\d-\d\dT[0-9:.]+Z  {re.escape(who)}  \"second\"  4 files, 28 B", lines[1])
    assert re.fullmatch(rf"{v1} \(v1\)  \S+  {re.escape(who)}  \"first\"  4 files, 27 B", lines[2])
    assert len(lines) == 3


def test_diff_refuses_two_datasets_unknown_refs_and_uncommitted_versions(history, tmp_path):
    v1, _, _ = history
    other = tmp_path / "other"
    other.mkdir()
    (other / "f").write_text("f")
    ok("save", "other", str(other))
    r = cli("datasets", "versions", "diff", "--id", "hist", "--to", "other")
    assert r.returncode == 1 and "versions of two datasets (hist and other)" in r.stderr and "Traceback" not in r.stderr
    r = cli("datasets", "versions", "diff", "--id", "hist:nosuch1")
    assert r.returncode == 1 and "has no version 'nosuch1'" in r.stderr
    r = cli("datasets", "versions", "diff", "--id", "nosuchdataset")
    assert r.returncode == 1 and "Unknown dataset 'nosuchdataset'" in r.stderr
    created = ok("datasets", "versions", "create", "--id", "hist", "--message", "wip")
    pending = created.split(": ")[1].strip()
    r = cli("datasets", "versions", "diff", "--id", pending)
    assert r.returncode == 1 and f"Version {pending} is not committed" in r.stderr
    r = cli("datasets", "versions", "diff", "--id", v1, "--to", pending)
    assert r.returncode == 1 and "is not committed" in r.stderr
    r = cli("datasets", "versions", "diff", "--id", "hist:")
    assert r.returncode == 2 and "usage:" in r.stderr


def test_an_uncommitted_version_records_its_parent_and_creator_too(history):
    _, v2, _ = history
    created = ok("datasets", "versions", "create", "--id", "hist", "--message", "wip")
    pending = created.split(": ")[1].strip()
    d = details(pending)
    assert d["parent"] == v2 and d["tool"] == "gradient-jupyter 0.1.0"


def test_versions_create_from_one_folder_records_its_git_commit(history, tmp_path):
    repo = tmp_path / "repo"
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "second")
    commit = git(repo, "rev-parse", "HEAD").strip()
    words = ("datasets", "versions", "create", "--id", "hist", "--source-path", str(repo / "data"))
    ref = ok(*words).splitlines()[-1].split(": ")[1]
    assert details(ref)["gitCommit"] == commit
    (repo / "data" / "keep.csv").write_text("edited")
    ref = ok(*words).splitlines()[-1].split(": ")[1]
    assert details(ref)["gitCommit"] == f"{commit} (dirty)"


def test_a_folder_outside_git_records_no_commit(tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "f.txt").write_text("x")
    ref = saved_ref(ok("save", "plain", str(tmp_path / "plain")))
    assert details(ref)["gitCommit"] == ""


def test_update_description(history):
    out = ok("datasets", "update", "--id", "hist", "--description", "Tables <b>and</b> more")
    assert out.startswith("Updated dataset: ds")
    assert "Tables <b>and</b> more" in ok("datasets", "details", "--id", "hist")
    assert "Tables <b>and</b> more" in ok("datasets", "list")
    r = cli("datasets", "update", "--id", "hist")
    assert r.returncode == 1 and "Nothing to update" in r.stderr


def test_forged_lineage_in_the_bucket_is_dropped_and_nothing_breaks(history, aws_env):
    """version.json is bucket data: a parent or createdBy of the wrong shape is left out, the version still shows."""
    v1, v2, _ = history
    ds_id, version = v2.split(":")
    [record] = Path(aws_env, "managed").glob(f"*/datasets/{ds_id}/versions/{version}/version.json")
    info = json.loads(record.read_text())
    info["parent"] = "../../etc"
    info["createdBy"] = {
        "user": "eve\n2026 forged line",
        "host": 7,
        "tool": "gradient-jupyter 0.1.0",
        "gitCommit": "not-a-commit",
        "dirty": "yes",
        "notebook": "x" * 5000,
    }
    record.write_text(json.dumps(info))
    r = cli("datasets", "versions", "details", "--id", v2)
    assert r.returncode == 0, r.stderr
    assert "forged line" not in r.stdout and "not-a-commit" not in r.stdout and "x" * 100 not in r.stdout
    assert "Ignoring the parent recorded in" in r.stderr and "version.json" in r.stderr
    d = details(v2)
    assert d["parent"] == "" and d["createdBy"] == "" and d["tool"] == "gradient-jupyter 0.1.0"
    # without a believable parent the diff still answers: against nothing, as for a first version
    assert ok("datasets", "versions", "diff", "--id", v2).splitlines()[0].startswith("Changes from nothing")
    assert len(ok("datasets", "versions", "log", "--id", "hist").splitlines()) == 3


def test_versions_made_before_lineage_diff_against_the_version_before_them(history, aws_env):
    v1, v2, _ = history
    ds_id, version = v2.split(":")
    [record] = Path(aws_env, "managed").glob(f"*/datasets/{ds_id}/versions/{version}/version.json")
    info = json.loads(record.read_text())
    record.write_text(json.dumps({k: info[k] for k in ("version", "message", "dtCreated")}))
    d = details(v2)
    assert d["parent"] == "" and d["createdBy"] == "" and d["gitCommit"] == ""
    assert ok("datasets", "versions", "diff", "--id", v2).splitlines()[0] == f"Changes from {v1} to {v2}"


README = Path(__file__).parent.parent / "README.md"


def test_the_readme_history_example_runs_as_shown(tmp_path):
    """The console block of README's History section, run word for word on the data it describes."""
    import getpass
    import shlex
    import socket

    section = README.read_text().split("## History", 1)[1]
    block = section.split("```console\n", 1)[1].split("```", 1)[0]
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("x,y\n1,2\n")
    (data / "labels.csv").write_text("label\n7\n")
    v1 = saved_ref(ok("save", "mnist", "./data", "-m", "first cut", "--tag", "v1", cwd=tmp_path))
    (data / "train.csv").write_text("x,y\n1,2\n3,4\n")
    (data / "meta").mkdir()
    (data / "labels.csv").rename(data / "meta" / "labels.csv")
    (data / "test.csv").write_text("x,y\n5,6\n")
    v2 = saved_ref(ok("save", "mnist", "./data", "-m", "more rows", cwd=tmp_path))
    # the README's ids, user and times are those of the run it was copied from
    shown_v2, shown_v1 = re.findall(r"^(ds[a-z0-9]{13}:[a-z0-9]{7})", block.split("History of mnist\n")[1], re.M)[:2]
    block = (
        block.replace(shown_v1, v1)
        .replace(shown_v2, v2)
        .replace(shown_v1.split(":")[0], v1.split(":")[0])
        .replace("ana@lab", f"{getpass.getuser()}@{socket.gethostname()}")
    )
    commands = re.split(r"^\$ ", block, flags=re.M)[1:]
    assert len(commands) == 4
    for command in commands:
        line, _, expected = command.partition("\n")
        words = shlex.split(line, comments=True)
        assert words[0] == "gradient-jupyter"
        out = ok(*words[1:], cwd=tmp_path)
        stamp = r"\d{4}-\d\d-\d\dT[0-9:.]+Z"
        assert re.sub(stamp, "TIME", out) == re.sub(stamp, "TIME", expected), line
    assert "Handwritten digits" in ok("datasets", "details", "--id", "mnist")
    python = section.split("```python\n", 1)[1].split("```", 1)[0].strip().splitlines()
    program = "\n".join(python[:-1]) + f"\nprint(repr(({python[-1].split('#')[0].strip()})))"
    r = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "(['test.csv'], ['train.csv'], 20)"
