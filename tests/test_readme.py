"""The README's shell, notebook and Python lines, run as written (pasted into bash, a real kernel, Python), against a
real S3 endpoint: only the endpoint, bucket and keys of the example are swapped for the test server's."""

from __future__ import annotations

import os
import signal
import subprocess

import nbformat
import pytest
from nbclient import NotebookClient

from .helpers import free_port
from .helpers.readme import block, console, run_steps, the_data


@pytest.fixture
def readme_s3_server(tmp_path):
    """The S3 server the README starts before its provider lines, started by its own lines (moto installed already:
    its pip line is not run), on a free port instead of 9000; stopped after the test. Yields its endpoint."""
    install, start, bucket = block("## Storage providers from a shell", "bash").strip().splitlines()
    assert install == 'python3 -m pip install "moto[server]"'
    port = str(free_port())
    lines = [line.replace(":9000", f":{port}").replace("-p 9000", f"-p {port}") for line in (start, bucket)]
    r = subprocess.run(
        ["bash", "-c", "\n".join([*lines, "echo $!"])], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    pid = int(r.stdout.split()[-1])  # the server the README's line left running in the background
    try:
        assert r.returncode == 0, r.stderr
        yield f"http://127.0.0.1:{port}"
    finally:
        os.kill(pid, signal.SIGTERM)


def test_the_shell_lines_for_storage_providers_run_as_written(readme_s3_server, tmp_path):
    steps = console("## Storage providers from a shell")
    assert steps[0][0] == "gradient-jupyter --version"
    run_steps(steps, tmp_path, {"http://127.0.0.1:9000": readme_s3_server})  # the bucket and keys as written


def test_the_shell_lines_for_datasets_run_as_written_in_order(tmp_path):
    the_data(tmp_path)
    run_steps(console("## Versioned datasets: save, load"), tmp_path, {})
    assert sorted(p.name for p in (tmp_path / "restored").iterdir()) == [".gradient", "labels.csv"]
    assert (tmp_path / "got" / "raw" / "images" / "1.png").read_bytes() == (tmp_path / "data/images/1.png").read_bytes()


def test_the_shell_lines_for_the_bucket_doctor_run_as_written(s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    assert (
        subprocess.run(
            [
                "gradient-jupyter",
                "storageProviders",
                "create",
                "s3",
                "--name",
                "test",
                "--bucket",
                bucket,
                "--endpoint",
                endpoint,
                "--accessKey",
                "testing",
                "--secretAccessKey",
                "testing",
            ],
            env=os.environ.copy(),
            capture_output=True,
            timeout=120,
        ).returncode
        == 0
    )
    run_steps(console("## Check a bucket's setup"), tmp_path, {})
    assert bucket in (tmp_path / "policy.json").read_text()


def test_no_console_line_uses_a_bar_to_mean_or():
    for heading in (
        "## Storage providers from a shell",
        "## Versioned datasets: save, load",
        "## Check a bucket's setup",
    ):
        for command, _ in console(heading):
            assert " | " not in command and "|" not in command.split("#")[0], command


@pytest.mark.slow
def test_the_notebook_lines_run_as_written_in_a_real_kernel(s3_bucket, tmp_path, monkeypatch):
    endpoint, bucket = s3_bucket
    the_data(tmp_path)
    lines = block("## In a notebook", "python").replace("http://127.0.0.1:9000", endpoint).replace("my-bucket", bucket)
    # The hidden prompt cannot be typed into by nbclient: the one line that asks gets its secret the way a script
    # would, and keeps its trailing comment, which the magic must drop.
    lines = lines.replace("--accessKey access-key ", "--accessKey testing --secretAccessKey testing ")
    python = block("From Python, with a progress bar", "python").replace("./restored", "./restored-by-python")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(line) for line in lines.splitlines() + [python]]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    assert (tmp_path / "restored" / "labels.csv").read_bytes() == b"id,label\n1,cat\n"
    assert (tmp_path / "restored-by-python" / "labels.csv").exists()
