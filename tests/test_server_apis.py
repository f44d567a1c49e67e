"""The REST and compat APIs are one service (server/service.py): the same request is the same engine call with the
same rules and words; only the routes and the JSON envelopes differ."""

from __future__ import annotations

import json

import pytest

from .conftest import SECRET
from .server_api import Api

S3 = {"accessKey": "testing", "secretAccessKey": SECRET}


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"gradient_jupyter": True}}}


@pytest.fixture
def api(jp_fetch):
    return Api(jp_fetch)


@pytest.fixture
def compat(jp_fetch):
    async def call(method, path, body=None, params=None):
        r = await jp_fetch(
            "gradient",
            "compat",
            path,
            method=method,
            raise_error=False,
            params=params or {},
            body=None if method in ("GET", "DELETE") else json.dumps(body or {}),
        )
        return r.code, json.loads(r.body) if r.body else None

    return call


@pytest.fixture
def engine_of(jp_serverapp):
    return jp_serverapp.web_app.settings["gradient_engine"]


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
