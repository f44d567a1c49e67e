"""Gradient Managed on an S3 endpoint keeps its quota through the compat API too: parts sent by presigned URLs
wait in the bucket's multipart area, where no listing of objects shows them, and count all the same."""

from __future__ import annotations

import re

import pytest
import requests

from .helpers import SECRET
from .helpers.compat import in_thread, presign, upload_id

QUOTA = 300_000


@pytest.fixture
def jp_server_config(s3_bucket):
    endpoint, bucket = s3_bucket
    managed = {
        "managed_endpoint": endpoint,
        "managed_bucket": bucket,
        "managed_region": "us-east-1",
        "managed_access_key": "testing",
        "managed_secret_key": SECRET,
        "managed_quota": QUOTA,
    }
    return {"ServerApp": {"jpserver_extensions": {"gradient_jupyter": True}}, "GradientStorage": managed}


async def test_presigned_multipart_parts_count_against_the_managed_quota(compat, engine_of):
    managed = engine_of.registry.managed()
    assert not managed.embedded and engine_of.store(managed).quota == QUOTA
    code, ds = await compat("POST", "datasets", {"name": "parts"})
    assert code == 200, ds
    code, v = await compat("POST", f"datasets/{ds['id']}/versions", {})
    base = f"datasets/{ds['id']}/versions/{v['version']}/s3/preSignedUrls"
    (started,) = await presign(
        compat, ds["id"], v["version"], {"method": "createMultipartUpload", "params": {"Key": "big"}}
    )
    for number in (1, 2):  # straight to the bucket: nothing stops these bytes on their way
        (url,) = await presign(
            compat,
            ds["id"],
            v["version"],
            {"method": "uploadPart", "params": {"Key": "big", "UploadId": upload_id(started), "PartNumber": number}},
        )
        sent = await in_thread(lambda url=url: requests.put(url, data=b"p" * 200_000))
        assert sent.status_code == 200, sent.text

    store = engine_of.store(managed)
    used = await in_thread(store.used_bytes, engine_of.team_prefix())
    records = sum(o.size for o in await in_thread(lambda: list(store.list(engine_of.team_prefix()))))
    assert records < 2000 and used == records + 400_000  # no file stored yet: besides the records, all parts
    code, body = await compat("POST", base, {"calls": [{"method": "putObject", "params": {"Key": "more.csv"}}]})
    assert code == 413 and body["error"]["reason"] == "quota-exceeded", body
    assert f"{records + 400_000} bytes" in body["error"]["message"]

    # ending the version ends its uploads (engine/uploads.py): the room is free again
    code, _ = await compat("DELETE", f"datasets/{ds['id']}/versions/{v['version']}")
    assert code == 204
    code, v = await compat("POST", f"datasets/{ds['id']}/versions", {})
    (put_url,) = await presign(compat, ds["id"], v["version"], {"method": "putObject", "params": {"Key": "a.csv"}})
    assert (await in_thread(lambda: requests.put(put_url, data=b"1,2\n"))).status_code == 200


async def test_presigned_writes_are_signed_only_within_the_quota_and_the_commit_refuses_the_rest(compat, engine_of):
    """One preSignedUrls request once signed 1,000 write URLs; 12 MB went into a 3 MB quota and committed."""
    code, ds = await compat("POST", "datasets", {"name": "bounded"})
    code, v = await compat("POST", f"datasets/{ds['id']}/versions", {})
    base = f"datasets/{ds['id']}/versions/{v['version']}"
    (started,) = await presign(
        compat, ds["id"], v["version"], {"method": "createMultipartUpload", "params": {"Key": "big"}}
    )
    parts = [  # a thousand part URLs of one upload: all but the last at least 5 MiB (S3's minimum), ~5 GB
        {"method": "uploadPart", "params": {"Key": "big", "UploadId": upload_id(started), "PartNumber": n}}
        for n in range(1, 1001)
    ]
    code, body = await compat("POST", f"{base}/s3/preSignedUrls", {"calls": parts})
    assert code == 413 and body["error"]["reason"] == "quota-exceeded", body
    message = body["error"]["message"]
    assert f"({QUOTA} bytes)" in message and f"({999 * 5 * 1024**2} bytes) more" in message and "used" in message
    declared = {"method": "putObject", "params": {"Key": "a.bin", "ContentLength": QUOTA + 1}}
    code, body = await compat("POST", f"{base}/s3/preSignedUrls", {"calls": [declared]})
    assert code == 413 and f"({QUOTA + 1} bytes) more" in body["error"]["message"], body
    declared["params"]["ContentLength"] = 1000  # a declared size that fits is signed into the URL: S3 holds it to it
    (url,) = await presign(compat, ds["id"], v["version"], declared)
    assert "content-length" in url.split("X-Amz-SignedHeaders=")[1].split("&")[0]

    # URLs without a size cannot be bounded when signed: what they sent past the quota is refused at the commit
    urls = await presign(
        compat, ds["id"], v["version"], *({"method": "putObject", "params": {"Key": f"f{i}.bin"}} for i in range(4))
    )
    for url in urls:
        assert (await in_thread(lambda url=url: requests.put(url, data=b"x" * 100_000))).status_code == 200
    code, body = await compat("POST", base, {"isCommitted": True})
    assert code == 413 and body["error"]["reason"] == "quota-exceeded", body
    message = body["error"]["message"]
    used = int(re.search(r"used [^(]*\((\d+) bytes\)", message)[1])  # the records: the uploads are what it needs
    assert used < 2000 and f"({QUOTA} bytes)" in message and "this needs 390.6 KiB (400000 bytes) more" in message
    code, version = await compat("GET", base)
    assert code == 200 and not version["isCommitted"]
