"""The REST API's doors: authentication on every route, one error mapping, threads, and the OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import re
import threading

import boto3
import pytest
import tornado.web
from jupyter_server.auth import Authorizer
from openapi_spec_validator import validate as validate_openapi

from gradient_jupyter.server.handlers import AUTH_RESOURCE, default_handlers

from .helpers import SECRET, free_port
from .helpers.server_api import DOC, METHODS, route_template

S3 = {"bucket": "my-bucket", "accessKey": "access-key", "secretAccessKey": SECRET}
EXTENSION = {"ServerApp": {"jpserver_extensions": {"gradient_jupyter": True}}}


class DenyGradient(Authorizer):
    """Allows everything except this extension's resource, to show every route asks the authorizer."""

    def is_authorized(self, handler, user, action, resource):
        return resource != AUTH_RESOURCE


@pytest.fixture
def jp_server_config(request):
    extra = getattr(request, "param", {})
    return {"ServerApp": {**EXTENSION["ServerApp"], **extra}}


def handler_methods(cls) -> list[str]:
    return [m for m in METHODS if getattr(cls, m) is not getattr(tornado.web.RequestHandler, m)]


def every_route():
    """(method, concrete URL path under the base URL) for every method of every route in default_handlers."""
    for pattern, cls in default_handlers:
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: "x1" if m.group(1) != "rest" else "x/y", pattern)
        for method in handler_methods(cls):
            yield method.upper(), path.lstrip("/")


async def walk(jp_fetch, headers):
    answers = {}
    for method, path in every_route():
        body = b"{}" if method in ("POST", "PUT", "PATCH") else None
        r = await jp_fetch(
            path, method=method, body=body, headers=headers, raise_error=False, allow_nonstandard_methods=True
        )
        answers[(method, path)] = r
    assert len(answers) >= 30
    return answers


# -- authentication and authorization ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "jp_server_config",
    [{"allow_unauthenticated_access": False}, {}],
    indirect=True,
    ids=["server-requires-auth", "server-default"],
)
async def test_every_route_refuses_a_request_without_token(jp_fetch, jp_serverapp):
    # An empty Authorization header replaces jp_fetch's token; on the default server only our decorators stop it.
    answers = await walk(jp_fetch, {"Authorization": ""})
    unprotected = {k: r.code for k, r in answers.items() if r.code != 403}
    assert not unprotected, f"routes answering without a token: {unprotected}"
    for r in answers.values():
        assert r.headers["Content-Type"].startswith("application/json") and "message" in json.loads(r.body)


@pytest.mark.parametrize("jp_server_config", [{"authorizer_class": DenyGradient}], indirect=True)
async def test_every_route_asks_the_authorizer_for_the_gradient_resource(jp_fetch):
    answers = await walk(jp_fetch, {})
    allowed = {k: r.code for k, r in answers.items() if r.code != 403}
    assert not allowed, f"routes that skip @authorized: {allowed}"
    assert (await jp_fetch("api", "status")).code == 200  # the same token works where the authorizer allows


async def test_a_token_gets_in(api):
    code, body = await api("GET", "storage-providers")
    assert code == 200 and [p["name"] for p in body["storageProviders"]] == ["Gradient Managed"]


async def test_browser_post_with_cookie_but_no_xsrf_is_refused(jp_fetch, jp_serverapp):
    login = await jp_fetch("gradient", "api", "storage-providers")  # token auth answers with a login cookie
    cookie = "; ".join(c.split(";")[0] for c in login.headers.get_list("Set-Cookie"))
    assert "username-" in cookie
    body = json.dumps({"name": "p", "config": S3})
    no_xsrf = await jp_fetch(
        "gradient",
        "api",
        "storage-providers",
        method="POST",
        body=body,
        headers={"Authorization": "", "Cookie": cookie},
        raise_error=False,
    )
    assert no_xsrf.code == 403
    assert [p.name for p in jp_serverapp.web_app.settings["gradient_engine"].registry.list()] == ["Gradient Managed"]
    xsrf = "0123456789abcdef"
    with_xsrf = await jp_fetch(
        "gradient",
        "api",
        "storage-providers",
        method="POST",
        body=body,
        raise_error=False,
        headers={"Authorization": "", "Cookie": f"{cookie}; _xsrf={xsrf}", "X-XSRFToken": xsrf},
    )
    assert with_xsrf.code == 201, with_xsrf.body  # the same cookie with the XSRF token is a legitimate browser call


# -- providers ----------------------------------------------------------------------------------------------------
async def test_provider_create_details_update_delete(api, caplog):
    code, p = await api("POST", "storage-providers", {"name": "test", "type": "s3", "config": S3})
    assert code == 201 and p["config"]["secretAccessKey"] == "********" and p["config"]["bucket"] == "my-bucket"
    code, same = await api("GET", f"storage-providers/{p['id']}")
    assert code == 200 and same == p
    assert (await api("GET", "storage-providers/TEST"))[1]["id"] == p["id"]  # names work where ids do
    code, upd = await api(
        "PATCH",
        f"storage-providers/{p['id']}",
        {"config": {"region": "eu-west-1", "endpoint": "http://127.0.0.1:9000"}, "isTeamDefault": True},
    )
    assert code == 200 and upd["config"]["region"] == "eu-west-1" and upd["isTeamDefault"]
    code, listing = await api("GET", "storage-providers")
    assert [x["isTeamDefault"] for x in listing["storageProviders"]] == [False, True]
    code, err = await api("DELETE", f"storage-providers/{p['id']}")
    assert code == 409 and err["reason"] == "default-provider"
    managed = listing["storageProviders"][0]["id"]
    assert (await api("PATCH", f"storage-providers/{managed}", {"isTeamDefault": True}))[0] == 200
    assert (await api("DELETE", f"storage-providers/{p['id']}", params={"force": "true"}))[0] == 204
    assert (await api("GET", f"storage-providers/{p['id']}"))[0] == 404
    assert SECRET not in caplog.text


async def test_the_secret_never_comes_back(api, jp_fetch, caplog):
    _, p = await api("POST", "storage-providers", {"name": "s", "config": S3})
    answers = [
        await jp_fetch("gradient", "api", "storage-providers"),
        await jp_fetch("gradient", "api", "storage-providers", p["id"]),
        await jp_fetch(
            "gradient",
            "api",
            "storage-providers",
            p["id"],
            method="PATCH",
            body=json.dumps({"config": {"secretAccessKey": SECRET + "2"}}),
        ),
    ]
    bad = [
        await jp_fetch("gradient", "api", "storage-providers", method="POST", raise_error=False, body=json.dumps(body))
        for body in (
            {"name": "t", "config": {**S3, "bucket": "Bad_Bucket"}},
            {"name": "t", "config": SECRET},
            {"name": SECRET[:3], "config": S3, "isTeamDefault": SECRET},
        )
    ]
    assert [r.code for r in bad] == [400, 400, 400]
    for r in answers + bad:
        assert SECRET.encode() not in r.body
    assert SECRET not in caplog.text


BAD_PROVIDER_BODIES = [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"name": "x", "config": ' + b"[" * 17 + b"]" * 17 + b"}", "nested more than 16 levels deep"),
    (json.dumps({"config": S3}).encode(), "Missing field(s): name"),
    (json.dumps({"name": "x"}).encode(), "Missing field(s): config"),
    (json.dumps({"name": 5, "config": S3}).encode(), "Field 'name' must be a string"),
    (json.dumps({"name": "x", "config": "bucket"}).encode(), "Field 'config' must be an object"),
    (json.dumps({"name": "x", "config": S3, "isTeamDefault": "yes"}).encode(), "must be true or false"),
    (json.dumps({"name": "x", "config": S3, "secret": "s"}).encode(), "Unknown field(s): secret"),
    (json.dumps({"name": "x", "type": "gcs", "config": S3}).encode(), "Unknown storage provider type"),
    (json.dumps({"name": "x", "config": {**S3, "bucket": "Bad_Bucket"}}).encode(), "Invalid bucket name"),
    (json.dumps({"name": "x", "config": {**S3, "endpoint": "ftp://h"}}).encode(), "Invalid endpoint"),
    (json.dumps({"name": "x", "config": {**S3, "color": "red"}}).encode(), "Unknown config field(s): color"),
    (json.dumps({"name": "x", "config": {**S3, "region": 3}}).encode(), "must be a string"),
]


@pytest.mark.parametrize("body, message", BAD_PROVIDER_BODIES, ids=[m for _, m in BAD_PROVIDER_BODIES])
async def test_bad_provider_input_is_a_clear_400_that_changes_nothing(api, body, message):
    before = await api("GET", "storage-providers")
    code, err = await api("POST", "storage-providers", data=body)
    assert code == 400 and message in err["message"], err
    assert await api("GET", "storage-providers") == before


async def test_errors_map_to_status_and_json_body(api):
    _, listing = await api("GET", "storage-providers")
    managed = listing["storageProviders"][0]["id"]
    await api("POST", "storage-providers", {"name": "taken", "config": S3})
    cases = [
        (("GET", "storage-providers/spnope"), 404, "not-found"),
        (("PATCH", "storage-providers/spnope", {"name": "y"}), 404, "not-found"),
        (("POST", "storage-providers", {"name": "TAKEN", "config": S3}), 409, "duplicate-name"),
        (("PATCH", f"storage-providers/{managed}", {"name": "mine"}), 409, "managed-provider"),
        (("DELETE", f"storage-providers/{managed}"), 409, "managed-provider"),
        (("DELETE", "storage-providers/taken", None, {"force": "maybe"}), 400, "invalid-query"),
        (("GET", "no/such/route"), 404, "unknown-path"),
        (("PUT", "storage-providers"), 405, "method-not-allowed"),
    ]
    for args, status, reason in cases:
        method, path, body, params = (*args, None, None)[:4]
        code, err = await api(method, path, body, params=params)
        assert (code, err["reason"]) == (status, reason), (args, err)
        assert err["message"]


async def test_utilization_shows_every_provider_and_the_managed_quota(api, s3_bucket, jp_serverapp):
    endpoint, bucket = s3_bucket
    team = jp_serverapp.web_app.settings["gradient_engine"].team_id
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    _, p = await api(
        "POST", "storage-providers", {"name": "moto", "config": {**S3, "bucket": bucket, "endpoint": endpoint}}
    )
    code, usage = await api("GET", "storage-providers/utilization")
    assert code == 200 and usage["managed"]["quotaBytes"] == 5 * 1024**3
    assert usage["managed"]["usedBytes"] == 0 and usage["managed"]["remainingBytes"] == 5 * 1024**3
    assert [r["usedBytes"] for r in usage["storageProviders"]] == [0, 0]
    client.put_object(Bucket=bucket, Key=f"{team}/datasets/x", Body=b"12345")
    client.put_object(Bucket=bucket, Key="someone-else/x", Body=b"1234567")  # not this team's: not counted
    _, usage = await api("GET", "storage-providers/utilization")
    assert next(r for r in usage["storageProviders"] if r["id"] == p["id"])["usedBytes"] == 5


async def test_an_unreadable_bucket_does_not_hide_the_others(api, moto_server):
    _, p = await api(
        "POST",
        "storage-providers",
        {"name": "gone", "config": {**S3, "bucket": "no-such-bucket-here", "endpoint": moto_server}},
    )
    code, usage = await api("GET", "storage-providers/utilization")
    row = next(r for r in usage["storageProviders"] if r["id"] == p["id"])
    assert code == 200 and row["usedBytes"] is None and "does not exist" in row["error"]
    assert usage["managed"]["usedBytes"] == 0
    code, listing = await api("GET", "datasets")  # skipped with the store's words and what to do, as the console says
    (warning,) = listing["warnings"]
    assert code == 200 and warning["storageProviderName"] == "gone" and "does not exist" in warning["message"]
    assert warning["fix"].endswith("to see what is wrong: gradient-jupyter storageProviders check --id gone")


# -- threads ------------------------------------------------------------------------------------------------------
class Gate:
    """WSGI middleware in front of moto: GETs on one bucket wait until the test opens the gate."""

    def __init__(self, app, bucket):
        self.app, self.bucket = app, bucket
        self.entered, self.open = threading.Event(), threading.Event()

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] == "GET" and environ["PATH_INFO"].startswith(f"/{self.bucket}"):
            self.entered.set()
            self.open.wait(60)
        return self.app(environ, start_response)


@pytest.fixture
def slow_moto():
    """A moto server whose bucket 'slow-bucket' answers GETs only when the gate opens; yields (endpoint, gate)."""
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    gate = Gate(DomainDispatcherApplication(create_backend_app), "slow-bucket")
    server = make_server("127.0.0.1", free_port(), gate, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="slow-bucket")
    yield endpoint, gate
    gate.open.set()
    server.shutdown()
    thread.join()


async def test_a_slow_store_does_not_stall_other_requests(api, slow_moto):
    endpoint, gate = slow_moto
    await api(
        "POST", "storage-providers", {"name": "slow", "config": {**S3, "bucket": "slow-bucket", "endpoint": endpoint}}
    )
    slow = asyncio.ensure_future(api("GET", "storage-providers/utilization"))  # lists the slow bucket
    assert await asyncio.get_running_loop().run_in_executor(None, gate.entered.wait, 30)
    code, listing = await api("GET", "storage-providers")  # answered while the other waits inside the store
    assert code == 200 and len(listing["storageProviders"]) == 2
    assert not slow.done()
    gate.open.set()
    code, usage = await slow
    assert code == 200 and all(r["usedBytes"] == 0 for r in usage["storageProviders"])


# -- the OpenAPI document -----------------------------------------------------------------------------------------
async def test_openapi_document_is_served_valid_and_describes_every_route(api):
    code, doc = await api("GET", "openapi.json")
    assert code == 200 and doc == DOC
    validate_openapi(doc)
    routes = {}
    for pattern, cls in default_handlers:
        if "(?P<rest>" not in pattern:
            routes[route_template(pattern)] = set(handler_methods(cls))
    documented = {
        path: {m for m in item if m in ("get", "post", "put", "patch", "delete")} for path, item in DOC["paths"].items()
    }
    assert routes == documented
