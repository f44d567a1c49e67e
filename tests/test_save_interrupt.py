"""Ctrl-C during a save, for real: SIGINT to the console script and an interrupt of a real kernel running the magic,
mid-upload to a slow store (moto behind tests/helpers/faultproxy.py, each part held a second). The uploads stop at
their next part (they used to go on until every byte was sent), one line says what was left and how to go on, no bar
is drawn after it, and the next save removes the draft."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import time

import pytest
from jupyter_client.manager import start_new_kernel

from .helpers import cli, make_folder
from .helpers.faultproxy import FaultProxy

pytestmark = pytest.mark.slow
MIB = 1024**2
PARTS = 2 * 20  # two files of 100 MiB in parts of 5 MiB: at four parts a file at once, five seconds at the least


@pytest.fixture
def slow(s3_bucket, engine, tmp_path, monkeypatch):
    """(proxy, folder): provider 'slow' reaches moto through a proxy that holds each part a second; the console
    script and kernels send files of 5 MiB and more in parts of 5 MiB."""
    endpoint, bucket = s3_bucket
    proxy = FaultProxy(endpoint).start()

    def hold(method, path):
        if method == "PUT" and "partNumber=" in path:
            time.sleep(1)

    proxy.rule = hold
    engine.registry.create(
        "slow", {"bucket": bucket, "endpoint": proxy.url, "accessKey": "testing", "secretAccessKey": "testing"}
    )
    config = tmp_path / "jupyter-config"
    config.mkdir()
    (config / "jupyter_gradient_config.json").write_text(
        json.dumps({"GradientStorage": {"multipart_threshold": 5 * MIB, "part_size": 5 * MIB}})
    )
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config))
    src = make_folder(tmp_path / "src", {"a.bin": os.urandom(100 * MIB), "b.bin": os.urandom(100 * MIB)})
    old = time.time() - 60
    for f in src.iterdir():
        os.utime(f, (old, old))
    yield proxy, src
    proxy.stop()


def parts_sent(proxy) -> int:
    return sum(1 for op, size in list(proxy.seen) if op == "UploadPart" and size > 0)


def wait_for(check, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def saving(proxy, src) -> subprocess.Popen:
    """`gradient-jupyter save big SRC --provider slow` in its own process, once its first part has arrived."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gradient_jupyter.cli", "save", "big", str(src), "--provider", "slow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: parts_sent(proxy) >= 1)
    return proc


def drafts(name: str) -> str:
    listed = cli("datasets", "versions", "list", "--id", name, "--isCommitted", "false")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


def test_sigint_to_the_console_stops_the_uploads_and_says_how_to_go_on(slow):
    proxy, src = slow
    proc = saving(proxy, src)
    proc.send_signal(signal.SIGINT)
    interrupted = time.monotonic()
    out, err = proc.communicate(timeout=60)
    took = time.monotonic() - interrupted
    assert proc.returncode == 130, err
    last = err.rstrip().splitlines()[-1]  # nothing drawn after it: no bar rising on
    assert last.startswith("Interrupted: the save stopped and committed nothing. Draft version ds"), err
    assert "save again to go on" in last and "datasets versions delete --id ds" in last
    assert took < 3, f"{took:.1f} s from Ctrl-C to exit"  # the parts in flight, not the remaining ones
    assert parts_sent(proxy) < PARTS - 8
    draft = last.split("Draft version ")[1].split(" ")[0]
    assert draft.split(":")[1] in drafts("big")  # visible until the next save

    proxy.rule = None
    again = cli("save", "big", src)
    assert again.returncode == 0, again.stderr
    assert draft.split(":")[1] not in drafts("big")  # the next save removed it


def test_an_interrupted_kernel_stops_the_uploads_with_one_line(slow, tmp_path):
    proxy, src = slow
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path), env=os.environ.copy())
    try:
        kc.execute_interactive("%load_ext gradient_jupyter", timeout=60)
        msg_id = kc.execute(f"%gradient_storage save big {src} --provider slow")
        wait_for(lambda: parts_sent(proxy) >= 1)
        km.interrupt_kernel()
        interrupted = time.monotonic()
        errors = []
        while True:
            try:
                msg = kc.get_iopub_msg(timeout=60)
            except queue.Empty:  # pragma: no cover - a hung kernel fails below
                break
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "error":
                errors.append(msg["content"])
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        took = time.monotonic() - interrupted
        (error,) = errors
        (line,) = error["traceback"]  # one line, like the console's, no traceback
        assert line.startswith("Interrupted: the save stopped and committed nothing. Draft version ds"), line
        assert took < 3, f"{took:.1f} s from the interrupt to the answer"
        time.sleep(1.5)  # the parts in flight arrive (each is held a second)...
        settled = parts_sent(proxy)
        time.sleep(3)  # ...and no other starts: the kernel lives on, but its threads do not go on sending
        assert parts_sent(proxy) == settled < PARTS - 8
        reply = kc.execute_interactive("1 + 1", timeout=60)
        assert reply["content"]["status"] == "ok"  # the kernel is still usable
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_a_dataset_deleted_while_a_save_runs_is_not_committed_into(slow, s3_bucket):
    proxy, src = slow
    proc = saving(proxy, src)
    deleted = cli("datasets", "delete", "--id", "big")
    assert deleted.returncode == 0, deleted.stderr
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "Saved" not in out, out
    assert "Error: Dataset 'big' (ds" in err and "was deleted while version" in err and "nothing was committed" in err
    endpoint, bucket = s3_bucket
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    left = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert left == []  # no orphan manifest, nor the bytes it would point at
    assert "big" not in cli("datasets", "list").stdout


def test_the_draft_of_a_killed_save_is_reused_and_removed_by_the_next_save(slow, s3_bucket):
    proxy, src = slow
    proc = saving(proxy, src)
    proc.kill()  # kill -9: no Ctrl-C handler runs, pending.json says nothing of it
    proc.wait()
    assert "Size" in drafts("big")  # the draft shows
    proxy.rule = None
    again = cli("save", "big", src)
    assert again.returncode == 0, again.stderr
    assert "(none)" in drafts("big")  # its process is gone: the next save removed it
    endpoint, bucket = s3_bucket
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    data = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []) if "/data/" in o["Key"]]
    assert len(data) == 2  # each file once
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []  # the killed save's parts too
