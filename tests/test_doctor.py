"""The bucket-setup doctor: real S3 protocol (moto over HTTP) with IAM policies enforced on access keys."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.config import Config

from gradient_jupyter.cli import Context, main, run
from gradient_jupyter.engine import BadInput, Engine, GradientStorage, S3Store, doctor
from gradient_jupyter.output import ReportView

from .helpers import SECRET, free_port
from .helpers.cors import foreign_cors

ORIGIN = "http://127.0.0.1:8888"
ORDER = ["credentials", "bucket", "list", "read-write", "conditional-writes", "cors", "preflight", "generated-urls"]


# -- moto with IAM enforcement ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def iam_endpoint():
    """Our own moto server: IAM enforcement below must not meet the session server's users."""
    from moto.core.authorization import disable_iam_authentication
    from moto.moto_server import werkzeug_app
    from moto.server import ThreadedMotoServer

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # Like S3, this server adds no CORS headers of its own (moto's default answers every preflight with allow-all).
    # It makes one app per service on first use: make them now, while that default is switched off.
    previous = werkzeug_app.DISABLE_GLOBAL_CORS
    werkzeug_app.DISABLE_GLOBAL_CORS = True
    try:
        with disable_iam_authentication():
            for service, call in (("s3", "list_buckets"), ("sts", "get_caller_identity"), ("iam", "list_users")):
                getattr(
                    boto3.client(
                        service,
                        endpoint_url=endpoint,
                        region_name="us-east-1",
                        aws_access_key_id="testing",
                        aws_secret_access_key="testing",
                    ),
                    call,
                )()
    finally:
        werkzeug_app.DISABLE_GLOBAL_CORS = previous
    yield endpoint
    server.stop()


class Iam:
    """An AWS account on moto where access keys only do what their IAM policy allows."""

    def __init__(self, endpoint: str, admin: tuple[str, str]):
        self.endpoint = endpoint
        self.admin_keys = admin
        self.s3 = self.client("s3", admin)

    def client(self, service: str, keys: tuple[str, str]):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=keys[0],
            aws_secret_access_key=keys[1],
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def user(self, policy: dict) -> tuple[str, str]:
        iam = self.client("iam", self.admin_keys)
        name = "user-" + uuid.uuid4().hex[:10]
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="gradient", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def bucket(self, *, cors_origins=()) -> str:
        name = "doctor-" + uuid.uuid4().hex[:12]
        self.s3.create_bucket(Bucket=name)
        self.s3.put_object(Bucket=name, Key="someone-else/keep.txt", Body=b"not ours")
        if cors_origins:  # set by an administrator beforehand, as the seed document asks
            self.s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": doctor.cors_rules(cors_origins)})
        return name

    def snapshot(self, bucket: str) -> tuple:
        """Everything in the bucket that a check must leave alone: objects (key, ETag) and CORS rules."""
        objects = [(o["Key"], o["ETag"]) for o in self.s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        try:
            cors = self.s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
        except self.s3.exceptions.ClientError:
            cors = None
        return objects, cors


@pytest.fixture
def iam(iam_endpoint, monkeypatch):
    """IAM enforced for this test only: moto's switch is process-global, so it is restored afterwards."""
    from moto.core.authorization import disable_iam_authentication, enable_iam_authentication
    from moto.s3.responses import S3Response

    with disable_iam_authentication():
        admin_iam = boto3.client(
            "iam",
            endpoint_url=iam_endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        name = "admin-" + uuid.uuid4().hex[:8]
        admin_iam.create_user(UserName=name)
        admin_iam.put_user_policy(
            UserName=name,
            PolicyName="admin",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            ),
        )
        key = admin_iam.create_access_key(UserName=name)["AccessKey"]

    # moto authorises CORS preflights (and crashes: they carry no Authorization header); S3 never does.
    authorise = S3Response._authenticate_and_authorize_s3_action

    def skip_preflights(self, *args, **kwargs):
        if self.method != "OPTIONS":
            authorise(self, *args, **kwargs)

    monkeypatch.setattr(S3Response, "_authenticate_and_authorize_s3_action", skip_preflights)
    with enable_iam_authentication():
        yield Iam(iam_endpoint, (key["AccessKeyId"], key["SecretAccessKey"]))


def provider(engine, endpoint, bucket, keys, **config):
    return engine.registry.create(
        "p-" + uuid.uuid4().hex[:6],
        {
            "bucket": bucket,
            "endpoint": endpoint,
            "region": "us-east-1",
            "accessKey": keys[0],
            "secretAccessKey": keys[1],
            **config,
        },
    )


def statuses(report) -> dict:
    return {c.id: c.status for c in report.checks}


def without(policy: dict, sid: str) -> dict:
    return {**policy, "Statement": [s for s in policy["Statement"] if s["Sid"] != sid]}


# -- the seed policy ----------------------------------------------------------------------------------------------
def test_policy_is_the_seed_documents_for_that_bucket(engine):
    p = engine.registry.create("aws", {"bucket": "my-bucket", "accessKey": "AK", "secretAccessKey": SECRET})
    assert doctor.policy(engine, p.id) == {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "GenerateUrls", "Effect": "Allow", "Action": "sts:GetFederationToken", "Resource": "*"},
            {"Sid": "ListBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::my-bucket"},
            {"Sid": "ReadWriteObjects", "Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::my-bucket/*"},
        ],
    }
    narrow = doctor.policy(engine, "aws", team_only=True)["Statement"]
    team = engine.team_id
    assert narrow[1]["Resource"] == "arn:aws:s3:::my-bucket"
    assert narrow[1]["Condition"] == {"StringLike": {"s3:prefix": [team, f"{team}/*"]}}
    assert narrow[2]["Resource"] == f"arn:aws:s3:::my-bucket/{team}/*"
    with pytest.raises(BadInput, match="embedded"):
        doctor.policy(engine, "Gradient Managed")


def test_seed_policy_user_passes_every_check(engine, iam):
    bucket = iam.bucket(cors_origins=[ORIGIN])
    p = provider(engine, iam.endpoint, bucket, ("placeholder", "placeholder"))
    keys = iam.user(doctor.policy(engine, p))
    p = engine.registry.update(p.id, config={"accessKey": keys[0], "secretAccessKey": keys[1]})
    before = iam.snapshot(bucket)

    report = doctor.check(engine, p.id, origins=[ORIGIN])

    assert [c.id for c in report.checks] == ORDER
    assert statuses(report) == {
        "credentials": "pass",
        "bucket": "pass",
        "list": "pass",
        "read-write": "pass",
        "conditional-writes": "pass",
        "cors": "warn",
        "preflight": "pass",
        "generated-urls": "pass",
    }, str(report)
    assert report.ok
    # Least privilege: GetBucketCors is denied, so `cors` cannot read the rules and says the preflight decides.
    assert "GetBucketCors is denied" in report["cors"].detail and "preflight" in report["cors"].detail
    assert iam.snapshot(bucket) == before  # the probe objects are gone and nothing else changed
    for text in (str(report), ReportView(report)._repr_html_(), json.dumps(report.to_json())):
        assert keys[1] not in text


def test_user_without_listbucket_fails_list_with_the_statement_to_add(engine, iam):
    bucket = iam.bucket(cors_origins=[ORIGIN])
    seed = doctor.seed_policy(bucket)
    p = provider(engine, iam.endpoint, bucket, iam.user(without(seed, "ListBucket")))

    report = doctor.check(engine, p, origins=[ORIGIN])

    assert report["list"].status == "fail" and not report.ok
    assert "s3:ListBucket" in report["list"].detail
    fix = report["list"].fix
    assert "'ListBucket'" in fix and '"Action": "s3:ListBucket"' in fix
    assert f'"Resource": "arn:aws:s3:::{bucket}"' in fix
    assert report["read-write"].status == "pass"  # writing does not need listing


def test_user_without_object_rights_fails_read_write_and_keeps_the_bucket_unchanged(engine, iam):
    bucket = iam.bucket()
    p = provider(engine, iam.endpoint, bucket, iam.user(without(doctor.seed_policy(bucket), "ReadWriteObjects")))
    before = iam.snapshot(bucket)

    report = doctor.check(engine, p, origins=[ORIGIN])

    assert report["read-write"].status == "fail" and report["read-write"].reason == "access-denied"
    assert f"arn:aws:s3:::{bucket}/*" in report["read-write"].fix
    assert report["conditional-writes"].status == "skip" and "'read-write'" in report["conditional-writes"].detail
    assert iam.snapshot(bucket) == before


def test_bucket_without_cors_fails_cors_and_preflight_until_the_fix(engine, iam):
    bucket = iam.bucket()
    p = provider(engine, iam.endpoint, bucket, iam.admin_keys)

    report = doctor.check(engine, p, origins=[ORIGIN])
    assert report["cors"].status == "fail" and report["preflight"].status == "fail", str(report)
    assert "no CORS rules" in report["cors"].detail
    fix = report["cors"].fix
    assert f"aws s3api put-bucket-cors --bucket {bucket} --endpoint-url {iam.endpoint}" in fix
    assert f"storageProviders check --id {p.id} --origin {ORIGIN} --fix" in fix
    assert iam.snapshot(bucket)[1] is None  # checking changed nothing

    fixed = doctor.apply_cors(engine, p, [ORIGIN])

    assert fixed.action.status == "pass", str(fixed)
    assert fixed["cors"].status == "pass" and fixed["preflight"].status == "pass" and fixed.ok
    assert iam.snapshot(bucket)[1] == doctor.cors_rules([ORIGIN])
    again = doctor.apply_cors(engine, p, [ORIGIN])
    assert again.action.status == "pass" and "nothing changed" in again.action.detail


def test_the_cors_fix_merges_with_the_buckets_own_rules(engine, iam):
    bucket = iam.bucket()
    theirs = {"AllowedMethods": ["GET"], "AllowedOrigins": ["https://console.paperspace.com"], "MaxAgeSeconds": 60}
    iam.s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [theirs]})
    p = provider(engine, iam.endpoint, bucket, iam.admin_keys)

    assert doctor.check(engine, p, origins=[ORIGIN])["cors"].status == "fail"
    report = doctor.apply_cors(engine, p, [ORIGIN])

    rules = iam.snapshot(bucket)[1]
    assert rules[0] == theirs and rules[1:] == doctor.cors_rules([ORIGIN])
    # (Not `preflight`: moto refuses a preflight when any rule, not the first matching one, misses the origin.)
    assert report["cors"].status == "pass" and "kept the bucket's 1 other rule(s)" in report.action.detail
    # A second origin joins our rule instead of adding another.
    doctor.apply_cors(engine, p, [ORIGIN, "https://lab.example.com"])
    rules = iam.snapshot(bucket)[1]
    assert len(rules) == 2 and rules[0] == theirs
    assert rules[1]["AllowedOrigins"] == [ORIGIN, "https://lab.example.com"]


def test_least_privilege_user_gets_the_administrators_command_instead(engine, iam):
    bucket = iam.bucket()
    p = provider(engine, iam.endpoint, bucket, iam.user(doctor.seed_policy(bucket)))

    report = doctor.apply_cors(engine, p, [ORIGIN])

    assert report.action.status == "fail" and "Nothing changed" in report.action.detail
    assert "GetBucketCors is denied" in report.action.detail
    assert f"aws s3api put-bucket-cors --bucket {bucket} --endpoint-url {iam.endpoint}" in report.action.fix
    assert f"aws s3api get-bucket-cors --bucket {bucket}" in report.action.fix
    assert report["cors"].status == "warn" and report["preflight"].status == "fail"
    assert iam.snapshot(bucket)[1] is None

    # The administrator runs exactly the printed command; then the least-privilege user's check passes.
    command = next(line for line in report.action.fix.splitlines() if line.startswith("aws s3api put-bucket-cors"))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": iam.admin_keys[0], "AWS_SECRET_ACCESS_KEY": iam.admin_keys[1]}
    ran = subprocess.run(shlex.split(command), capture_output=True, text=True, env=env, timeout=120)
    assert ran.returncode == 0, ran.stderr
    after = doctor.check(engine, p, origins=[ORIGIN])
    assert after.ok and after["preflight"].status == "pass" and after["cors"].status == "warn"


def test_wrong_secret_fails_credentials_and_skips_the_rest(engine, iam):
    bucket = iam.bucket()
    key, _ = iam.user(doctor.seed_policy(bucket))
    p = provider(engine, iam.endpoint, bucket, (key, SECRET))

    report = doctor.check(engine, p, origins=[ORIGIN])

    cred = report["credentials"]
    assert cred.status == "fail" and cred.reason == "signature-mismatch"
    assert "secretAccessKey" in cred.detail and f"--accessKey {key}" in cred.fix
    assert all(c.status == "skip" and "'credentials'" in c.detail for c in report.checks[1:])
    for text in (str(report), ReportView(report)._repr_html_(), json.dumps(report.to_json())):
        assert SECRET not in text


def test_unknown_access_key_fails_credentials(engine, iam):
    p = provider(engine, iam.endpoint, iam.bucket(), ("AKIAUNKNOWNUNKNOWN00", SECRET))
    cred = doctor.check(engine, p)["credentials"]
    assert cred.status == "fail" and cred.reason == "invalid-credentials" and "--accessKey KEY" in cred.fix


# -- endpoints that are wrong in other ways (no IAM needed) ---------------------------------------------------
def test_nothing_listening_fails_credentials_with_a_plain_finding(engine):
    endpoint = f"http://127.0.0.1:{free_port()}"
    p = provider(engine, endpoint, "some-bucket", ("AK", SECRET))

    report = doctor.check(engine, p, origins=[ORIGIN], timeout=3)

    cred = report["credentials"]
    assert cred.status == "fail" and cred.reason == "unreachable"
    assert f"Cannot connect to the storage endpoint {endpoint}" in cred.detail and "--endpoint URL" in cred.fix
    assert [c.status for c in report.checks[1:]] == ["skip"] * 7
    assert "Traceback" not in str(report)


def test_an_endpoint_that_never_answers_fails_within_the_time_bound(engine):
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        p = provider(engine, endpoint, "some-bucket", ("AK", SECRET))
        report = doctor.check(engine, p, origins=[ORIGIN], timeout=1)
    cred = report["credentials"]
    assert cred.status == "fail" and cred.reason == "timeout"
    assert "within 1 s" in cred.detail and "store_timeout" in cred.fix


class NotS3(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<html><body>Welcome to my web site</body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_an_endpoint_that_is_not_s3_is_named_as_such(engine):
    server = ThreadingHTTPServer(("127.0.0.1", 0), NotS3)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        p = provider(engine, f"http://127.0.0.1:{server.server_port}", "some-bucket", ("AK", SECRET))
        cred = doctor.check(engine, p)["credentials"]
    finally:
        server.shutdown()
        server.server_close()
    assert cred.status == "fail" and cred.reason == "not-s3"
    assert "not like an S3 store" in cred.detail and "without the bucket name" in cred.fix


def test_missing_bucket_fails_bucket_with_the_create_command(engine, s3_bucket):
    endpoint, _ = s3_bucket
    p = provider(engine, endpoint, "no-such-bucket-" + uuid.uuid4().hex[:8], ("testing", "testing"))
    report = doctor.check(engine, p, origins=[ORIGIN])
    assert report["credentials"].status == "pass"
    assert report["bucket"].status == "fail" and report["bucket"].reason == "no-such-bucket"
    assert f"aws s3api create-bucket --bucket {p.bucket} --endpoint-url {endpoint}" in report["bucket"].fix
    assert {c.id for c in report.checks if c.status == "skip"} == {
        "list",
        "read-write",
        "conditional-writes",
        "cors",
        "preflight",
    }


def test_store_errors_map_to_specific_reasons():
    """botocore's own exceptions, as the network and stores raise them, become plain findings."""
    from botocore.exceptions import ClientError, EndpointConnectionError
    from urllib3.exceptions import NameResolutionError

    store = S3Store("b", endpoint="http://s3.nowhere.invalid:9000", region="us-east-1")
    dns = EndpointConnectionError(
        endpoint_url="http://s3.nowhere.invalid:9000/",
        error=NameResolutionError("s3.nowhere.invalid", None, OSError("not known")),
    )
    err = store.translate(dns, "list_buckets")
    assert err.reason == "dns" and "s3.nowhere.invalid" in err.message

    def client_error(code, status, headers=None):
        return ClientError(
            {
                "Error": {"Code": code, "Message": ""},
                "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}},
            },
            "op",
        )

    assert store.translate(client_error("404", 404), "head_bucket").reason == "no-such-bucket"
    moved = store.translate(client_error("301", 301, {"x-amz-bucket-region": "eu-west-1"}), "head_bucket")
    assert moved.reason == "wrong-region" and "eu-west-1" in moved.message
    assert (
        store.translate(client_error("InvalidClientTokenId", 403), "get_caller_identity").reason
        == "invalid-credentials"
    )
    assert store.translate(client_error("NotImplemented", 501), "get_bucket_cors").reason == "not-implemented"


# -- embedded store, origins, rendering ------------------------------------------------------------------------
def test_embedded_store_runs_what_makes_sense_and_leaves_nothing(engine):
    report = doctor.check(engine, "Gradient Managed", origins=[ORIGIN])
    assert statuses(report) == {
        "credentials": "skip",
        "bucket": "pass",
        "list": "pass",
        "read-write": "pass",
        "conditional-writes": "pass",
        "cors": "skip",
        "preflight": "skip",
        "generated-urls": "skip",
    }
    assert "no CORS needed" in report["cors"].detail and report.ok
    managed = engine.home / "managed"
    assert not any(managed.rglob("*"))
    with pytest.raises(BadInput, match="embedded"):
        doctor.apply_cors(engine, "Gradient Managed", [ORIGIN])


def test_origins_are_validated_and_settings_origins_are_added(aws_env):
    engine = Engine(GradientStorage(cors_origins=["https://console.paperspace.com"]))
    assert doctor.resolve_origins(engine, ["http://127.0.0.1:8888/lab?token=x"]) == [
        "http://127.0.0.1:8888",
        "https://console.paperspace.com",
    ]
    assert doctor.resolve_origins(engine, ["HTTP://[::1]:8888", "https://Lab.Example.com:443/"])[:2] == [
        "http://[::1]:8888",
        "https://lab.example.com",
    ]
    for bad in (
        ["javascript:alert(1)"],
        ["not a url"],
        "http://127.0.0.1:8888",
        [42],
        ["http://a'b.com"],
        ["http://user:pw@host"],
        ["http://h:99999"],
        8888,
    ):
        with pytest.raises(BadInput):
            doctor.check(engine, "Gradient Managed", origins=bad)
    plain = Engine(GradientStorage())
    with pytest.raises(BadInput, match="No origin"):
        doctor.apply_cors(plain, plain.registry.create("x", {"bucket": "bkt", "endpoint": "http://127.0.0.1:9"}))


def test_without_any_origin_cors_checks_are_skipped_with_the_reason(engine, s3_bucket):
    endpoint, bucket = s3_bucket
    report = doctor.check(engine, provider(engine, endpoint, bucket, ("testing", "testing")))
    assert report["cors"].status == "skip" and "--origin" in report["cors"].detail
    assert report["preflight"].status == "skip"


def test_report_renders_as_text_html_and_json(engine, s3_bucket):
    endpoint, bucket = s3_bucket
    p = provider(engine, endpoint, bucket, ("testing", SECRET))
    foreign_cors(endpoint, bucket)
    report = doctor.check(engine, p, origins=[ORIGIN])
    data = report.to_json()
    assert data["storageProviderId"] == p.id and data["ok"] is False and data["origins"] == [ORIGIN]
    assert [c["id"] for c in data["checks"]] == ORDER
    assert all({"id", "title", "status", "detail", "fix"} <= set(c) for c in data["checks"])
    text = str(report)
    assert "[FAIL] cors: CORS rules" in text and "Fix: " in text and "check(s) failed" in text
    page = ReportView(report)._repr_html_()
    assert "<table>" in page and "data-check='preflight'" in page and "put-bucket-cors" in page
    assert all(SECRET not in t for t in (text, page, json.dumps(data)))
    # only what to type is monospace: the fix's words are in the page's font, its command and JSON are <code>
    fix = re.search(r"data-check='cors'.*?<div class='gradient-fix' style='([^']*)'>(.*?)</div>", page, re.S)
    assert "monospace" not in fix.group(1) and "font-family" not in fix.group(1)
    assert re.search(r"<code[^>]*>aws s3api put-bucket-cors ", fix.group(2))
    assert re.search(r"<code[^>]*>\[\n  \{", fix.group(2))  # the CORS rules to paste
    assert "Apply the recommended rules" in re.sub(r"<code.*?</code>", "", fix.group(2), flags=re.S)
    quiet = doctor.Report(p, [doctor.Check("generated-urls", doctor.WARN, "This store has no STS.", "Nothing to do.")])
    quiet_page = ReportView(quiet)._repr_html_()
    assert "Nothing to do." in quiet_page and "<code" not in quiet_page and "monospace" not in quiet_page


# -- the command words ---------------------------------------------------------------------------------------------
def shell(capsys, *words) -> tuple[int, str, str]:
    """The console script's main(), in this process: exit code, stdout, stderr."""
    code = main(list(words))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_and_policy_words_in_a_shell(capsys, s3_bucket):
    endpoint, bucket = s3_bucket
    made = shell(
        capsys,
        "storageProviders",
        "create",
        "s3",
        "--name",
        "b",
        "--bucket",
        bucket,
        "--endpoint",
        endpoint,
        "--region",
        "us-east-1",
        "--accessKey",
        "testing",
        f"--secretAccessKey={SECRET}",
    )
    assert made[0] == 0, made
    foreign_cors(endpoint, bucket)

    checked = shell(capsys, "storageProviders", "check", "--id", "b", "--origin", ORIGIN)
    assert checked[0] == 1 and "[FAIL] cors" in checked[1]  # a failing check exits 1, for scripts
    fixed = shell(capsys, "storageProviders", "check", "--id", "b", "--origin", ORIGIN, "--fix")
    assert fixed[0] == 0, fixed[1]
    assert "[PASS] apply-cors" in fixed[1] and "[PASS] cors" in fixed[1] and "[PASS] preflight" in fixed[1]

    printed = shell(capsys, "storageProviders", "policy", "--id", "b", "--team-only")
    assert printed[0] == 0
    assert json.loads(printed[1])["Statement"][2]["Resource"].startswith(f"arn:aws:s3:::{bucket}/te")
    assert all(SECRET not in r[1] + r[2] for r in (made, checked, fixed, printed))

    bad = shell(capsys, "storageProviders", "check", "--id", "b", "--origin", "nope")
    assert bad[0] == 1 and "Invalid origin 'nope'" in bad[2]
    usage = shell(capsys, "storageProviders", "check", "--origin", ORIGIN)
    assert usage[0] == 2 and "--id" in usage[2]
    helped = shell(capsys, "storageProviders", "policy", "--help")
    assert helped[0] == 0 and "--team-only" in helped[1]


def test_the_console_script_runs_the_check(s3_bucket):
    endpoint, bucket = s3_bucket
    Engine(GradientStorage()).registry.create(
        "b", {"bucket": bucket, "endpoint": endpoint, "accessKey": "testing", "secretAccessKey": SECRET}
    )
    foreign_cors(endpoint, bucket)
    r = subprocess.run(
        [sys.executable, "-m", "gradient_jupyter.cli", "storageProviders", "check", "--id", "b", "--origin", ORIGIN],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1 and "[PASS] read-write" in r.stdout and "[FAIL] cors" in r.stdout
    assert "Traceback" not in r.stderr and SECRET not in r.stdout + r.stderr


def test_check_defaults_to_the_running_jupyter_servers_origins(tmp_path, monkeypatch, s3_bucket):
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / "jpserver-1.json").write_text(json.dumps({"pid": os.getpid(), "url": "http://127.0.0.1:8899/"}))
    (runtime / "jpserver-2.json").write_text(json.dumps({"pid": 2**22 + 7, "url": "http://127.0.0.1:7777/"}))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    ctx = Context()
    endpoint, bucket = s3_bucket
    p = provider(ctx.engine, endpoint, bucket, ("testing", "testing"))
    report = run(["storageProviders", "check", "--id", p.id], ctx)
    assert report.origins == ["http://127.0.0.1:8899"]  # the dead server's file is ignored
    assert hasattr(report, "_repr_html_")


def test_unknown_profile_is_a_finding_not_a_traceback(engine):
    p = engine.registry.create("prof", {"bucket": "bkt", "profile": "nobody-has-this"})
    report = doctor.check(engine, p, timeout=3)
    assert report["credentials"].status == "fail" and report["credentials"].reason == "no-credentials"
    assert "nobody-has-this" in report["credentials"].detail and "--profile NAME" in report["credentials"].fix
