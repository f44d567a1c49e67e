"""One Store contract, honoured by the embedded store and by S3Store on moto and on SeaweedFS over real HTTP."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import traceback

import pytest

from gradient_jupyter.engine import (
    BadInput,
    Conflict,
    GradientError,
    IntegrityError,
    LocalStore,
    NotFound,
    QuotaExceeded,
    S3Store,
    StoreError,
)

from .helpers import free_port, sha
from .helpers.faultproxy import FaultProxy
from .helpers.providers import PARTS, seaweed_store


@pytest.fixture(params=["embedded", "moto-http", "seaweed", "seaweed-after-fork"])
def store(request, tmp_path):
    if request.param == "seaweed-after-fork":  # a forked child's data plane (boto3, stores/s3_forked.py)
        from gradient_jupyter.engine.stores.s3_forked import ForkedS3Store

        server, bucket = request.getfixturevalue("seaweed_bucket")
        return ForkedS3Store(
            bucket, endpoint=server.endpoint, access_key=server.access_key, secret_key=server.secret_key, **PARTS
        )
    if request.param == "embedded":
        return LocalStore(tmp_path / "managed")
    if request.param == "moto-http":
        endpoint, bucket = request.getfixturevalue("s3_bucket")
        return S3Store(
            bucket, endpoint=endpoint, region="us-east-1", access_key="testing", secret_key="testing", **PARTS
        )
    return seaweed_store(*request.getfixturevalue("seaweed_bucket"))


def test_put_get_head_list_delete(store):
    store.put("te1/a/b.txt", b"hello", sha256=sha(b"hello"))
    store.put("te1/a/c/d.txt", b"")
    store.put("te1/z.txt", b"zz")
    store.put("te1/ab.txt", b"ab")
    assert store.get("te1/a/b.txt") == b"hello" and store.get_bytes("te1/a/b.txt") == b"hello"
    assert store.head("te1/a/c/d.txt").size == 0 and store.get("te1/a/c/d.txt") == b""
    assert store.head("te1/missing") is None
    assert [o.key for o in store.list("te1/a/")] == ["te1/a/b.txt", "te1/a/c/d.txt"]
    assert [o.key for o in store.list("te1/a")] == ["te1/a/b.txt", "te1/a/c/d.txt", "te1/ab.txt"]  # any prefix
    assert store.list_prefixes("te1/") == ["te1/a/"] and store.list_prefixes("") == ["te1/"]
    assert store.used_bytes("te1/") == 9
    assert store.verified_sha256("te1/a/b.txt") in (None, sha(b"hello"))
    store.delete(["te1/a/b.txt", "te1/never-there"])
    with pytest.raises(NotFound):
        store.get("te1/a/b.txt")
    with pytest.raises(NotFound):
        list(store.stream("te1/a/b.txt"))


def test_overwrite_replaces_and_create_lets_exactly_one_win(store):
    store.put("te1/record.json", b"one")
    store.put("te1/record.json", b"two", mode="overwrite")
    assert store.get("te1/record.json") == b"two"
    store.put("te1/manifest.json", b"first", mode="create")
    with pytest.raises(Conflict) as info:
        store.put("te1/manifest.json", b"second", mode="create")
    assert info.value.reason == "exists"
    with pytest.raises(Conflict):
        store.put_bytes("te1/manifest.json", b"third", mode="create")
    assert store.get("te1/manifest.json") == b"first"
    with pytest.raises(ValueError, match="mode"):
        store.put("te1/x", b"x", mode="append")


def test_ranged_reads(store):
    data = bytes(range(256)) * 40
    store.put("te1/r.bin", data)
    assert store.get_range("te1/r.bin", 0, 10) == data[:10]
    assert store.get_range("te1/r.bin", 5000, 6000) == data[5000:6000]
    assert store.get_range("te1/r.bin", 10000, 20000) == data[10000:]  # past the end: what there is
    assert store.get_range("te1/r.bin", 7, 7) == b""
    assert store.get_ranges("te1/r.bin", [(0, 3), (9000, 9100), (1, 2)]) == [data[:3], data[9000:9100], data[1:2]]
    assert b"".join(store.stream_range("te1/r.bin", 100, 9000, chunk_size=1000)) == data[100:9000]
    assert b"".join(store.stream("te1/r.bin", chunk_size=1000)) == data
    with pytest.raises(NotFound):
        store.get_range("te1/missing", 0, 1)
    with pytest.raises(ValueError, match="byte range"):
        store.get_range("te1/r.bin", 5, 1)


def test_copy_keeps_bytes_and_sha256(store):
    store.put("te1/src", b"payload", sha256=sha(b"payload"))
    store.copy("te1/src", "te1/v2/dst")
    assert store.get("te1/v2/dst") == b"payload"
    assert store.verified_sha256("te1/v2/dst") in (None, sha(b"payload"))
    with pytest.raises(NotFound):
        store.copy("te1/nothing", "te1/dst2")


def test_wrong_sha256_is_refused_and_nothing_is_written(store, tmp_path):
    with pytest.raises(IntegrityError):
        store.put("te1/bad", b"payload", sha256=sha(b"other"))
    big = os.urandom(13 * 1024**2)
    for name, data in (("small", b"small file"), ("big", big)):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(IntegrityError, match="changed while it was being saved"):
            # the file is not what was hashed (it changed since): refused before the upload completes
            store.put_file(f"te1/{name}", tmp_path / name, size=len(data), sha256=sha(data + b"!"))
        assert store.head(f"te1/{name}") is None
    assert store.head("te1/bad") is None


def test_put_file_small_and_multipart(store, tmp_path):
    for name, size in (("small.bin", 1000), ("big.bin", 13 * 1024**2)):
        data = os.urandom(size)
        path = tmp_path / name
        path.write_bytes(data)
        sent = []
        store.put_file(f"te1/{name}", path, size=size, sha256=sha(data), progress=sent.append, mode="create")
        assert sum(sent) == size
        assert sha(store.get(f"te1/{name}")) == sha(data)
        assert store.verified_sha256(f"te1/{name}") in (None, sha(data))
        with pytest.raises(Conflict):
            store.put_file(f"te1/{name}", path, size=size, sha256=sha(data), mode="create")
        store.put_file(f"te1/v/{name}", path, size=size, sha256=sha(data))
        assert b"".join(store.get_ranges(f"te1/v/{name}", [(0, size // 2), (size // 2, size)])) == data


TRICKY_KEYS = [
    "te1/with space/and+plus=eq.bin",
    "te1/ünïcødé/日本語.txt",
    "te1/odd~chars(1)&;,$@!'*.bin",
    "te1/percent%41/semi;colon?#.bin",
]


def test_any_key_a_dataset_path_can_make_round_trips(store):
    for i, key in enumerate(TRICKY_KEYS):
        store.put(key, f"file {i}".encode(), sha256=sha(f"file {i}".encode()))
    assert sorted(o.key for o in store.list("te1/")) == sorted(TRICKY_KEYS)
    for i, key in enumerate(TRICKY_KEYS):
        assert store.get(key) == f"file {i}".encode() and store.head(key).size == len(f"file {i}")


def test_capabilities_are_properties_not_classes(store):
    assert store.embedded == isinstance(store, LocalStore)
    assert store.supports_presign == store.parallel_ranges == (not store.embedded)
    if store.supports_presign:
        assert store.presign("get_object", "te1/x").startswith(store.endpoint)
    else:
        with pytest.raises(NotImplementedError):
            store.presign("get_object", "te1/x")


def test_quota_is_checked_before_sending(tmp_path):
    store = LocalStore(tmp_path / "m", quota=100)
    store.put("te1/x", b"a" * 60)
    store.check_quota(40)
    with pytest.raises(QuotaExceeded) as info:
        store.check_quota(41)
    assert "used 60 B (60 bytes)" in info.value.message and "(100 bytes)" in info.value.message
    assert "(41 bytes)" in info.value.message


def test_local_store_refuses_hostile_keys(tmp_path):
    store = LocalStore(tmp_path / "m")
    for key in ("../escape", "/abs", "a//b", "a\\b", "a/./b", ""):
        with pytest.raises(Exception, match="Invalid object key"):
            store.put(key, b"x")
    assert not (tmp_path / "escape").exists()


# -- S3 over real HTTP: checksums, errors, lost answers, credentials ------------------------------------------------
def test_uploads_carry_their_sha256_and_seaweed_verifies_it(seaweed_bucket, tmp_path):
    seaweed, bucket = seaweed_bucket
    import base64

    store = seaweed_store(seaweed, bucket)
    assert store.verifies_checksums is None  # decided by the first upload
    store.put("te1/sum", b"payload", sha256=sha(b"payload"))
    assert store.verifies_checksums is True
    head = seaweed.client().head_object(Bucket=bucket, Key="te1/sum", ChecksumMode="ENABLED")
    assert base64.b64decode(head["ChecksumSHA256"]).hex() == sha(b"payload")
    assert store.verified_sha256("te1/sum") == sha(b"payload")
    # the server checks the header: bytes that do not match it are refused (BadDigest)
    with pytest.raises(Exception, match="BadDigest"):
        seaweed.client().put_object(
            Bucket=bucket,
            Key="te1/forged",
            Body=b"payload",
            ChecksumSHA256=base64.b64encode(hashlib.sha256(b"other").digest()).decode(),
        )


@pytest.mark.parametrize("refusal", ["InvalidRequest", "InvalidArgument"])
def test_a_store_refusing_checksum_headers_is_detected_once(s3_bucket, tmp_path, caplog, refusal):
    from concurrent.futures import ThreadPoolExecutor

    endpoint, bucket = s3_bucket
    proxy = FaultProxy(endpoint).start()
    proxy.refuse_checksums = refusal
    try:
        store = S3Store(bucket, endpoint=proxy.url, access_key="testing", secret_key="testing")
        with caplog.at_level(logging.WARNING, logger="gradient_jupyter"), ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: store.put(f"te1/f{i}", b"x" * i, sha256=sha(b"x" * i)), range(16)))
        assert store.verifies_checksums is False
        assert [r.getMessage() for r in caplog.records].count(caplog.records[0].getMessage()) == 1
        assert "refused SHA-256 checksum headers" in caplog.records[0].getMessage() and len(caplog.records) == 1
        assert [store.get(f"te1/f{i}") for i in range(16)] == [b"x" * i for i in range(16)]
    finally:
        proxy.stop()


def test_a_lost_answer_to_a_create_only_write_is_not_a_conflict(seaweed_bucket):
    seaweed, bucket = seaweed_bucket
    proxy = FaultProxy(seaweed.endpoint).start()
    try:
        store = seaweed_store(seaweed, bucket, endpoint=proxy.url)
        store.put("te1/warm", b"x")  # decides checksums first
        proxy.inject("lose-answer")
        store.put("te1/manifest.json", b"mine", mode="create")  # written, answer lost, retried: 412 for our own
        assert proxy.injected == ["lose-answer"] and store.get("te1/manifest.json") == b"mine"
        proxy.inject("lose-answer")
        with pytest.raises(Conflict):  # someone else's object is still a conflict
            store.put("te1/manifest.json", b"theirs", mode="create")
        assert store.get("te1/manifest.json") == b"mine"
    finally:
        proxy.stop()


def test_transient_errors_are_retried_and_persistent_ones_reported(s3_bucket):
    endpoint, bucket = s3_bucket
    proxy = FaultProxy(endpoint).start()
    try:
        store = S3Store(bucket, endpoint=proxy.url, access_key="testing", secret_key="testing", attempts=3)
        proxy.inject("503", "reset")
        store.put("te1/a", b"a")
        proxy.inject("500")
        assert store.get("te1/a") == b"a" and proxy.injected == ["503", "reset", "500"]
        proxy.inject(*["503"] * 10)
        with pytest.raises(StoreError, match="SlowDown.*after retries") as info:
            store.get("te1/a")
        assert info.value.reason == "unavailable" and len(proxy.injected) == 3 + 3  # 3 attempts
    finally:
        proxy.stop()


def test_unreachable_endpoint_is_a_plain_store_error():
    store = S3Store(
        "b-unreachable",
        endpoint=f"http://127.0.0.1:{free_port()}",
        region="us-east-1",
        access_key="a",
        secret_key="b",
        timeout=2,
        attempts=2,
    )
    with pytest.raises(StoreError, match="Cannot connect to the storage endpoint") as info:
        store.head("x")
    assert info.value.reason == "unreachable"


def test_unknown_host_is_named():
    store = S3Store("b", endpoint="http://no-such-host.invalid", access_key="a", secret_key="b", attempts=1)
    for through in (lambda: store.get("x"), lambda: store.call("get_bucket_cors")):  # obstore, then boto3
        with pytest.raises(StoreError) as info:
            through()
        assert info.value.reason == "dns" and "'no-such-host.invalid'" in info.value.message


def test_missing_bucket_wrong_secret_and_unknown_key_are_named(s3_bucket, seaweed_bucket):
    seaweed, bucket = seaweed_bucket
    endpoint, bucket = s3_bucket
    store = S3Store("no-such-bucket-here", endpoint=endpoint, region="us-east-1", access_key="a", secret_key="b")
    with pytest.raises(StoreError) as info:
        store.put("k", b"x")
    assert info.value.reason == "no-such-bucket"
    wrong = seaweed_store(seaweed, bucket, secret_key="not-the-secret", attempts=1)
    with pytest.raises(StoreError) as info:
        wrong.put("te1/g", b"x")
    assert info.value.reason == "signature-mismatch" and "not-the-secret" not in str(info.value)
    unknown = seaweed_store(seaweed, bucket, access_key="nobody", attempts=1)
    with pytest.raises(StoreError) as info:
        unknown.get("te1/g")
    assert info.value.reason in ("invalid-credentials", "access-denied")
    assert seaweed_store(seaweed, bucket).head("te1/g") is None


def test_store_errors_keep_their_cause_and_the_stores_request_id(seaweed_bucket, s3_bucket, caplog):
    seaweed, bucket = seaweed_bucket
    wrong = seaweed_store(seaweed, bucket, secret_key="not-the-secret", attempts=1)
    endpoint, moto_bucket = s3_bucket
    moto = S3Store(moto_bucket, endpoint=endpoint, region="us-east-1", access_key="testing", secret_key="testing")
    with caplog.at_level(logging.DEBUG, logger="gradient_jupyter"):
        with pytest.raises(StoreError) as refused:  # through obstore (the data plane)
            wrong.put("te1/g", b"x")
        with pytest.raises(NotFound) as missing:  # through obstore
            moto.get("te1/none")
        with pytest.raises(StoreError) as control:  # through boto3 (the control plane)
            wrong.call("get_bucket_cors")
    for info in (refused, missing, control):
        assert info.value.__cause__ is not None and info.value.request_id
        assert info.value.request_id in caplog.text
    assert "not-the-secret" not in caplog.text


def causes(err: BaseException) -> list[BaseException]:
    """err and the chain of its causes, stopping at the first exception met twice."""
    chain: list[BaseException] = []
    while err is not None and all(err is not seen for seen in chain):
        chain.append(err)
        err = err.__cause__
    return chain


def test_a_store_error_has_the_stores_exception_as_its_cause_exactly_once(seaweed_bucket):
    seaweed, bucket = seaweed_bucket
    store = seaweed_store(seaweed, bucket)
    failures = []
    for fail in (
        lambda: store.call("head_object", "te1/none"),  # boto3 answers 404
        lambda: store.get("te1/none"),  # obstore answers not found
        lambda: store.call("no_such_operation"),  # neither botocore's nor obstore's exception: said as it is
    ):
        with pytest.raises(GradientError) as info:
            fail()
        failures.append(info.value)
    control, data, other = failures
    assert isinstance(control, NotFound) and type(control.__cause__).__name__ == "ClientError"
    assert control.request_id and control.request_id == control.__cause__.response["ResponseMetadata"]["RequestId"]
    assert isinstance(data, NotFound) and not isinstance(data.__cause__, GradientError)
    assert other.reason == "store-error" and isinstance(other.__cause__, AttributeError)
    assert "no_such_operation" in other.message
    for err in failures:
        chain = causes(err)
        assert len(chain) == 2 and chain[1].__cause__ is None  # the store's exception, once, and nothing after it
        text = "".join(traceback.format_exception(err))
        assert text.count("direct cause of the following exception") == 1


def test_credentials_from_a_profile_and_from_the_default_chain(seaweed_bucket, tmp_path, monkeypatch):
    seaweed, bucket = seaweed_bucket
    (tmp_path / "aws-credentials").write_text(
        f"[weedy]\naws_access_key_id = {seaweed.access_key}\naws_secret_access_key = {seaweed.secret_key}\n"
    )
    by_profile = S3Store(bucket, endpoint=seaweed.endpoint, profile="weedy")
    by_profile.put("te1/p", b"profile")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.secret_key)
    by_chain = S3Store(bucket, endpoint=seaweed.endpoint)
    assert by_chain.get("te1/p") == b"profile"
    with pytest.raises(StoreError) as info:
        S3Store(bucket, endpoint=seaweed.endpoint, profile="nobody-has-this").get("te1/p")
    assert info.value.reason == "no-credentials" and "nobody-has-this" in info.value.message


def test_keys_others_wrote_that_obstore_cannot_name_still_list(s3_bucket, caplog):
    endpoint, bucket = s3_bucket
    store = S3Store(bucket, endpoint=endpoint, access_key="testing", secret_key="testing")
    store.put("te1/ok", b"ok")
    store.client.put_object(Bucket=bucket, Key="te1/bad//double", Body=b"x")
    with caplog.at_level(logging.WARNING, logger="gradient_jupyter"):
        assert [o.key for o in store.list("te1/")] == ["te1/bad//double", "te1/ok"]
        assert store.list_prefixes("te1/") == ["te1/bad/"]
    assert "listed through boto3" in caplog.text
    with pytest.raises(BadInput, match="te1/bad//double"):
        store.get("te1/bad//double")
    store.delete(["te1/bad//double", "te1/ok"])
    assert list(store.list("te1/")) == []


def test_an_aws_bucket_without_a_configured_region_is_asked_its_own(monkeypatch):
    """obstore does not follow S3's region redirects: the store asks the bucket (HEAD bucket, through boto3: moto's
    in-process mock answers it) rather than trusting the default region, which may be another bucket's."""
    from moto import mock_aws

    with mock_aws():
        import boto3

        boto3.client("s3", region_name="eu-west-1").create_bucket(
            Bucket="far-away-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        store = S3Store("far-away-bucket", access_key="testing", secret_key="testing")
        assert store._obstore(True).config["region"] == "eu-west-1"  # what the data plane will sign for
        assert S3Store("far-away-bucket", region="eu-west-1").signing_region() == "eu-west-1"


@pytest.fixture
def aws_bucket_in(seaweed_bucket, monkeypatch):
    """A SeaweedFS bucket that answers as an AWS bucket living in eu-west-2 would (tests/helpers/faultproxy.py
    `region`), reached with no endpoint configured: boto3 and obstore take it from the environment. Yields (seaweed,
    bucket, proxy)."""
    seaweed, bucket = seaweed_bucket
    proxy = FaultProxy(seaweed.endpoint).start()
    proxy.region = ("eu-west-2", bucket)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"{proxy.url}/{bucket}")
    yield seaweed, bucket, proxy
    proxy.stop()


def aws_store(seaweed, bucket, regions_file) -> S3Store:
    return S3Store(bucket, access_key=seaweed.access_key, secret_key=seaweed.secret_key, regions_file=regions_file)


def test_an_aws_buckets_region_is_asked_once_per_machine_not_once_per_process(aws_bucket_in, tmp_path):
    seaweed, bucket, proxy = aws_bucket_in
    regions = tmp_path / "cache" / "bucket-regions.json"
    first = aws_store(seaweed, bucket, regions)
    first.put("te1/a", b"a")
    assert seaweed.client().get_object(Bucket=bucket, Key="te1/a")["Body"].read() == b"a"
    assert [op for op, _ in proxy.seen].count("HeadBucket") == 1
    assert json.loads(regions.read_text()) == {bucket: "eu-west-2"}
    proxy.seen.clear()
    later = aws_store(seaweed, bucket, regions)  # as in another process: it knows only the file
    assert later.get("te1/a") == b"a"
    assert [op for op, _ in proxy.seen] == ["GetObject"] and proxy.injected == []


def test_a_remembered_region_that_is_wrong_now_is_asked_again_and_the_request_retried(aws_bucket_in, tmp_path):
    """A bucket deleted and made again in another region: S3 refuses requests signed for the old one."""
    seaweed, bucket, proxy = aws_bucket_in
    seaweed.client().put_object(Bucket=bucket, Key="te1/a", Body=b"a")
    regions = tmp_path / "bucket-regions.json"
    regions.write_text(json.dumps({bucket: "eu-west-1", "other-bucket": "ap-south-1"}))
    store = aws_store(seaweed, bucket, regions)
    assert store.get("te1/a") == b"a"
    assert [op for op, _ in proxy.seen] == ["GetObject", "HeadBucket", "GetObject"]
    assert proxy.injected == ["wrong-region"]
    assert json.loads(regions.read_text()) == {bucket: "eu-west-2", "other-bucket": "ap-south-1"}
    # A region this process asked the bucket itself is not asked again: a refusal then stands (one request).
    proxy.region = ("us-west-1", bucket)
    proxy.seen.clear()
    with pytest.raises(StoreError) as refused:
        store.get("te1/a")
    assert refused.value.reason == "wrong-region" and "us-west-1" in refused.value.message
    assert [op for op, _ in proxy.seen] == ["GetObject"]


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"BUCKET": ["eu-west-2"]}', '{"BUCKET": "../x"}', ""])
def test_an_unreadable_region_cache_is_ignored_and_written_afresh(aws_bucket_in, tmp_path, content):
    seaweed, bucket, proxy = aws_bucket_in
    seaweed.client().put_object(Bucket=bucket, Key="te1/a", Body=b"a")
    regions = tmp_path / "bucket-regions.json"
    regions.write_text(content.replace("BUCKET", bucket))
    assert aws_store(seaweed, bucket, regions).get("te1/a") == b"a"
    assert [op for op, _ in proxy.seen] == ["HeadBucket", "GetObject"] and proxy.injected == []
    assert json.loads(regions.read_text()) == {bucket: "eu-west-2"}


def test_a_lost_answer_to_completing_a_multipart_upload_never_passes_for_success(seaweed_bucket, tmp_path):
    """The client retries the completion; SeaweedFS then completes it again from parts it already let go (an empty
    object). put_file either leaves the whole object or reports the failure: never success over wrong bytes."""
    seaweed, bucket = seaweed_bucket
    proxy = FaultProxy(seaweed.endpoint).start()
    try:
        store = seaweed_store(seaweed, bucket, endpoint=proxy.url)
        big = os.urandom(11 * 1024**2)
        (tmp_path / "big").write_bytes(big)
        store.put("te1/warm", b"x")
        proxy.inject("lose-answer:CompleteMultipartUpload")
        try:
            store.put_file("te1/big", tmp_path / "big", size=len(big), sha256=sha(big))
        except IntegrityError as exc:
            assert "holds 0 bytes there, not 11534336" in exc.message
        else:
            assert store.get("te1/big") == big
        assert proxy.injected == ["lose-answer"]
        assert [op for op, _ in proxy.seen].count("CompleteMultipartUpload") == 2  # the client did retry it
    finally:
        proxy.stop()


def test_an_unreachable_aws_bucket_costs_a_lookup_only_the_tries_that_fit_its_time(monkeypatch):
    """Finding an AWS bucket's region goes through boto3, which has no overall deadline: a lookup (a short
    retry_timeout, engine/core.py) makes only the tries whose backoff fits in it, the store itself all of them."""
    from .helpers import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")  # nothing listens: refused
    tries = {}
    for name, store in {
        "store": S3Store("gone-bucket", access_key="testing", secret_key="testing"),
        "lookup": S3Store("gone-bucket", access_key="testing", secret_key="testing").variant(
            timeout=2, retry_timeout=4
        ),
    }.items():
        tries[name] = 0

        def count(name=name, **_):
            tries[name] += 1

        store.client.meta.events.register("before-send.s3.HeadBucket", count)
        with pytest.raises(StoreError):
            store.signing_region()
    assert tries == {"store": S3Store.max_attempts, "lookup": 3}
