"""Test helpers for the REST API: a client that checks every answer against the shipped OpenAPI document."""

from __future__ import annotations

import json
import re
from importlib.resources import files

from jsonschema import Draft202012Validator

import gradient_jupyter.server

DOC = json.loads(files(gradient_jupyter.server).joinpath("openapi.json").read_text())
# handler regex group -> OpenAPI path parameter
GROUPS = {
    "provider_id": "providerId",
    "dataset": "datasetId",
    "version": "version",
    "path": "path",
    "tag": "tagName",
    "ref": "ref",
}
METHODS = ("get", "post", "put", "patch", "delete")


def route_template(pattern: str) -> str:
    """'/gradient/api/datasets/(?P<dataset>[^/]+)' -> '/datasets/{datasetId}'."""
    path = pattern.removeprefix("/gradient/api")
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: "{" + GROUPS.get(m.group(1), m.group(1)) + "}", path)


def find_operation(method: str, path: str) -> dict | None:
    """The documented operation for a concrete API path (relative to gradient/api), or None."""
    path = "/" + path.lstrip("/")
    for template, item in DOC["paths"].items():
        regex = re.escape(template).replace(r"\{path\}", ".+")
        regex = re.sub(r"\\\{\w+\\\}", "[^/]+", regex)
        if re.fullmatch(regex, path) and method.lower() in item:
            return item[method.lower()]
    return None


def validate(schema: dict, value) -> None:
    Draft202012Validator({**schema, "components": DOC["components"]}).validate(value)


def check_documented(method: str, path: str, code: int, body: bytes, content_type: str, request_json=None) -> None:
    """Fail unless the answer (and, for a success, the JSON request) is what the OpenAPI document says."""
    op = find_operation(method, path)
    if op is None:  # not a documented operation: must be refused with the documented error body
        assert code in (404, 405), f"{method} {path} is not in openapi.json but answered {code}"
        op = {"responses": {"default": {"$ref": "#/components/responses/Error"}}}
    response = op["responses"].get(str(code)) or op["responses"]["default"]
    if "$ref" in response:
        response = DOC["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    if code == 204:
        assert not body, f"{method} {path}: 204 with a body"
        return
    media = next(iter(response.get("content", {})), None)
    assert media is not None, f"{method} {path} answered {code} with a body the document does not describe"
    assert content_type.split(";")[0] == media, f"{method} {path}: {content_type} is not the documented {media}"
    if media == "application/json":
        validate(response["content"][media]["schema"], json.loads(body))
    if 200 <= code < 300 and request_json is not None and "requestBody" in op:
        validate(op["requestBody"]["content"]["application/json"]["schema"], request_json)


class Api:
    """`await api("POST", "datasets", {"name": "x"})` -> (status, parsed JSON or bytes); validates every answer."""

    def __init__(self, fetch, headers: dict | None = None):
        self.fetch = fetch
        self.headers = headers or {}

    async def __call__(
        self, method: str, path: str, body=None, *, params=None, data: bytes | None = None, headers=None
    ):
        payload = json.dumps(body).encode() if body is not None else data
        if payload is None and method in ("POST", "PUT", "PATCH"):
            payload = b""
        r = await self.fetch(
            "gradient/api",
            path,
            method=method,
            body=payload,
            params=params,
            headers={**self.headers, **(headers or {})},
            raise_error=False,
            allow_nonstandard_methods=True,
        )
        check_documented(method, path, r.code, r.body, r.headers.get("Content-Type", ""), body)
        if r.headers.get("Content-Type", "").startswith("application/json") and r.body:
            return r.code, json.loads(r.body)
        return r.code, r.body
