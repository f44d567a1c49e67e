"""Messages that must not mislead: CORS judged by the real preflight, no "try again later" for a store without STS,
and an AWS host name that does not resolve named as AWS's."""

from __future__ import annotations

from .helpers import cli as run_cli
from .helpers.faultproxy import FaultProxy


def cli(*words):
    return run_cli(*words, timeout=180)


def test_cors_is_a_warning_when_the_real_preflight_passes_and_no_sts_is_not_an_outage(seaweed_bucket):
    server, bucket = seaweed_bucket
    assert (
        cli(
            "storageProviders",
            "create",
            "s3",
            "--name",
            "sw",
            "--bucket",
            bucket,
            "--endpoint",
            server.endpoint,
            "--accessKey",
            server.access_key,
            "--secretAccessKey",
            server.secret_key,
        ).returncode
        == 0
    )
    # --origin takes one or more origins (the grammar's `--origin URL ...`)
    r = cli("storageProviders", "check", "--id", "sw", "--origin", "http://127.0.0.1:8888", "http://127.0.0.1:9999")
    assert r.returncode == 0, r.stdout  # no check failed
    assert "browsers at http://127.0.0.1:8888, http://127.0.0.1:9999 cannot" in r.stdout
    assert "[PASS] preflight" in r.stdout and "[WARN] cors" in r.stdout and "[FAIL]" not in r.stdout
    cors = r.stdout.split("[WARN] cors")[1].split("[PASS] preflight")[0]
    assert "CORS matters only to a web page" in cors and "never need it" in cors
    assert "c.GradientStorage.cors_origins" in cors  # configured once, not pinned to today's port
    sts = r.stdout.split("[WARN] generated-urls")[1]
    assert "This store has no STS" in sts and "try again later" not in sts and "503" not in sts


def test_an_aws_host_name_that_does_not_resolve_is_named(tmp_path):
    assert (
        cli(
            "storageProviders",
            "create",
            "s3",
            "--name",
            "aws",
            "--bucket",
            "my-bucket",
            "--region",
            "zz-nowhere-1",
            "--accessKey",
            "k",
            "--secretAccessKey",
            "s",
        ).returncode
        == 0
    )
    r = cli("datasets", "list")
    assert r.returncode == 0
    assert (
        "AWS S3 cannot be reached: its host name 'my-bucket.s3.zz-nowhere-1.amazonaws.com' cannot be resolved"
        in r.stderr
        and "the AWS S3 endpoint" not in r.stderr
    )


def test_a_store_without_conditional_writes_fails_that_check_with_what_to_do(seaweed_bucket):
    server, bucket = seaweed_bucket
    proxy = FaultProxy(server.endpoint).start()  # in front of SeaweedFS: a refused create-only write "succeeds"
    proxy.ignore_create_only = True
    try:
        create = ["storageProviders", "create", "s3", "--name", "nocond", "--bucket", bucket, "--endpoint", proxy.url]
        assert cli(*create, "--accessKey", server.access_key, "--secretAccessKey", server.secret_key).returncode == 0
        r = cli("storageProviders", "check", "--id", "nocond", "--origin", "http://127.0.0.1:8888")
    finally:
        proxy.stop()
    assert r.returncode == 1, r.stdout
    assert "[PASS] read-write" in r.stdout and "[FAIL] conditional-writes" in r.stdout
    finding = r.stdout.split("[FAIL] conditional-writes")[1].split("\n[")[0]
    assert "ignores If-None-Match: *" in finding and "one commit would be lost" in finding
    assert "Fix: Use a store that honours create-only writes" in finding
    assert "Traceback" not in r.stdout + r.stderr and server.secret_key not in r.stdout + r.stderr
