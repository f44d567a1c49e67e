"""Both stores honour one contract: create-only writes, checksums, listing, deletes, quota."""
from __future__ import annotations

import hashlib
import os

import pytest

from gradient_jupyter.engine import Conflict, IntegrityError, LocalStore, NotFound, QuotaExceeded, S3Store, StoreError

from .conftest import free_port


@pytest.fixture(params=["local", "moto-http", "mock_aws"])
def store(request, tmp_path):
    if request.param == "local":
        yield LocalStore(tmp_path / "managed")
    elif request.param == "moto-http":
        endpoint, bucket = request.getfixturevalue("s3_bucket")
        yield S3Store(bucket, endpoint=endpoint, region="us-east-1", access_key="testing", secret_key="testing",
                      multipart_threshold=6 * 1024**2, part_size=5 * 1024**2)
    else:
        from moto import mock_aws

        with mock_aws():
            s = S3Store("mock-bucket", region="us-east-1", multipart_threshold=6 * 1024**2, part_size=5 * 1024**2)
            s.client.create_bucket(Bucket="mock-bucket")
            yield s


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_put_get_head_list_delete(store):
    store.put_bytes("te1/a/b.txt", b"hello", sha256=sha(b"hello"))
    store.put_bytes("te1/a/c/d.txt", b"")
    store.put_bytes("te1/z.txt", b"zz")
    assert store.get_bytes("te1/a/b.txt") == b"hello"
    assert store.head("te1/a/c/d.txt").size == 0
    assert store.head("te1/missing") is None
    assert [o.key for o in store.list("te1/a/")] == ["te1/a/b.txt", "te1/a/c/d.txt"]
    assert store.list_prefixes("te1/") == ["te1/a/"]
    assert store.used_bytes("te1/") == 7
    store.delete(["te1/a/b.txt", "te1/never-there"])
    with pytest.raises(NotFound):
        store.get_bytes("te1/a/b.txt")


def test_create_only_write_lets_exactly_one_win(store):
    store.put_bytes("te1/manifest.json", b"first", create_only=True)
    with pytest.raises(Conflict):
        store.put_bytes("te1/manifest.json", b"second", create_only=True)
    assert store.get_bytes("te1/manifest.json") == b"first"


def test_local_store_refuses_a_wrong_checksum(tmp_path):
    store = LocalStore(tmp_path / "m")
    with pytest.raises(IntegrityError):
        store.put_bytes("te1/bad", b"payload", sha256=sha(b"other"))
    assert store.head("te1/bad") is None


def test_s3_uploads_carry_their_sha256(s3_bucket):
    """The store receives and records our SHA-256 (moto records it; AWS also verifies it and refuses a mismatch)."""
    import base64

    endpoint, bucket = s3_bucket
    store = S3Store(bucket, endpoint=endpoint, region="us-east-1", access_key="testing", secret_key="testing")
    store.put_bytes("te1/sum", b"payload", sha256=sha(b"payload"))
    head = store.client.head_object(Bucket=store.bucket, Key="te1/sum", ChecksumMode="ENABLED")
    assert base64.b64decode(head["ChecksumSHA256"]).hex() == sha(b"payload")
    assert store.stored_sha256("te1/sum") == sha(b"payload")


def test_put_file_small_and_multipart(store, tmp_path):
    for name, size in (("small.bin", 1000), ("big.bin", 13 * 1024**2)):
        data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
        path = tmp_path / name
        path.write_bytes(data)
        sent = []
        store.put_file(f"te1/{name}", path, size=size, sha256=sha(data), progress=sent.append, create_only=True)
        assert sum(sent) == size
        assert sha(store.get_bytes(f"te1/{name}")) == sha(data)
        with pytest.raises(Conflict):
            store.put_file(f"te1/{name}", path, size=size, sha256=sha(data), create_only=True)


def test_quota_is_checked_before_sending(tmp_path):
    store = LocalStore(tmp_path / "m", quota=100)
    store.put_bytes("te1/x", b"a" * 60)
    store.check_quota(40)
    with pytest.raises(QuotaExceeded) as info:
        store.check_quota(41)
    assert "used 60 B (60 bytes)" in info.value.message and "(100 bytes)" in info.value.message
    assert "(41 bytes)" in info.value.message


def test_local_store_refuses_hostile_keys(tmp_path):
    store = LocalStore(tmp_path / "m")
    for key in ("../escape", "/abs", "a//b", "a\\b", "a/./b", ""):
        with pytest.raises(Exception, match="Invalid object key"):
            store.put_bytes(key, b"x")
    assert not (tmp_path / "escape").exists()


def test_unreachable_endpoint_is_a_plain_store_error():
    store = S3Store("b-unreachable", endpoint=f"http://127.0.0.1:{free_port()}", region="us-east-1",
                    access_key="a", secret_key="b", timeout=2, attempts=2)
    with pytest.raises(StoreError, match="Cannot connect to the storage endpoint") as info:
        store.head("x")
    assert info.value.reason == "unreachable"


def test_missing_bucket_and_wrong_key_are_named(s3_bucket):
    endpoint, bucket = s3_bucket
    store = S3Store("no-such-bucket-here", endpoint=endpoint, region="us-east-1", access_key="a", secret_key="b")
    with pytest.raises(StoreError) as info:
        store.put_bytes("k", b"x")
    assert info.value.reason == "no-such-bucket"


# -- direct requests: small objects and parts skip botocore's API layer, signed by botocore's own signer ----------------
from .test_doctor import iam, iam_endpoint  # noqa: E402,F401  (moto that checks every signature)

TRICKY_KEYS = ["te1/with space/and+plus=eq.bin", "te1/ünïcødé/日本語.txt", "te1/odd~chars(1)&;,$@!'*.bin",
               "te1/percent%41/semi;colon?#.bin"]


def api_calls(store) -> list[str]:
    """Operations that went through the client's API layer (the direct ones do not)."""
    calls: list[str] = []
    store.client.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    return calls


def read(store, key: str) -> bytes:
    """A whole object the way load reads data (stream; get_bytes is for small records and uses the client)."""
    return b"".join(store.stream(key))


def sent_urls(store) -> list[str]:
    urls: list[str] = []
    store.client.meta.events.register("before-send.s3", lambda request, **_: urls.append(request.url))
    return urls


def test_direct_requests_pass_a_server_that_checks_every_signature(iam, tmp_path):
    bucket = iam.bucket()
    store = S3Store(bucket, endpoint=iam.endpoint, region="us-east-1", access_key=iam.admin_keys[0],
                    secret_key=iam.admin_keys[1], multipart_threshold=6 * 1024**2, part_size=5 * 1024**2)
    calls = api_calls(store)
    data = b"small file" * 100
    (tmp_path / "small").write_bytes(data)
    store.put_file("te1/a/small-1_2.bin", tmp_path / "small", size=len(data), sha256=sha(data), create_only=True)
    assert read(store, "te1/a/small-1_2.bin") == data and store.stored_sha256("te1/a/small-1_2.bin") == sha(data)
    big = os.urandom(11 * 1024**2)
    (tmp_path / "big").write_bytes(big)
    store.put_file("te1/big.bin", tmp_path / "big", size=len(big), sha256=sha(big))
    assert b"".join(store.stream_range("te1/big.bin", 5, 6 * 1024**2)) == big[5:6 * 1024**2]
    assert read(store, "te1/big.bin") == big
    # the data went direct: the client's API layer saw only the calls that have no direct form
    assert calls == ["HeadObject", "CreateMultipartUpload", "CompleteMultipartUpload"]


def test_direct_requests_address_any_key_as_the_client_does(s3_bucket, tmp_path):
    """moto's signature check itself fails on percent-encoded keys (even the client's), so for these keys the
    direct request is held to the client's: the same URL, signed by the same botocore signer."""
    endpoint, bucket = s3_bucket
    store = S3Store(bucket, endpoint=endpoint, region="us-east-1", access_key="testing", secret_key="testing")
    urls, calls = sent_urls(store), api_calls(store)
    for i, key in enumerate(TRICKY_KEYS):
        data = f"file {i}".encode()
        (tmp_path / "f").write_bytes(data)
        store.put_file(key, tmp_path / "f", size=len(data), sha256=sha(data))
        store.client.put_object(Bucket=bucket, Key=key, Body=data)  # the same object again, by the client
        assert urls[-2] == urls[-1]
        assert read(store, key) == data
    assert sorted(o.key for o in store.list("te1/")) == sorted(TRICKY_KEYS)
    assert calls.count("PutObject") == len(TRICKY_KEYS) and "GetObject" not in calls


def test_a_refused_direct_request_falls_back_to_the_client_and_its_plain_errors(iam, tmp_path):
    bucket = iam.bucket()
    good = S3Store(bucket, endpoint=iam.endpoint, region="us-east-1", access_key=iam.admin_keys[0],
                   secret_key=iam.admin_keys[1])
    (tmp_path / "f").write_bytes(b"first")
    good.put_file("te1/f", tmp_path / "f", size=5, sha256=sha(b"first"), create_only=True)
    calls = api_calls(good)
    with pytest.raises(Conflict):  # If-None-Match refused the direct PUT; the client's retry says why
        good.put_file("te1/f", tmp_path / "f", size=5, sha256=sha(b"first"), create_only=True)
    with pytest.raises(NotFound):
        read(good, "te1/missing")
    assert calls == ["PutObject", "GetObject"]
    wrong = S3Store(bucket, endpoint=iam.endpoint, region="us-east-1", access_key=iam.admin_keys[0],
                    secret_key="not-the-secret", attempts=1)
    with pytest.raises(StoreError) as info:
        wrong.put_file("te1/g", tmp_path / "f", size=5, sha256=sha(b"first"))
    assert info.value.reason == "signature-mismatch" and "not-the-secret" not in str(info.value)
    assert good.get_bytes("te1/f") == b"first" and good.head("te1/g") is None
