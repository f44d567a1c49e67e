"""Datasets over HTTP: the whole flow, immutability, hostile paths, streamed uploads and verified downloads."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os

import boto3
import pytest
import tornado.httpserver
from tornado.httpclient import HTTPClientError

from .helpers import SECRET, free_port

S3 = {"accessKey": "access-key", "secretAccessKey": SECRET}
MiB = 1024 * 1024


@pytest.fixture
def jp_server_config(request):
    return {"ServerApp": {"jpserver_extensions": {"gradient_jupyter": True}}, **getattr(request, "param", {})}


@pytest.fixture
def moto_provider(engine_of, s3_bucket):
    endpoint, bucket = s3_bucket
    return engine_of.registry.create("moto", {**S3, "bucket": bucket, "endpoint": endpoint}).to_json()


async def new_version(api, name="ds1", provider=None):
    body = {"name": name, **({"storageProviderId": provider} if provider else {})}
    code, ds = await api("POST", "datasets", body)
    assert code == 201, ds
    code, v = await api("POST", f"datasets/{ds['id']}/versions", {"message": "first"})
    assert code == 201, v
    return ds, v


def bucket_keys(s3_bucket) -> list[str]:
    endpoint, bucket = s3_bucket
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def spool_files(engine) -> list[str]:
    folder = engine.home / "tmp"
    return sorted(os.listdir(folder)) if folder.exists() else []


# -- the flow --------------------------------------------------------------------------------------------------
async def test_provider_dataset_version_files_commit_tag_ref_download(
    api, jp_fetch, moto_provider, s3_bucket, engine_of
):
    files = {"train/a.csv": b"x,y\n1,2\n", "train/deep/b.bin": os.urandom(3 * MiB + 17), "README.md": b"# hi\n"}
    ds, v = await new_version(api, "flow", provider=moto_provider["id"])
    assert ds["storageProviderId"] == moto_provider["id"] and not v["isCommitted"]
    for path, data in files.items():
        code, entry = await api("PUT", f"datasets/{ds['id']}/versions/{v['version']}/files/{path}", data=data)
        assert code == 200 and entry == {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    code, listing = await api("GET", f"datasets/{ds['id']}/versions/{v['version']}/files", params={"path": "train/"})
    assert [f["path"] for f in listing["files"]] == ["train/a.csv", "train/deep/b.bin"]
    assert (await api("GET", f"datasets/{ds['id']}/versions"))[1] == {"versions": []}  # committed only, by default
    assert len((await api("GET", f"datasets/{ds['id']}/versions", params={"isCommitted": "false"}))[1]["versions"]) == 1

    code, committed = await api("POST", f"datasets/{ds['id']}/versions/{v['version']}/commit")
    assert code == 200 and committed["isCommitted"] and committed["fileCount"] == 3
    assert committed["size"] == sum(map(len, files.values())) and committed["dtCommitted"]
    again = await api("POST", f"datasets/{ds['id']}/versions/{v['version']}/commit")
    assert again == (200, committed)  # committing twice answers the committed version unchanged
    team = engine_of.team_id
    assert f"{team}/datasets/{ds['id']}/versions/{v['version']}/manifest.json" in bucket_keys(s3_bucket)

    code, tag = await api("PUT", f"datasets/{ds['id']}/tags/gold", {"version": v["version"]})
    assert code == 200 and tag == {"name": "gold", "version": v["version"]}
    assert (await api("GET", f"datasets/{ds['id']}/tags"))[1] == {"tags": [tag]}
    for ref in ("flow", "flow:latest", "flow:gold", f"flow:{v['version']}", f"{ds['id']}:gold"):
        code, resolved = await api("GET", f"datasets/ref/{ref}")
        assert code == 200 and resolved["dataset"] == ds and resolved["version"]["version"] == v["version"], ref
        assert resolved["version"]["tags"] == ["gold"]

    for path, data in files.items():
        r = await jp_fetch("gradient", "api", "datasets", "flow", "versions", v["version"], "files", path)
        assert r.body == data and r.headers["X-Gradient-SHA256"] == hashlib.sha256(data).hexdigest()
        assert r.headers["Content-Type"] == "application/octet-stream"

    code, renamed = await api("PATCH", f"datasets/{ds['id']}", {"description": "the flow", "name": "flow2"})
    assert code == 200 and renamed["name"] == "flow2" and renamed["description"] == "the flow"
    code, msg = await api("PATCH", f"datasets/flow2/versions/{v['version']}", {"message": "renamed"})
    assert code == 200 and msg["message"] == "renamed"
    assert (await api("GET", "datasets"))[1] == {"datasets": [renamed]}
    assert (await api("DELETE", "datasets/flow2/tags/gold"))[0] == 204
    assert (await api("DELETE", f"datasets/flow2/versions/{v['version']}"))[0] == 204
    assert (await api("DELETE", "datasets/flow2"))[0] == 204
    assert (await api("GET", "datasets/flow2"))[0] == 404
    assert not [k for k in bucket_keys(s3_bucket) if ds["id"] in k]
    assert spool_files(engine_of) == []


async def test_committed_versions_refuse_every_change(api, engine_of):
    ds, v = await new_version(api)
    base = f"datasets/{ds['id']}/versions/{v['version']}"
    await api("PUT", f"{base}/files/a.txt", data=b"one")
    await api("POST", f"{base}/commit")
    for method, path, data in (
        ("PUT", f"{base}/files/a.txt", b"two"),
        ("PUT", f"{base}/files/new.txt", b"3"),
        ("DELETE", f"{base}/files/a.txt", None),
    ):
        code, err = await api(method, path, data=data)
        assert code == 409 and err["reason"] == "immutable" and "create a new version" in err["message"]
    assert (await api("GET", f"{base}/files"))[1] == {
        "files": [{"path": "a.txt", "size": 3, "sha256": hashlib.sha256(b"one").hexdigest()}]
    }
    assert spool_files(engine_of) == []


async def test_uncommitted_files_can_be_replaced_and_deleted(api):
    ds, v = await new_version(api)
    base = f"datasets/{ds['id']}/versions/{v['version']}"
    await api("PUT", f"{base}/files/a.txt", data=b"one")
    assert (await api("PUT", f"{base}/files/a.txt", data=b"two!"))[1]["size"] == 4
    await api("PUT", f"{base}/files/empty", data=b"")
    assert (await api("DELETE", f"{base}/files/a.txt"))[0] == 204
    assert (await api("GET", f"{base}/files"))[1]["files"] == [
        {"path": "empty", "size": 0, "sha256": hashlib.sha256(b"").hexdigest()}
    ]
    assert (await api("DELETE", f"{base}/files/a.txt"))[0] == 404


# -- bad input: clear 4xx, nothing changed -----------------------------------------------------------------------
async def test_bad_dataset_input(api):
    ds, v = await new_version(api)
    base = f"datasets/{ds['id']}/versions/{v['version']}"
    cases = [
        ("POST", "datasets", {"name": "bad name!"}, 400, "invalid-dataset-name"),
        ("POST", "datasets", {"description": "x"}, 400, "missing-field"),
        ("POST", "datasets", {"name": ["x"]}, 400, "wrong-type"),
        ("POST", "datasets", {"name": "ds1"}, 409, "duplicate-name"),
        ("POST", "datasets", {"name": "other", "storageProviderId": "spnope"}, 404, "not-found"),
        ("PATCH", f"datasets/{ds['id']}", {"name": 7}, 400, "wrong-type"),
        ("POST", f"datasets/{ds['id']}/versions", {"message": 1}, 400, "wrong-type"),
        ("PATCH", base, {}, 400, "missing-field"),
        ("POST", f"{base}/commit", {"force": True}, 400, "unknown-field"),
        ("PUT", f"datasets/{ds['id']}/tags/gold", {"version": v["version"]}, 409, "not-committed"),
        ("PUT", f"datasets/{ds['id']}/tags/latest", {"version": v["version"]}, 400, "reserved-tag"),
        ("PUT", f"datasets/{ds['id']}/tags/Bad Tag", {"version": v["version"]}, 400, "invalid-tag-name"),
        ("PUT", f"datasets/{ds['id']}/tags/gold", {}, 400, "missing-field"),
        ("GET", f"datasets/{ds['id']}/versions", None, 400, "invalid-query"),
        ("GET", "datasets/dsaaaaaaaaaaaaa", None, 404, "unknown-dataset"),
        ("GET", f"datasets/{ds['id']}/versions/zzzzzzz", None, 404, "unknown-version"),
        ("GET", f"datasets/{ds['id']}/versions/NOPE", None, 400, "invalid-version"),
        ("DELETE", f"datasets/{ds['id']}/tags/nope", None, 404, "unknown-tag"),
        ("GET", "datasets/ref/ds1:", None, 400, "invalid-ref"),
        ("GET", "datasets/ref/ds1", None, 404, "no-version"),
        ("GET", f"{base}/files/nope.txt", None, 404, "unknown-file"),
    ]
    before = await api("GET", "datasets")
    for method, path, body, status, reason in cases:
        params = {"isCommitted": "maybe"} if path.endswith("/versions") and method == "GET" else None
        code, err = await api(method, path, body, params=params)
        assert (code, err["reason"]) == (status, reason), (method, path, err)
    assert await api("GET", "datasets") == before
    assert (await api("GET", base))[1] == v | {"dtCreated": (await api("GET", base))[1]["dtCreated"]}


@pytest.mark.parametrize(
    "raw",
    ["../../x", "a/../../x", "%2e%2e/%2e%2e/x", "a%2F..%2F..%2Fx", "a%5Cb", "a%00b", "%2Fetc%2Fpasswd", "./a", "a//b"],
)
async def test_hostile_file_paths_are_refused_and_change_nothing(
    api, http_server_client, jp_base_url, jp_auth_header, engine_of, raw
):
    ds, v = await new_version(api)
    base = f"{jp_base_url}gradient/api/datasets/{ds['id']}/versions/{v['version']}/files/"
    for method, body in (("PUT", b"evil"), ("GET", None), ("DELETE", None)):
        with pytest.raises(HTTPClientError) as err:
            await http_server_client.fetch(base + raw, method=method, body=body, headers=jp_auth_header)
        assert err.value.code == 400, (method, raw)
        assert json.loads(err.value.response.body)["reason"] == "invalid-path"
    assert (await api("GET", f"datasets/{ds['id']}/versions/{v['version']}/files"))[1] == {"files": []}
    managed = engine_of.home / "managed"
    assert not [p for p in managed.rglob("*") if p.is_file() and "/data/" in p.as_posix()]
    assert spool_files(engine_of) == []


# -- errors from the store -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("jp_server_config", [{"GradientStorage": {"managed_quota": 1000}}], indirect=True)
async def test_the_managed_quota_is_a_413_before_any_byte_is_stored(api, engine_of):
    ds, v = await new_version(api)
    base = f"datasets/{ds['id']}/versions/{v['version']}/files"
    code, err = await api("PUT", f"{base}/big.bin", data=os.urandom(2000))
    assert code == 413 and err["reason"] == "quota-exceeded" and "2000 bytes" in err["message"]
    assert (await api("GET", base))[1] == {"files": []} and spool_files(engine_of) == []
    assert (await api("PUT", f"{base}/small.bin", data=b"ok"))[0] == 200


async def test_a_store_error_is_a_502(api, moto_server):
    _, p = await api(
        "POST",
        "storage-providers",
        {"name": "gone", "config": {**S3, "bucket": "no-such-bucket-here", "endpoint": moto_server}},
    )
    code, err = await api("POST", "datasets", {"name": "x", "storageProviderId": p["id"]})
    assert code == 502 and err["reason"] == "no-such-bucket" and "no-such-bucket-here" in err["message"]
    assert SECRET not in err["message"]


async def test_a_provider_in_use_is_kept_unless_forced(api, moto_provider):
    await new_version(api, "uses-it", provider=moto_provider["id"])
    code, err = await api("DELETE", f"storage-providers/{moto_provider['id']}")
    assert code == 409 and err["reason"] == "provider-in-use"
    assert (await api("DELETE", f"storage-providers/{moto_provider['id']}", params={"force": "true"}))[0] == 204


async def test_a_dataset_name_is_unique_across_the_teams_providers(api, moto_provider):
    """One name, one dataset: creating or renaming a dataset in one provider is refused while another provider
    holds that name, so a ref like `mnist:v1` can never mean two datasets."""
    await new_version(api, "mnist", provider=moto_provider["id"])
    code, err = await api("POST", "datasets", {"name": "MNIST"})  # the team default: Gradient Managed
    assert code == 409 and err["reason"] == "duplicate-name" and "'moto'" in err["message"], err
    code, other = await api("POST", "datasets", {"name": "other"})
    assert code == 201, other
    code, err = await api("PATCH", f"datasets/{other['id']}", {"name": "mnist"})
    assert code == 409 and err["reason"] == "duplicate-name", err
    code, listing = await api("GET", "datasets")
    assert sorted(d["name"] for d in listing["datasets"]) == ["mnist", "other"]
    code, found = await api("GET", "datasets/mnist")
    assert code == 200 and found["storageProviderId"] == moto_provider["id"]


async def test_creating_a_dataset_in_a_provider_that_cannot_be_reached_is_a_502_naming_it(api, engine_of):
    dead = engine_of.registry.create(
        "dead", {**S3, "bucket": "gone", "endpoint": f"http://127.0.0.1:{free_port()}"}
    ).to_json()
    code, err = await api("POST", "datasets", {"name": "fresh", "storageProviderId": dead["id"]})
    assert code == 502 and err["reason"] == "unreachable", err
    assert err["message"].startswith("Storage provider 'dead' could not be reached to make or rename dataset 'fresh'")
    assert SECRET not in json.dumps(err)
    assert (await api("POST", "datasets", {"name": "fresh"}))[0] == 201  # the team default: the dead one is passed over


async def test_a_description_or_message_too_long_to_read_back_is_refused_not_lost(api):
    """What the API accepts it can list again: text longer than a record read back from the bucket may hold (10,000
    characters) is a 400 up front, not a dataset or version that later vanishes from listings as a damaged record."""
    code, err = await api("POST", "datasets", {"name": "long", "description": "d" * 10_001})
    assert code == 400 and err["reason"] == "text-too-long" and "10001 characters" in err["message"], err
    assert (await api("GET", "datasets/long"))[0] == 404
    code, ds = await api("POST", "datasets", {"name": "long", "description": "d" * 10_000})
    assert code == 201, ds
    assert (await api("PATCH", f"datasets/{ds['id']}", {"description": "d" * 10_001}))[1]["reason"] == "text-too-long"
    code, err = await api("POST", f"datasets/{ds['id']}/versions", {"message": "m" * 10_001})
    assert code == 400 and err["reason"] == "text-too-long", err
    code, v = await api("POST", f"datasets/{ds['id']}/versions", {"message": "m" * 10_000})
    assert code == 201, v
    code, err = await api("PATCH", f"datasets/{ds['id']}/versions/{v['version']}", {"message": "m" * 10_001})
    assert code == 400 and err["reason"] == "text-too-long", err
    code, listing = await api("GET", f"datasets/{ds['id']}/versions", params={"isCommitted": "all"})
    assert [x["version"] for x in listing["versions"]] == [v["version"]]
    code, listing = await api("GET", "datasets")
    assert [d["description"] for d in listing["datasets"]] == ["d" * 10_000]


# -- verified downloads --------------------------------------------------------------------------------------------
async def committed_file(api, data, provider):
    ds, v = await new_version(api, "verify", provider=provider)
    await api("PUT", f"datasets/{ds['id']}/versions/{v['version']}/files/f.bin", data=data)
    await api("POST", f"datasets/{ds['id']}/versions/{v['version']}/commit")
    return ds, v


def tamper(s3_bucket, ds, v, data):
    endpoint, bucket = s3_bucket
    keys = [k for k in bucket_keys(s3_bucket) if k.endswith(f"{ds['id']}/versions/{v['version']}/data/f.bin")]
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").put_object(Bucket=bucket, Key=keys[0], Body=data)


async def test_a_corrupted_large_file_never_arrives_complete(
    api, http_server_client, jp_base_url, jp_auth_header, moto_provider, s3_bucket
):
    data = os.urandom(3 * MiB)
    ds, v = await committed_file(api, data, moto_provider["id"])
    tamper(s3_bucket, ds, v, data[:-1] + bytes([data[-1] ^ 1]))  # same size, last byte flipped
    received = []
    url = f"{jp_base_url}gradient/api/datasets/{ds['id']}/versions/{v['version']}/files/f.bin"
    with pytest.raises(Exception) as err:
        await http_server_client.fetch(url, headers=jp_auth_header, streaming_callback=received.append)
    got = b"".join(received)
    assert 0 < len(got) < len(data), "the stream must start and then be cut short"
    assert (
        "Stream closed" in str(err.value)
        or "Connection closed" in str(err.value)
        or getattr(err.value, "code", None) == 599
    )
    # Untouched files still download.
    tamper(s3_bucket, ds, v, data)
    r = await http_server_client.fetch(url, headers=jp_auth_header)
    assert r.body == data


async def test_a_corrupted_small_file_is_a_clean_502(api, moto_provider, s3_bucket):
    ds, v = await committed_file(api, b"hello world", moto_provider["id"])
    tamper(s3_bucket, ds, v, b"HELLO WORLD")
    code, err = await api("GET", f"datasets/{ds['id']}/versions/{v['version']}/files/f.bin")
    assert code == 502 and err["reason"] == "integrity" and "f.bin" in err["message"]


# -- streamed uploads ------------------------------------------------------------------------------------------------
@pytest.fixture
def http_server(jp_asyncio_loop, http_server_port, jp_web_app):
    """pytest-jupyter's server, with tornado's body and buffer limits cut to 1 MiB: only streaming gets past them."""

    async def get_server():
        server = tornado.httpserver.HTTPServer(jp_web_app, max_body_size=MiB, max_buffer_size=MiB)
        server.add_socket(http_server_port[0])
        return server

    server = jp_asyncio_loop.run_until_complete(get_server())
    yield server
    server.stop()
    http_server_port[0].close()


async def test_uploads_stream_past_the_servers_body_limit(api, jp_fetch, engine_of):
    ds, v = await new_version(api)
    big = os.urandom(24 * MiB)
    code, entry = await api("PUT", f"datasets/{ds['id']}/versions/{v['version']}/files/big.bin", data=big)
    assert code == 200 and entry["sha256"] == hashlib.sha256(big).hexdigest() and entry["size"] == len(big)
    # The same limit still holds where bodies are buffered: a 2 MiB JSON body is refused by tornado.
    r = await jp_fetch(
        "gradient",
        "api",
        "datasets",
        ds["id"],
        method="PATCH",
        raise_error=False,
        body=json.dumps({"description": "x" * 2 * MiB}),
    )
    assert r.code != 200 and (await api("GET", f"datasets/{ds['id']}"))[1]["description"] == ""
    assert spool_files(engine_of) == []


async def test_an_interrupted_upload_leaves_nothing_behind(
    api, jp_base_url, jp_auth_header, http_server_port, engine_of
):
    ds, v = await new_version(api)
    port = http_server_port[1]
    path = f"{jp_base_url}gradient/api/datasets/{ds['id']}/versions/{v['version']}/files/cut.bin"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: {jp_auth_header['Authorization']}"
        f"\r\nContent-Length: {10 * MiB}\r\n\r\n".encode()
    )
    writer.write(os.urandom(3 * MiB))
    await writer.drain()
    for _ in range(200):  # the spool file appears while the body arrives...
        if spool_files(engine_of):
            break
        await asyncio.sleep(0.01)
    assert spool_files(engine_of)
    writer.transport.abort()
    for _ in range(500):  # ...and goes when the client hangs up
        if not spool_files(engine_of):
            break
        await asyncio.sleep(0.01)
    assert spool_files(engine_of) == []
    assert (await api("GET", f"datasets/{ds['id']}/versions/{v['version']}/files"))[1] == {"files": []}


async def test_an_upload_without_token_is_refused_before_its_body(jp_base_url, http_server_port, api, engine_of):
    ds, v = await new_version(api)
    port = http_server_port[1]
    path = f"{jp_base_url}gradient/api/datasets/{ds['id']}/versions/{v['version']}/files/x.bin"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    # Expect: 100-continue means the body is only sent if the server wants it; a refusal comes first.
    writer.write(
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {10 * MiB}\r\n"
        "Expect: 100-continue\r\n\r\n".encode()
    )
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 20)
    writer.close()
    assert status.startswith(b"HTTP/1.1 403"), status
    assert spool_files(engine_of) == []
