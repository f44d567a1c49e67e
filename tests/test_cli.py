"""The console script speaks the Gradient CLI's words; usage errors change nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from gradient_jupyter.cli import Context, HelpRequested, UsageError, run
from gradient_jupyter.engine import Engine, GradientStorage

from .helpers import SECRET, cli


def test_seed_line_creates_a_provider():
    r = cli(
        "storageProviders",
        "create",
        "s3",
        "--name",
        "test",
        "--bucket",
        "my-bucket",
        "--accessKey=access-key",
        f"--secretAccessKey={SECRET}",
    )
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"Created storage provider: sp[a-z0-9]{13}\n", r.stdout)
    pid = r.stdout.split(": ")[1].strip()
    listing = cli("storageProviders", "list")
    assert listing.returncode == 0 and pid in listing.stdout and "Gradient Managed" in listing.stdout
    details = cli("storageProviders", "details", "--id", pid)
    assert "my-bucket" in details.stdout and "********" in details.stdout
    assert all(SECRET not in x for x in (r.stdout, r.stderr, listing.stdout, details.stdout))
    upd = cli("storageProviders", "update", "s3", "--id", pid, "--region", "eu-west-1", "--isTeamDefault")
    assert upd.returncode == 0 and f"Updated storage provider: {pid}" in upd.stdout
    assert "eu-west-1" in cli("storageProviders", "details", "--id", "test").stdout
    refused = cli("storageProviders", "delete", "--id", pid)
    assert refused.returncode == 1 and "team default" in refused.stderr


def into_closed_pipe(*words, stream="stdout"):
    """Run the console script with its stdout (or stderr) a pipe whose reader has already gone, as when
    `gradient-jupyter --help | head -1` reads one line and exits: every write to it fails with EPIPE."""
    read, write = os.pipe()
    os.close(read)
    other = "stderr" if stream == "stdout" else "stdout"
    try:
        return subprocess.run(
            [sys.executable, "-m", "gradient_jupyter.cli", *words],
            **{stream: write, other: subprocess.PIPE},
            text=True,
            env=os.environ.copy(),
            timeout=120,
        )
    finally:
        os.close(write)


@pytest.mark.parametrize("words", [["--help"], ["storageProviders", "list"], ["datasets", "--help"]])
def test_output_into_a_closed_pipe_ends_quietly(words):
    r = into_closed_pipe(*words)
    assert r.returncode == 1 and r.stderr == ""  # no BrokenPipeError traceback
    r = into_closed_pipe("storageProviders", "frobnicate", stream="stderr")  # the usage error's own stream
    assert r.returncode == 1 and r.stdout == ""


def test_the_console_script_is_installed():
    r = subprocess.run(["gradient-jupyter", "storageProviders", "list"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "Gradient Managed" in r.stdout


@pytest.mark.parametrize(
    "words, fragment",
    [
        ([], "a command is required"),
        (["storageProviders"], "a command is required"),
        (["storageProviders", "create", "s3", "--bucket", "b"], "the following arguments are required: --name"),
        (["storageProviders", "frobnicate"], "invalid choice"),
        (["storageProviders", "details"], "--id"),
    ],
)
def test_usage_errors_exit_2_with_usage_and_change_nothing(words, fragment):
    r = cli(*words)
    assert r.returncode == 2
    assert "usage:" in r.stderr and fragment in r.stderr
    assert len(Engine(GradientStorage()).registry.list()) == 1


def test_bad_values_exit_1_with_a_plain_message():
    r = cli(
        "storageProviders",
        "create",
        "s3",
        "--name",
        "x",
        "--bucket",
        "Bad_Bucket",
        "--accessKey",
        "k",
        "--secretAccessKey",
        SECRET,
    )
    assert r.returncode == 1 and r.stderr.startswith("Error: Invalid bucket name") and "Traceback" not in r.stderr
    assert SECRET not in r.stderr


@pytest.mark.parametrize(
    "typed",
    [
        ["--secretAcessKey", SECRET],  # a mistyped option name: argparse leaves it and its value over
        [f"--secret-access-key={SECRET}"],
        ["--secretAccessKey", SECRET[:8], SECRET[8:]],  # a secret with a space, left unquoted
    ],
)
def test_a_usage_error_never_shows_a_secret_typed_with_it(typed):
    r = cli("storageProviders", "create", "s3", "--name", "x", "--bucket", "b", "--accessKey", "k", *typed, input="")
    assert r.returncode == 2 and "unrecognized arguments" in r.stderr and "********" in r.stderr
    assert SECRET[:8] not in r.stdout + r.stderr and SECRET[8:] not in r.stdout + r.stderr
    assert len(Engine(GradientStorage()).registry.list()) == 1


@pytest.mark.parametrize(
    "words", [["--help"], ["storageProviders", "--help"], ["storageProviders", "create", "s3", "-h"]]
)
def test_help_at_every_level(words):
    r = cli(*words)
    assert r.returncode == 0 and r.stdout.startswith("usage: gradient-jupyter")


def test_hidden_prompt_asks_for_the_secret_when_not_on_the_line():
    asked = []
    ctx = Context(prompt_secret=lambda prompt: asked.append(prompt) or SECRET)
    out = run(["storageProviders", "create", "s3", "--name", "p", "--bucket", "bkt", "--accessKey", "AK"], ctx)
    assert asked == ["Secret access key for AK: "]
    assert ctx.engine.registry.get("p").config["secretAccessKey"] == SECRET
    assert SECRET not in str(out)
    empty = Context(prompt_secret=lambda prompt: "")
    with pytest.raises(Exception, match="secret access key is empty"):
        run(["storageProviders", "create", "s3", "--name", "q", "--bucket", "bkt", "--accessKey", "AK"], empty)


def test_run_raises_instead_of_exiting():
    with pytest.raises(HelpRequested):
        run(["--help"])
    with pytest.raises(UsageError):
        run(["nope"])


def test_secret_prompt_without_a_terminal_reads_stdin_or_says_what_to_give():
    """The console script run from a script (no controlling terminal): the secret comes from standard input, and
    with nothing there the command is refused with a message naming --secretAccessKey, not a traceback."""

    def create(name, stdin):
        return subprocess.run(
            [sys.executable, "-m", "gradient_jupyter.cli", "storageProviders", "create", "s3", "--name", name]
            + ["--bucket", "my-bucket", "--accessKey", "AK"],
            capture_output=True,
            text=True,
            input=stdin,
            env=os.environ.copy(),
            timeout=120,
            start_new_session=True,  # no controlling terminal, as under cron or CI
        )

    refused = create("nosecret", "")
    assert refused.returncode == 1, refused.stderr
    assert "Traceback" not in refused.stderr and "--secretAccessKey" in refused.stderr
    assert "nosecret" not in cli("storageProviders", "list").stdout
    piped = create("piped", SECRET + "\n")
    assert piped.returncode == 0 and piped.stdout.startswith("Created storage provider: sp"), piped.stderr
    assert SECRET not in piped.stdout + piped.stderr
    assert "********" in cli("storageProviders", "details", "--id", "piped").stdout
