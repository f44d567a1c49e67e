"""The bucket doctor over HTTP: check, apply CORS, policy; the origin defaults to this Jupyter server's own."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from .helpers import SECRET
from .helpers.cors import FOREIGN_RULE, foreign_cors

ORDER = ["credentials", "bucket", "list", "read-write", "conditional-writes", "cors", "preflight", "generated-urls"]


@pytest.fixture
def provider(jp_serverapp, s3_bucket):
    endpoint, bucket = s3_bucket
    engine = jp_serverapp.web_app.settings["gradient_engine"]
    return engine.registry.create(
        "moto", {"bucket": bucket, "endpoint": endpoint, "accessKey": "k", "secretAccessKey": SECRET}
    ).id


def bucket_cors(s3_bucket):
    endpoint, bucket = s3_bucket
    try:
        return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").get_bucket_cors(Bucket=bucket)[
            "CORSRules"
        ]
    except ClientError:
        return None


async def test_check_reports_for_this_servers_origin_and_changes_nothing(api, provider, s3_bucket, jp_http_port):
    foreign_cors(*s3_bucket)
    code, report = await api("POST", f"storage-providers/{provider}/check")
    assert code == 200 and report["storageProviderId"] == provider
    assert f"http://127.0.0.1:{jp_http_port}" in report["origins"]
    assert [c["id"] for c in report["checks"]] == ORDER
    status = {c["id"]: c for c in report["checks"]}
    assert status["read-write"]["status"] == "pass" and status["conditional-writes"]["status"] == "pass"
    assert status["cors"]["status"] == "fail" and "put-bucket-cors" in status["cors"]["fix"]
    assert s3_bucket[1] in status["cors"]["fix"] and not report["ok"]
    assert bucket_cors(s3_bucket) == [FOREIGN_RULE]  # a check never changes the bucket
    assert SECRET not in str(report)


async def test_apply_cors_then_check_passes(api, provider, s3_bucket):
    code, report = await api("POST", f"storage-providers/{provider}/cors", {"origins": ["https://jupyter.example.com"]})
    assert code == 200 and report["action"]["status"] == "pass"
    assert {c["id"]: c["status"] for c in report["checks"]}["cors"] == "pass"
    assert any("https://jupyter.example.com" in r["AllowedOrigins"] for r in bucket_cors(s3_bucket))
    code, again = await api("POST", f"storage-providers/{provider}/check", {"origins": ["https://jupyter.example.com"]})
    assert {c["id"]: c["status"] for c in again["checks"]}["cors"] == "pass"


async def test_policy_names_the_bucket(api, provider, s3_bucket, jp_serverapp):
    code, policy = await api("GET", f"storage-providers/{provider}/policy")
    assert code == 200 and s3_bucket[1] in str(policy["Statement"])
    team = jp_serverapp.web_app.settings["gradient_engine"].team_id
    code, narrow = await api("GET", f"storage-providers/{provider}/policy", params={"teamOnly": "true"})
    assert team in str(narrow["Statement"]) and team not in str(policy["Statement"])


async def test_doctor_bad_input(api, provider, s3_bucket):
    _, listing = await api("GET", "storage-providers")
    managed = listing["storageProviders"][0]["id"]
    cases = [
        ("POST", f"storage-providers/{provider}/check", {"origins": "http://x"}, 400, "wrong-type"),
        ("POST", f"storage-providers/{provider}/check", {"origins": ["not an origin"]}, 400, "invalid-origin"),
        ("POST", f"storage-providers/{provider}/cors", {"origins": [5]}, 400, "invalid-origin"),
        ("POST", f"storage-providers/{provider}/check", {"origin": ["http://x"]}, 400, "unknown-field"),
        ("POST", "storage-providers/spnope/check", None, 404, "not-found"),
        ("GET", f"storage-providers/{managed}/policy", None, 400, "embedded-store"),
        ("POST", f"storage-providers/{managed}/cors", None, 400, "embedded-store"),
    ]
    for method, path, body, status, reason in cases:
        code, err = await api(method, path, body)
        assert (code, err["reason"]) == (status, reason), (path, body, err)
    assert bucket_cors(s3_bucket) is None
    code, report = await api("POST", f"storage-providers/{managed}/check")
    assert code == 200 and {c["id"]: c["status"] for c in report["checks"]}["cors"] == "skip"
