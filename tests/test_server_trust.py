"""Committed means unchangeable through every door, and the bucket is not trusted (docs/threat-model.md): the REST
and compat APIs of a real Jupyter server, over a real S3 protocol (moto over HTTP) and the embedded store."""

from __future__ import annotations

import asyncio
import json
import os
import threading

import boto3
import pytest
import requests
from jupyter_server.auth.identity import IdentityProvider
from tornado.httpclient import AsyncHTTPClient

from .helpers import SECRET
from .helpers.compat import in_thread, presign, upload_id
from .helpers.faultproxy import FaultProxy

S3 = {"accessKey": "testing", "secretAccessKey": SECRET}
EXTENSION = {"jpserver_extensions": {"gradient_jupyter": True}}


class TokenOnlyIdentityProvider(IdentityProvider):
    """Like JupyterHub's identity provider: the user comes from the request's own credentials, never from attributes
    a handler set on itself."""

    async def get_user(self, handler):
        return await self.get_user_token(handler)

    def is_token_authenticated(self, handler) -> bool:
        return bool(self.token) and self.get_token(handler) == self.token


@pytest.fixture
def jp_server_config(request):
    return {"ServerApp": dict(EXTENSION), **getattr(request, "param", {})}


async def fetch(url, method="GET", body=None):
    """A signed URL fetched as the CLI would: no Jupyter credentials at all."""
    r = await AsyncHTTPClient().fetch(url, method=method, body=body, raise_error=False, allow_nonstandard_methods=True)
    return r.code, r.body


# -- 1. one bad record never answers 500 for everyone ------------------------------------------------------------
async def test_a_malformed_dataset_record_is_skipped_not_a_500(api, engine_of):
    assert (await api("POST", "datasets", {"name": "fine"}))[0] == 201
    bad = engine_of.home / "managed" / engine_of.team_id / "datasets" / "dsaaaaaaaaaaaaa" / "dataset.json"
    bad.parent.mkdir(parents=True)
    bad.write_text(json.dumps({"name": "x"}))
    code, body = await api("GET", "datasets")
    assert code == 200 and [d["name"] for d in body["datasets"]] == ["fine"]
    code, body = await api("GET", "datasets/dsaaaaaaaaaaaaa")
    assert code == 502 and body["reason"] == "bad-record" and "dataset.json" in body["message"]


# -- 4. an upload in flight when its version commits never lands in it --------------------------------------------
async def test_an_upload_in_flight_at_commit_never_reaches_the_committed_file(api, engine_of, s3_bucket):
    endpoint, bucket = s3_bucket
    proxy = FaultProxy(endpoint).start()
    reached, release = threading.Event(), threading.Event()
    try:
        p = engine_of.registry.create("held", {**S3, "bucket": bucket, "endpoint": proxy.url})
        code, ds = await api("POST", "datasets", {"name": "raced", "storageProviderId": p.id})
        code, v = await api("POST", f"datasets/{ds['id']}/versions", {})
        base = f"datasets/{ds['id']}/versions/{v['version']}"
        assert (await api("PUT", f"{base}/files/a.bin", data=b"old" * 1000))[0] == 200

        def hold_the_upload(method, path):  # the second PUT's bytes reach the store only after the commit
            if method == "PUT" and ("/data/a.bin" in path or "/uploads/" in path) and not reached.is_set():
                reached.set()
                release.wait(120)
            return None

        proxy.rule = hold_the_upload
        put = asyncio.ensure_future(api("PUT", f"{base}/files/a.bin", data=b"new" * 1000))
        assert await in_thread(reached.wait, 120)
        code, committed = await api("POST", f"{base}/commit", {})
        assert code == 200 and committed["fileCount"] == 1
        release.set()
        code, body = await put
        assert code == 409 and "committed while" in body["message"]
        code, data = await api("GET", f"{base}/files/a.bin")
        assert code == 200 and data == b"old" * 1000
    finally:
        release.set()
        proxy.stop()


# -- 2. a write URL used again after the commit changes nothing committed ----------------------------------------
async def test_a_presigned_put_replayed_after_commit_changes_nothing(compat, engine_of, s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    p = engine_of.registry.create("s3", {**S3, "bucket": bucket, "endpoint": endpoint})
    code, ds = await compat("POST", "datasets", {"name": "replayed", "storageProviderId": p.id})
    code, v = await compat("POST", f"datasets/{ds['id']}/versions", {})
    (put_url,) = await presign(compat, ds["id"], v["version"], {"method": "putObject", "params": {"Key": "/a.csv"}})
    assert (await in_thread(lambda: requests.put(put_url, data=b"good"))).status_code == 200
    await presign(compat, ds["id"], v["version"], {"method": "createMultipartUpload", "params": {"Key": "/big"}})
    code, committed = await compat("POST", f"datasets/{ds['id']}/versions/{v['version']}", {"isCommitted": True})
    assert code == 200 and committed["isCommitted"] is True and committed["fileCount"] == 1
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []  # the unfinished one was aborted
    await in_thread(lambda: requests.put(put_url, data=b"evil"))  # the URL still works for an hour: replay it

    (get_url,) = await presign(compat, ds["id"], v["version"], {"method": "getObject", "params": {"Key": "/a.csv"}})
    assert await fetch(get_url) == (200, b"good")
    from gradient_jupyter.engine.transfer import load

    await in_thread(lambda: load(engine_of, f"replayed:{v['version']}", tmp_path / "out"))
    assert (tmp_path / "out" / "a.csv").read_bytes() == b"good"


async def test_compat_downloads_are_verified_where_anyone_could_write(compat, engine_of, s3_bucket):
    endpoint, bucket = s3_bucket
    p = engine_of.registry.create("s3", {**S3, "bucket": bucket, "endpoint": endpoint})
    code, ds = await compat("POST", "datasets", {"name": "watched", "storageProviderId": p.id})
    code, v = await compat("POST", f"datasets/{ds['id']}/versions", {})
    (put_url,) = await presign(compat, ds["id"], v["version"], {"method": "putObject", "params": {"Key": "/a.csv"}})
    await in_thread(lambda: requests.put(put_url, data=b"1,2\n"))
    await compat("POST", f"datasets/{ds['id']}/versions/{v['version']}", {"isCommitted": True})
    key = engine_of.datasets.data_key(ds["id"], v["version"], "a.csv")
    engine_of.store(p.id).put_bytes(key, b"1,3\n")  # a teammate with write access to the bucket
    (get_url,) = await presign(compat, ds["id"], v["version"], {"method": "getObject", "params": {"Key": "a.csv"}})
    code, body = await fetch(get_url)
    assert code != 200 and b"1,3" not in body


# -- 8. signed URLs are their own authorization, behind any identity provider --------------------------------------
@pytest.mark.parametrize(
    "jp_server_config",
    [{"ServerApp": {**EXTENSION, "identity_provider_class": TokenOnlyIdentityProvider}}],
    indirect=True,
)
async def test_signed_urls_work_behind_an_identity_provider_that_ignores_handler_attributes(compat, jp_serverapp):
    assert isinstance(jp_serverapp.identity_provider, TokenOnlyIdentityProvider)
    code, ds = await compat("POST", "datasets", {"name": "hub"})
    assert code == 200, ds
    code, v = await compat("POST", f"datasets/{ds['id']}/versions", {})
    (put_url,) = await presign(compat, ds["id"], v["version"], {"method": "putObject", "params": {"Key": "a.txt"}})
    assert (await fetch(put_url, "PUT", b"hello"))[0] == 200
    await compat("POST", f"datasets/{ds['id']}/versions/{v['version']}", {"isCommitted": True})
    (get_url,) = await presign(compat, ds["id"], v["version"], {"method": "getObject", "params": {"Key": "a.txt"}})
    assert await fetch(get_url) == (200, b"hello")
    forged = get_url.replace("auth=", "auth=0")
    code, body = await fetch(forged)
    assert code == 403 and b"AccessDenied" in body
    code, _ = await compat("GET", "datasets")  # everything else still needs Jupyter's authentication
    assert code == 200
    assert (await fetch(get_url.split("/s3?")[0].replace("/compat", "/api") + "/datasets"))[0] == 403


# -- 9. the embedded multipart area is capped, counted against the quota, and cleaned --------------------------------
@pytest.mark.parametrize(
    "jp_server_config", [{"ServerApp": dict(EXTENSION), "GradientStorage": {"managed_quota": 300_000}}], indirect=True
)
async def test_embedded_multipart_uploads_are_capped_counted_and_cleaned(compat, engine_of):
    code, ds = await compat("POST", "datasets", {"name": "parts"})
    code, v = await compat("POST", f"datasets/{ds['id']}/versions", {})
    path = f"datasets/{ds['id']}/versions/{v['version']}/s3/preSignedUrls"
    uploads = engine_of.home / "tmp" / "compat-uploads"

    code, body = await compat(
        "POST", path, {"calls": [{"method": "createMultipartUpload", "params": {"Key": f"f{i}"}} for i in range(1000)]}
    )
    assert code == 400 and "At most 20" in body["error"]["message"]
    assert not uploads.exists() or list(uploads.iterdir()) == []  # refused before any was started

    ids = []
    for i in range(20):
        ids.append(
            (
                await presign(
                    compat, ds["id"], v["version"], {"method": "createMultipartUpload", "params": {"Key": f"f{i}"}}
                )
            )[0]
        )
    code, body = await compat("POST", path, {"calls": [{"method": "createMultipartUpload", "params": {"Key": "x"}}]})
    assert code == 409 and body["error"]["reason"] == "too-many-uploads"

    # parts wait in the data home, and count against Gradient Managed's quota like stored bytes
    code, urls = await compat(
        "POST",
        path,
        {
            "calls": [
                {"method": "uploadPart", "params": {"Key": "f0", "UploadId": upload_id(ids[0]), "PartNumber": n}}
                for n in (1, 2)
            ]
        },
    )
    assert (await fetch(urls[0]["url"], "PUT", os.urandom(200_000)))[0] == 200
    code, body = await fetch(urls[1]["url"], "PUT", os.urandom(200_000))
    assert code == 413 and b"quota" in body

    # abandoned uploads go: those untouched for an hour at the next start, all of a version when it is deleted
    old = next(f for f in uploads.iterdir() if f.name == upload_id(ids[1]))
    for f in [old, *old.iterdir()]:
        os.utime(f, (0, 0))
    await presign(compat, ds["id"], v["version"], {"method": "createMultipartUpload", "params": {"Key": "late"}})
    assert not old.exists() and len(list(uploads.iterdir())) == 20
    assert (await compat("DELETE", f"datasets/{ds['id']}/versions/{v['version']}"))[0] == 204
    assert list(uploads.iterdir()) == []


# -- a forged version holding git's files is refused by the REST API too ------------------------------------------
async def test_a_forged_version_holding_git_files_is_refused_by_rest_downloads(api, engine_of, tmp_path):
    from gradient_jupyter.engine.transfer import save

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "config").write_bytes(b"[core]\n\tfsmonitor = touch owned\n")
    (tmp_path / "src" / "a.txt").write_bytes(b"a")
    real = await in_thread(lambda: save(engine_of, "forged", tmp_path / "src"))
    store = engine_of.store(engine_of.registry.managed())
    manifest = json.loads(store.get_bytes(engine_of.datasets.manifest_key(real.dataset.id, real.version.version)))
    draft = await in_thread(lambda: engine_of.datasets.create_version(real.dataset))
    manifest["version"] = draft.version
    next(f for f in manifest["files"] if f["path"] == "config")["path"] = ".git/config"
    store.put_bytes(engine_of.datasets.manifest_key(real.dataset.id, draft.version), json.dumps(manifest).encode())
    files = f"datasets/{real.dataset.id}/versions/{draft.version}/files"
    code, body = await api("GET", f"{files}/a.txt")
    assert code == 502 and body["reason"] == "bad-record" and "'.git/config'" in body["message"]
    code, body = await api("GET", f"{files}/.git/config")
    assert code in (400, 502) and ".git" in body["message"]
