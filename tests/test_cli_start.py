"""The console script starts with what its command needs: a `load` into a folder that already holds the files imports
no other command group, no progress bar library and no process machinery (benchmarks/README.md, "Reloads")."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gradient_jupyter.cli import HelpRequested, UsageError, build_parser, parse
from gradient_jupyter.commands import MODULES
from gradient_jupyter.engine.defaults import Settings
from gradient_jupyter.engine.settings import GradientStorage

from .helpers import cli, make_folder, read_folder
from .helpers.faultproxy import FaultProxy

# What a reload imported before the console script learned to import lazily, and must not import again.
NOT_FOR_A_RELOAD = {
    "gradient_jupyter.commands.providers",  # other command groups
    "gradient_jupyter.commands.mounts",
    "gradient_jupyter.engine.stores.local",  # the embedded store, for a dataset in an S3 bucket
    "subprocess",  # git, for a save's lineage only
    "multiprocessing",
    "tqdm",  # the progress bar: checking files the hash cache knows is one event, too quick for a bar
    "traitlets",  # with no Jupyter config file, the settings are engine/defaults.py's
    "socket",  # for telling a DNS failure, only when a request fails
}

REPORT = """
import json, sys
from gradient_jupyter.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def help_of(parser, words: list[str]) -> str:
    with pytest.raises(HelpRequested) as shown:
        parser.parse_known_args(words)
    return str(shown.value)


def test_each_first_word_is_registered_by_the_module_named_for_it():
    with pytest.raises(UsageError) as unknown:
        parse(["no-such-command"])
    choices = str(unknown.value).split("choose from ", 1)[1]
    assert choices.startswith(", ".join(repr(w) for w in MODULES) + ")")  # every word, in --help's order
    for word in MODULES:  # the parser of one group says what the whole one says
        assert help_of(build_parser(first_word=word), [word, "--help"]) == help_of(build_parser(), [word, "--help"])


def test_the_plain_defaults_are_the_configurable_settings_at_their_defaults():
    configurable = GradientStorage()
    names = sorted(GradientStorage.class_traits(config=True))
    plain = [n for n, v in vars(Settings).items() if not n.startswith("_") and not isinstance(v, property)]
    assert names == sorted(plain)  # home and team_path are derived (env var, else the setting)
    assert {n: getattr(configurable, n) for n in names} == {
        n: list(v) if isinstance(v := getattr(Settings, n), tuple) else v for n in names
    }
    assert configurable.home == Settings().home


def test_a_reload_by_the_console_script_imports_only_what_it_needs(seaweed_bucket, tmp_path):
    seaweed, bucket = seaweed_bucket
    made = cli(
        "storageProviders",
        "create",
        "s3",
        "--name",
        "weed",
        "--bucket",
        bucket,
        "--endpoint",
        seaweed.endpoint,
        "--region",
        "us-east-1",
        f"--accessKey={seaweed.access_key}",
        f"--secretAccessKey={seaweed.secret_key}",
        "--isTeamDefault",
    )
    assert made.returncode == 0, made.stderr
    files = {"a.csv": b"1,2\n", "sub/b.bin": b"\0" * 5000, "sub/deeper/c.txt": b"c"}
    data = make_folder(tmp_path / "data", files)
    assert cli("save", "lean", data).returncode == 0
    dest = tmp_path / "dest"
    assert cli("load", "lean", dest).returncode == 0

    again = subprocess.run(
        [sys.executable, "-c", REPORT, "load", "lean", str(dest)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "JUPYTER_NO_CONFIG": "1"},  # jupyter_core: no config folder but an empty one
    )
    assert again.returncode == 0, again.stderr
    lines = again.stdout.strip().splitlines()
    report = json.loads(lines[-1])
    assert report["code"] == 0 and "3 files" in lines[-2] and "0 B received" in lines[-2]
    assert read_folder(dest) == files
    assert NOT_FOR_A_RELOAD.isdisjoint(report["modules"]), NOT_FOR_A_RELOAD & set(report["modules"])
    assert "gradient_jupyter.engine.stores.s3" in report["modules"]  # the check saw the load's own imports


def test_a_reload_from_an_aws_bucket_whose_region_is_remembered_asks_no_region_and_imports_no_boto3(
    seaweed_bucket, tmp_path, monkeypatch
):
    """obstore does not follow S3's region redirects, so an AWS bucket's region is asked (HEAD bucket, through boto3)
    once per machine and remembered in the data home (engine/stores/regions.py): later processes neither ask nor
    import boto3. The bucket answers as one in eu-west-2 would (tests/helpers/faultproxy.py `region`), reached with no
    endpoint configured (AWS_ENDPOINT_URL_S3, as obstore and boto3 take it)."""
    seaweed, bucket = seaweed_bucket
    proxy = FaultProxy(seaweed.endpoint).start()
    try:
        proxy.region = ("eu-west-2", bucket)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"{proxy.url}/{bucket}")
        made = cli(
            "storageProviders",
            "create",
            "s3",
            "--name",
            "aws",
            "--bucket",
            bucket,
            f"--accessKey={seaweed.access_key}",
            f"--secretAccessKey={seaweed.secret_key}",
            "--isTeamDefault",
        )
        assert made.returncode == 0, made.stderr
        files = {"a.csv": b"1,2\n"}
        saved = cli("save", "far", make_folder(tmp_path / "data", files))
        assert saved.returncode == 0, saved.stderr
        dest = tmp_path / "dest"
        assert cli("load", "far", dest).returncode == 0
        assert "HeadBucket" in [op for op, _ in proxy.seen]  # the first process asked
        proxy.seen.clear()

        again = subprocess.run(
            [sys.executable, "-c", REPORT, "load", "far", str(dest)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "JUPYTER_NO_CONFIG": "1"},
        )
        assert again.returncode == 0, again.stderr
        report = json.loads(again.stdout.strip().splitlines()[-1])
        assert report["code"] == 0 and read_folder(dest) == files
        assert "gradient_jupyter.engine.stores.s3" in report["modules"]
        assert not {"boto3", "botocore"} & set(report["modules"])
        assert proxy.seen and "HeadBucket" not in [op for op, _ in proxy.seen] and proxy.injected == []
    finally:
        proxy.stop()
