"""A commit killed with `kill -9` leaves its claim (committing.json): the next commit says what happened and goes on
instead of refusing for an hour. Through the console script against moto over HTTP, the manifest write held by a
proxy."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time

import boto3

from .helpers import cli, make_folder
from .helpers.faultproxy import FaultProxy


def test_a_killed_commit_is_taken_over_and_a_live_one_is_named(engine, s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    proxy = FaultProxy(endpoint).start()
    held, release = threading.Event(), threading.Event()
    try:
        engine.registry.create(
            "slow", {"bucket": bucket, "endpoint": proxy.url, "accessKey": "testing", "secretAccessKey": "testing"}
        )
        src = make_folder(tmp_path / "src", {"a.csv": b"1,2\n"})
        assert cli("datasets", "create", "--name", "c", "--storageProviderId", "slow").returncode == 0

        def draft() -> tuple[str, str]:
            made = cli("datasets", "versions", "create", "--id", "c")
            ref = re.search(r"(ds[a-z0-9]{13}):([a-z0-9]{7})", made.stdout)
            assert ref, made.stderr
            put = cli("datasets", "files", "put", "--id", ref.group(0), "--source-path", src / "a.csv")
            assert put.returncode == 0, put.stderr
            return ref.group(1), ref.group(2)

        ds_id, version = draft()

        def hold(method, path):  # the commit point waits here, and never arrives
            if method == "PUT" and "manifest.json" in path:
                held.set()
                release.wait(60)
                return "reset"
            return None

        proxy.rule = hold
        committer = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gradient_jupyter.cli",
                "datasets",
                "versions",
                "commit",
                "--id",
                f"{ds_id}:{version}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert held.wait(60)
        committer.kill()  # kill -9, mid-commit: its claim stays
        committer.wait()
        proxy.rule = None
        release.set()
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        claim = engine.datasets.layout.committing(ds_id, version)
        assert json.loads(s3.get_object(Bucket=bucket, Key=claim)["Body"].read())["pid"] == committer.pid
        again = cli("datasets", "versions", "commit", "--id", f"{ds_id}:{version}")
        assert again.returncode == 0, again.stderr  # the killed committer's process is gone: taken over at once
        assert "Committed" in again.stdout

        # A committer on another machine: named while it is heard of, taken over once it has been silent a minute.
        ds_id, version = draft()
        claim = engine.datasets.layout.committing(ds_id, version)
        now = time.time()
        live = {"since": now - 5, "alive": now, "host": "other-machine", "pid": 4242}
        s3.put_object(Bucket=bucket, Key=claim, Body=json.dumps(live).encode())
        refused = cli("datasets", "versions", "commit", "--id", f"{ds_id}:{version}")
        assert refused.returncode == 1
        assert f"Version {ds_id}:{version} is being committed by process 4242 on other-machine since " in refused.stderr
        assert "silent for 60 s; then commit again" in refused.stderr
        s3.put_object(Bucket=bucket, Key=claim, Body=json.dumps({**live, "alive": now - 61}).encode())
        taken = cli("datasets", "versions", "commit", "--id", f"{ds_id}:{version}")
        assert taken.returncode == 0, taken.stderr
        assert "Committed" in taken.stdout
    finally:
        release.set()
        proxy.stop()


def test_a_delete_racing_the_manifest_write_leaves_no_orphan_manifest(engine, s3_bucket, tmp_path):
    """The dataset is deleted after the save checked it and before its manifest lands (the delete's listing misses
    the manifest): the save sees dataset.json gone after writing, removes the manifest and fails naming the delete."""
    endpoint, bucket = s3_bucket
    proxy = FaultProxy(endpoint).start()
    try:
        engine.registry.create(
            "racy", {"bucket": bucket, "endpoint": proxy.url, "accessKey": "testing", "secretAccessKey": "testing"}
        )
        src = make_folder(tmp_path / "src", {"a.csv": b"1,2\n", "b.csv": b"3,4\n"})
        deleted = []

        def delete_first(method, path):
            if method == "PUT" and "manifest.json" in path and not deleted:
                deleted.append(path)
                engine.datasets.delete("race")  # through the proxy too, while this request waits

        proxy.rule = delete_first
        saved = cli("save", "race", src, "--provider", "racy")
        assert deleted, "the manifest write was never seen"
        assert saved.returncode == 1 and "Saved" not in saved.stdout, saved.stdout
        assert "Dataset 'race' (ds" in saved.stderr and "was deleted while version" in saved.stderr
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []  # no orphan manifest, no bytes
    finally:
        proxy.stop()
