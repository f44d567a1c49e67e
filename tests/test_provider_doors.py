"""Provider doors that must not mislead or destroy: the masked secret sent back, bad JSON, `--force` named."""

from __future__ import annotations

import json

import pytest

from gradient_jupyter.engine import Engine, GradientStorage

from .helpers import SECRET, cli

EXTENSION = {"ServerApp": {"jpserver_extensions": {"gradient_jupyter": True}}}
S3 = {"bucket": "my-bucket", "accessKey": "access-key", "secretAccessKey": SECRET}


@pytest.fixture
def jp_server_config():
    return EXTENSION


def stored_secret(name: str) -> str:
    return Engine(GradientStorage()).registry.get(name).config["secretAccessKey"]


async def test_patching_a_provider_back_as_shown_keeps_the_real_secret(api):
    code, created = await api("POST", "storage-providers", {"name": "p", "type": "s3", "config": S3})
    assert code == 201
    code, shown = await api("GET", f"storage-providers/{created['id']}")
    assert shown["config"]["secretAccessKey"] == "********"
    code, patched = await api(
        "PATCH",
        f"storage-providers/{created['id']}",
        {"name": shown["name"], "config": {**shown["config"], "region": "eu-west-1"}},
    )
    assert code == 200 and patched["config"]["region"] == "eu-west-1"
    assert stored_secret("p") == SECRET
    code, refused = await api("POST", "storage-providers", {"name": "q", "type": "s3", "config": shown["config"]})
    assert code == 400 and "how a secret is shown" in refused["message"]


def test_updating_with_the_masked_secret_on_the_command_line_keeps_the_real_one():
    assert (
        cli(
            "storageProviders",
            "create",
            "s3",
            "--name",
            "p",
            "--bucket",
            "b-1",
            "--accessKey",
            "AK",
            f"--secretAccessKey={SECRET}",
        ).returncode
        == 0
    )
    r = cli("storageProviders", "update", "s3", "--id", "p", "--secretAccessKey", "********", "--region", "us-west-2")
    assert r.returncode == 0, r.stderr
    assert stored_secret("p") == SECRET


DEEP = b"[" * 200_000 + b"]" * 200_000
HOSTILE = [
    ("POST", "storage-providers", b'{"name": "' + b"n" * 10_000_000 + b'", "type": "s3", "config": {"bucket": "b-1"}}'),
    ("POST", "datasets", b'{"name": "' + b"n" * 10_000_000 + b'"}'),
    ("POST", "storage-providers", DEEP),
    ("POST", "datasets", b'{"name": ' + DEEP + b"}"),
    ("POST", "storage-providers", b'{"name": ["p"], "type": "s3", "config": {"bucket": "b-1"}}'),
    ("POST", "storage-providers", b'{"name": "p", "type": "s3", "config": {"bucket": ["b-1"]}}'),
    ("POST", "storage-providers/x/check", b'{"origins": [["http://127.0.0.1:8888"]]}'),
    ("POST", "storage-providers/x/check", b'{"origins": "http://127.0.0.1:8888"}'),
    ("PUT", "datasets/d/tags/t", b'{"version": ["abc1234"]}'),
    ("PUT", "datasets/d/versions/abc1234/files/" + "x" * 300 + "/f.txt", b"1"),
    ("POST", "datasets/" + "x" * 300 + "/versions", b"{}"),
    ("GET", "datasets/ref/" + "x" * 300 + ":" + "y" * 300, None),
]


@pytest.mark.parametrize("method, path, body", HOSTILE, ids=range(len(HOSTILE)))
async def test_hostile_json_and_long_names_get_a_short_400(jp_fetch, method, path, body):
    if isinstance(path, bytes):
        path = path.decode()
    r = await jp_fetch(
        "gradient/api", path, method=method, body=body, raise_error=False, allow_nonstandard_methods=True
    )
    if "/x/check" in path:  # no such provider: the body is refused before the provider is looked up
        assert r.code in (400, 404), r.body[:300]
    else:
        assert r.code == 400, r.body[:300]
    assert len(r.body) < 1000 and json.loads(r.body)["message"]


def test_the_console_shows_control_characters_and_bidi_overrides_escaped(tmp_path):
    hostile = "ok\x1b[2J\x1b[31mRED\u202eevil\nforged row"
    r = cli("datasets", "create", "--name", "shown", "--description", hostile)
    assert r.returncode == 0, r.stderr
    listing = cli("datasets", "list")
    assert listing.returncode == 0
    assert "ok\\x1b[2J\\x1b[31mRED\\u202eevil\\x0aforged row" in listing.stdout
    assert not any(c in listing.stdout for c in ("\x1b", "\u202e")) and "\nforged row" not in listing.stdout
    refused = cli("storageProviders", "details", "--id", "x\x1b[31m\u202e")
    assert refused.returncode == 1 and "\x1b" not in refused.stderr and "\\x1b[31m\\u202e" in refused.stderr


def test_a_provider_in_use_names_force(s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    assert (
        cli(
            "storageProviders",
            "create",
            "s3",
            "--name",
            "busy",
            "--bucket",
            bucket,
            "--endpoint",
            endpoint,
            "--accessKey",
            "testing",
            "--secretAccessKey",
            "testing",
        ).returncode
        == 0
    )
    assert cli("datasets", "create", "--name", "d", "--storageProviderId", "busy").returncode == 0
    r = cli("storageProviders", "delete", "--id", "busy")
    assert r.returncode == 1 and "--force" in r.stderr
    assert cli("storageProviders", "delete", "--id", "busy", "--force").returncode == 0


def test_two_providers_on_one_bucket_warn_at_create_and_list_each_dataset_once(s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    words = ["--bucket", bucket, "--endpoint", endpoint, "--accessKey", "testing", "--secretAccessKey", "testing"]
    first = cli("storageProviders", "create", "s3", "--name", "one", *words)
    assert first.returncode == 0 and "Warning" not in first.stderr
    second = cli("storageProviders", "create", "s3", "--name", "two", *words[:3], endpoint + "/", *words[4:])
    assert second.returncode == 0, second.stderr
    assert f"storage provider 'one' already uses bucket '{bucket}'" in second.stderr
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a").write_bytes(b"1")
    assert cli("save", "shared", tmp_path / "data", "--provider", "one").returncode == 0
    listing = cli("datasets", "list")
    assert listing.returncode == 0 and listing.stdout.count("shared") == 1, listing.stdout


async def test_rest_create_on_a_bucket_in_use_answers_a_warning(api):
    code, first = await api("POST", "storage-providers", {"name": "one", "type": "s3", "config": S3})
    assert code == 201 and "warnings" not in first
    code, second = await api("POST", "storage-providers", {"name": "two", "type": "s3", "config": S3})
    assert code == 201 and "'one' already uses bucket 'my-bucket'" in second["warnings"][0]
    code, third = await api("POST", "storage-providers", {"name": "three", "type": "s3", "config": S3})
    assert code == 201 and "providers 'one', 'two' already use bucket 'my-bucket'" in third["warnings"][0]
    assert "all reach the same datasets" in third["warnings"][0]


@pytest.mark.parametrize(
    "path, body",
    [
        ("storageProviders", b'{"name": "' + b"n" * 10_000_000 + b'", "type": "s3", "config": {"bucket": "b-1"}}'),
        ("datasets", b'{"name": ' + DEEP + b"}"),
        ("datasets", b'{"name": ["x"]}'),
    ],
    ids=["huge", "deep", "mistyped"],
)
async def test_the_compat_api_answers_hostile_json_with_a_short_400(jp_fetch, path, body):
    r = await jp_fetch("gradient", "compat", path, method="POST", body=body, raise_error=False)
    assert r.code == 400 and len(r.body) < 1000, r.body[:300]


async def test_the_compat_api_keeps_the_real_secret_when_the_mask_comes_back(jp_fetch):
    r = await jp_fetch(
        "gradient",
        "compat",
        "storageProviders",
        method="POST",
        body=json.dumps({"name": "p", "type": "s3", "config": S3}),
    )
    shown = json.loads(r.body)
    assert shown["config"]["secretAccessKey"] == "********"
    r = await jp_fetch(
        "gradient",
        "compat",
        "storageProviders",
        shown["id"],
        method="POST",
        body=json.dumps({"config": {**shown["config"], "region": "eu-west-1"}}),
    )
    assert r.code == 200 and json.loads(r.body)["config"]["region"] == "eu-west-1"
    assert stored_secret("p") == SECRET
