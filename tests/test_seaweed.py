"""The SeaweedFS fixture is a real S3 store: create-only writes, checksums, and data that survives kill -9."""

from __future__ import annotations

import base64
import hashlib

import pytest
from botocore.exceptions import ClientError


def test_seaweed_is_a_real_s3_store_that_survives_a_crash(seaweed_bucket):
    server, bucket = seaweed_bucket
    s3 = server.client()
    s3.put_object(Bucket=bucket, Key="a/b.txt", Body=b"hello", IfNoneMatch="*")
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="a/b.txt", Body=b"other", IfNoneMatch="*")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    wrong = base64.b64encode(hashlib.sha256(b"not the body").digest()).decode()
    with pytest.raises(ClientError) as bad:
        s3.put_object(Bucket=bucket, Key="c.txt", Body=b"body", ChecksumSHA256=wrong)
    assert bad.value.response["Error"]["Code"] in {"BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest"}

    server.kill()
    server.start()
    s3 = server.client()
    assert s3.get_object(Bucket=bucket, Key="a/b.txt")["Body"].read() == b"hello"
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="c.txt")
