"""The REST and compat APIs are one service (server/service.py): the same request is the same engine call with the
same rules and words; only the routes and the JSON envelopes differ."""

from __future__ import annotations

import pytest

from .helpers import SECRET

S3 = {"accessKey": "testing", "secretAccessKey": SECRET}


@pytest.mark.parametrize("through", ["rest", "compat"])
async def test_force_deletes_a_provider_in_use_through_both_apis(through, api, compat, engine_of, s3_bucket):
    endpoint, bucket = s3_bucket
    provider = engine_of.registry.create("busy", {**S3, "bucket": bucket, "endpoint": endpoint})
    engine_of.datasets.create("in-it", provider=provider.id)
    if through == "rest":
        refused = await api("DELETE", f"storage-providers/{provider.id}")
        forced = await api("DELETE", f"storage-providers/{provider.id}", params={"force": "1"})
    else:
        refused = await compat("DELETE", f"storageProviders/{provider.id}")
        forced = await compat("DELETE", f"storageProviders/{provider.id}", params={"force": "1"})
    assert refused[0] == 409 and forced[0] == 204


async def test_a_refusal_has_the_same_words_in_both_envelopes(api, compat):
    body = {"type": "gcs"}
    rest_code, rest = await api("PATCH", "storage-providers/gradient-managed", body)
    compat_code, wrapped = await compat("POST", "storageProviders/gradient-managed", body)
    assert rest_code == compat_code == 400
    error = wrapped["error"]
    assert (error["message"], error["reason"], error["statusCode"]) == (rest["message"], rest["reason"], 400)
    assert "'gcs'" in rest["message"]


async def begin_uploads(compat, engine_of, s3_provider, name: str, *, put: bool = True) -> list[tuple[str, str]]:
    """(dataset id, version) of two uncommitted versions, one in Gradient Managed (parts wait in the data home) and
    one in an S3 bucket (parts wait in its multipart area), each with a file put through the REST API's store
    (unless not `put`) and a multipart upload begun through the compat API and never completed."""
    made = []
    for provider in (None, s3_provider):
        code, ds = await compat(
            "POST", "datasets", {"name": f"{name}-{'s3' if provider else 'managed'}", **(provider or {})}
        )
        assert code == 200, ds
        code, v = await compat("POST", f"datasets/{ds['id']}/versions", {})
        if put:
            engine_of.datasets.put_file(ds["id"], v["version"], "done.txt", b"complete")
        code, answers = await compat(
            "POST",
            f"datasets/{ds['id']}/versions/{v['version']}/s3/preSignedUrls",
            {"calls": [{"method": "createMultipartUpload", "params": {"Key": "/big.bin"}}]},
        )
        assert code == 200, answers
        made.append((ds["id"], v["version"]))
    return made


def open_compat_uploads(engine_of, bucket_client, bucket: str) -> tuple[list, list]:
    """(embedded uploads waiting in the data home, multipart uploads open in the S3 bucket)."""
    folder = engine_of.home / "tmp" / "compat-uploads"
    embedded = [f.name for f in folder.iterdir()] if folder.is_dir() else []
    return embedded, bucket_client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


@pytest.mark.parametrize("through", ["rest", "compat"])
async def test_a_commit_or_delete_through_either_api_ends_the_compat_uploads_left_open(
    through, api, compat, engine_of, s3_bucket
):
    """Uploads begun through the compat API and never completed would keep their parts (in the data home, or in the
    bucket's multipart area) forever: a commit, or a delete of the version or dataset, through either API, ends
    them."""
    import boto3

    endpoint, bucket = s3_bucket
    provider = engine_of.registry.create("parts", {**S3, "bucket": bucket, "endpoint": endpoint})
    s3_provider = {"storageProviderId": provider.id}
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    embedded, in_bucket = open_compat_uploads(engine_of, client, bucket)
    assert embedded == [] and in_bucket == []

    committed = await begin_uploads(compat, engine_of, s3_provider, "committed")
    assert [len(found) for found in open_compat_uploads(engine_of, client, bucket)] == [1, 1]
    for ds, version in committed:
        if through == "rest":
            code, answer = await api("POST", f"datasets/{ds}/versions/{version}/commit", {})
        else:
            code, answer = await compat("POST", f"datasets/{ds}/versions/{version}", {"isCommitted": True})
        assert code == 200 and answer["isCommitted"] is True, answer
    assert open_compat_uploads(engine_of, client, bucket) == ([], [])
    for ds, version in committed:  # what was complete is committed; the unfinished file is not part of it
        assert [f.path for f in engine_of.datasets.list_files(ds, version)] == ["done.txt"]

    versions = await begin_uploads(compat, engine_of, s3_provider, "version-deleted")
    datasets = await begin_uploads(compat, engine_of, s3_provider, "dataset-deleted")
    assert [len(found) for found in open_compat_uploads(engine_of, client, bucket)] == [2, 2]
    for ds, version in versions:
        code, _ = await (
            api("DELETE", f"datasets/{ds}/versions/{version}")
            if through == "rest"
            else compat("DELETE", f"datasets/{ds}/versions/{version}")
        )
        assert code == 204
    assert [len(found) for found in open_compat_uploads(engine_of, client, bucket)] == [1, 1]
    for ds, _ in datasets:
        code, _ = await (api("DELETE", f"datasets/{ds}") if through == "rest" else compat("DELETE", f"datasets/{ds}"))
        assert code == 204
    assert open_compat_uploads(engine_of, client, bucket) == ([], [])


@pytest.mark.parametrize("through", ["console", "engine"])
async def test_a_commit_or_delete_through_any_other_door_ends_the_compat_uploads_left_open(
    through, compat, engine_of, seaweed_bucket
):
    """The console script and the magic, and the panel and Python callers of the engine, commit and delete with
    the engine's own commit and delete: they end the compat API's unfinished multipart uploads as the REST API's
    do (SeaweedFS over HTTP for the S3 provider)."""
    from .helpers import cli
    from .helpers.compat import in_thread

    server, bucket = seaweed_bucket
    provider = engine_of.registry.create(
        "parts",
        {
            "bucket": bucket,
            "endpoint": server.endpoint,
            "accessKey": server.access_key,
            "secretAccessKey": server.secret_key,
        },
    )
    client = server.client()
    s3_provider = {"storageProviderId": provider.id}

    async def delete(*words):
        if through == "engine":
            ds, *version = words
            await in_thread(
                lambda: engine_of.datasets.delete_version(ds, *version) if version else engine_of.datasets.delete(ds)
            )
            return
        ref = ":".join(words)
        done = await in_thread(cli, "datasets", *(["versions"] if ":" in ref else []), "delete", "--id", ref)
        assert done.returncode == 0, done.stderr

    committed = await begin_uploads(compat, engine_of, s3_provider, "committed")
    assert [len(found) for found in open_compat_uploads(engine_of, client, bucket)] == [1, 1]
    for ds, version in committed:
        if through == "engine":
            await in_thread(engine_of.datasets.commit, ds, version)
        else:
            done = await in_thread(cli, "datasets", "versions", "commit", "--id", f"{ds}:{version}")
            assert done.returncode == 0, done.stderr
        assert [f.path for f in engine_of.datasets.list_files(ds, version)] == ["done.txt"]
    assert open_compat_uploads(engine_of, client, bucket) == ([], [])

    versions = await begin_uploads(compat, engine_of, s3_provider, "version-deleted")
    datasets = await begin_uploads(compat, engine_of, s3_provider, "dataset-deleted", put=False)
    assert [len(found) for found in open_compat_uploads(engine_of, client, bucket)] == [2, 2]
    for ds, version in versions:
        await delete(ds, version)
    embedded, in_bucket = open_compat_uploads(engine_of, client, bucket)
    assert [u["Key"].split("/")[2] for u in in_bucket] == [datasets[1][0]] and len(embedded) == 1
    for ds, _ in datasets:
        await delete(ds)
    assert open_compat_uploads(engine_of, client, bucket) == ([], [])
