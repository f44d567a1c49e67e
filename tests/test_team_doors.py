"""Team providers through every door: REST, the compat API, the console script and the magic show them with
`source`/`editable`; changing one is 403 `team-provider` naming the file; a read-only one refuses writes with 403
`read-only-provider` before the body is read; `createdBy.user` is the person who asked."""

from __future__ import annotations

import getpass
import json
import re

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from gradient_jupyter.engine import Engine, GradientStorage
from gradient_jupyter.notebook.magics import CommandFailed

from .helpers import cli

TEAM = "teshared1"


def write_team(path, seaweed, shared: str, archive: str, *, read_only: bool = True) -> str:
    """A team file with a writable provider ("shared", the team default) and a read-only one ("archive") on
    SeaweedFS buckets, secrets by env reference (TEAM_KEY, TEAM_SECRET)."""
    keys = {"accessKey": {"env": "TEAM_KEY"}, "secretAccessKey": {"env": "TEAM_SECRET"}}
    providers = [
        {"name": "shared", "bucket": shared, "endpoint": seaweed.endpoint, **keys},
        {"name": "archive", "bucket": archive, "endpoint": seaweed.endpoint, **keys, "readOnly": read_only},
    ]
    path.write_text(json.dumps({"teamId": TEAM, "teamDefault": "shared", "providers": providers}))
    return str(path)


@pytest.fixture
def team(tmp_path, seaweed_bucket, monkeypatch):
    seaweed, bucket = seaweed_bucket
    monkeypatch.setenv("TEAM_KEY", seaweed.access_key)
    monkeypatch.setenv("TEAM_SECRET", seaweed.secret_key)
    archive = seaweed.bucket()
    # The administrator's own file, where "archive" takes writes: it fills the archive users only read.
    write_team(tmp_path / "admin-team.json", seaweed, bucket, archive, read_only=False)
    return write_team(tmp_path / "team.yaml", seaweed, bucket, archive)


@pytest.fixture
def jp_server_config(team):
    return {"ServerApp": {"jpserver_extensions": {"gradient_jupyter": True}}, "GradientStorage": {"team_file": team}}


async def test_rest_lists_team_providers_and_refuses_changing_them(api, team, seaweed_bucket):
    code, listing = await api("GET", "storage-providers")
    assert code == 200 and "warnings" not in listing
    rows = {p["name"]: p for p in listing["storageProviders"]}
    assert (rows["shared"]["source"], rows["shared"]["editable"], rows["shared"]["isTeamDefault"]) == (
        "team",
        False,
        True,
    )
    assert rows["archive"]["readOnly"] is True and rows["Gradient Managed"]["source"] == "user"
    assert seaweed_bucket[0].secret_key not in json.dumps(listing)
    shared = rows["shared"]["id"]
    for method, body in (("PATCH", {"name": "mine"}), ("DELETE", None)):
        code, refused = await api(method, f"storage-providers/{shared}", body)
        assert code == 403 and refused["reason"] == "team-provider" and team in refused["message"]
    code, refused = await api("PATCH", f"storage-providers/{rows['Gradient Managed']['id']}", {"isTeamDefault": True})
    assert code == 403 and refused["reason"] == "team-provider"


async def test_read_only_refuses_before_the_body_and_created_by_is_the_person(api, compat, engine_of, tmp_path):
    code, refused = await api("POST", "datasets", {"name": "ro-data", "storageProviderId": "archive"})
    assert code == 403 and refused["reason"] == "read-only-provider" and "read-only" in refused["message"]
    code, ds = await api("POST", "datasets", {"name": "team-data"})  # the team default: "shared"
    assert code == 201 and ds["storageProviderId"] == engine_of.registry.get("shared").id
    code, v = await api("POST", f"datasets/{ds['id']}/versions", {})
    # jupyter_server names a token-authenticated request's user anew each time (tests/test_team_hub.py has
    # JupyterHub's named users): the user is that identity, not the OS user the server runs as
    assert code == 201 and "REST API" in v["createdBy"]["tool"]
    assert re.fullmatch("[0-9a-f]{32}", v["createdBy"]["user"]) and v["createdBy"]["user"] != getpass.getuser()

    admin = Engine(GradientStorage(team_file=str(tmp_path / "admin-team.json")))
    old = admin.datasets.create("old-data", provider="archive")
    draft = admin.datasets.create_version(old)
    assert engine_of.datasets.get("old-data").storage_provider_id == engine_of.registry.get("archive").id
    for method, path, body in (
        ("POST", f"datasets/{old.id}/versions", {}),
        ("DELETE", f"datasets/{old.id}", None),
        ("POST", f"datasets/{old.id}/versions/{draft.version}/commit", None),
        ("PUT", f"datasets/{old.id}/tags/t1", {"version": draft.version}),
    ):
        code, refused = await api(method, path, body)
        assert (code, refused["reason"]) == (403, "read-only-provider"), (method, path)
    code, refused = await api("PUT", f"datasets/{old.id}/versions/{draft.version}/files/a.txt", data=b"x" * 1000)
    assert (code, refused["reason"]) == (403, "read-only-provider")
    assert admin.datasets.list_files(old, draft.version) == []
    code, listing = await api("GET", f"datasets/{old.id}/versions", params={"isCommitted": "false"})
    assert code == 200 and [x["version"] for x in listing["versions"]] == [draft.version]  # reads work
    # the compat API: a new version and write URLs refused, read URLs handed out
    code, refused = await compat("POST", f"datasets/{old.id}/versions", {})
    assert (code, refused["error"]["reason"]) == (403, "read-only-provider")
    calls = {"calls": [{"method": "putObject", "params": {"Key": "/a.txt"}}]}
    code, refused = await compat("POST", f"datasets/{old.id}/versions/{draft.version}/s3/preSignedUrls", calls)
    assert (code, refused["error"]["reason"]) == (403, "read-only-provider")
    calls = {"calls": [{"method": "listObjectsV2", "params": {"Prefix": "/"}}]}
    code, urls = await compat("POST", f"datasets/{old.id}/versions/{draft.version}/s3/preSignedUrls", calls)
    assert code == 200 and urls[0]["url"]


async def test_compat_api_lists_team_providers_and_refuses_changes(compat, team):
    code, providers = await compat("GET", "storageProviders")
    assert code == 200
    shared = next(p for p in providers if p["name"] == "shared")
    assert shared["source"] == "team" and shared["editable"] is False
    assert shared["config"]["secretAccessKey"] == "********" and shared["config"]["accessKey"] == "********"
    code, refused = await compat("POST", f"storageProviders/{shared['id']}", {"name": "x"})
    assert code == 403 and refused["error"]["reason"] == "team-provider" and team in refused["error"]["message"]
    code, refused = await compat("DELETE", f"storageProviders/{shared['id']}")
    assert code == 403 and refused["error"]["reason"] == "team-provider"


def test_console_shows_the_team_mark_and_refuses_changes(team, seaweed_bucket):
    env = {"GRADIENT_JUPYTER_TEAM_FILE": team}
    listing = cli("storageProviders", "list", env=env)
    assert listing.returncode == 0, listing.stderr
    assert "Source" in listing.stdout and "team, read-only" in listing.stdout
    refused = cli("storageProviders", "delete", "--id", "shared", env=env)
    assert refused.returncode == 1 and "team provider" in refused.stderr and team in refused.stderr
    refused = cli("storageProviders", "update", "s3", "--id", "archive", "--region", "x", env=env)
    assert refused.returncode == 1 and "team provider" in refused.stderr
    assert seaweed_bucket[0].secret_key not in listing.stdout + listing.stderr + refused.stderr


def test_console_save_into_a_read_only_provider_is_refused_up_front(team, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("x")
    env = {"GRADIENT_JUPYTER_TEAM_FILE": team}
    refused = cli("save", "ro-data", str(tmp_path / "src"), "--provider", "archive", env=env)
    assert refused.returncode == 1 and "read-only" in refused.stderr


def test_a_broken_team_file_is_a_warning_in_the_console_and_user_providers_work(tmp_path):
    path = tmp_path / "team.yaml"
    path.write_text("teamId: teshared1\nproviders: [{name: x, bucket: abc, secretAccessKey: literal}]\n")
    env = {"GRADIENT_JUPYTER_TEAM_FILE": str(path)}
    made = cli("storageProviders", "create", "s3", "--name", "mine", "--bucket", "my-bucket", env=env)
    assert made.returncode == 0, made.stderr
    listing = cli("storageProviders", "list", env=env)
    assert listing.returncode == 0 and "mine" in listing.stdout
    assert listing.stderr.count("providers[0].secretAccessKey (line 2)") == 1 and "literal" not in listing.stderr


def test_magic_lists_team_providers_and_refuses_changes(team, monkeypatch, tmp_path):
    monkeypatch.setenv("GRADIENT_JUPYTER_TEAM_FILE", team)
    monkeypatch.setenv("GRADIENT_JUPYTER_HOME", str(tmp_path / "magic-home"))  # a fresh engine for this shell
    InteractiveShell.clear_instance()
    ip = InteractiveShell.instance()
    try:
        ip.run_line_magic("load_ext", "gradient_jupyter")
        listing = ip.run_line_magic("gradient_storage", "storageProviders list")
        assert [r[-1] for r in listing.rows] == ["user", "team", "team, read-only"]
        with capture_output(), pytest.raises(CommandFailed, match="team provider"):
            ip.run_line_magic("gradient_storage", "storageProviders delete --id shared")
    finally:
        InteractiveShell.clear_instance()


class TestABrokenTeamFile:
    """A team file that cannot be used: one error in the server's log, a warning in every REST listing, and the
    user's own providers keep working."""

    @pytest.fixture
    def jp_server_config(self, tmp_path):
        path = tmp_path / "broken-team.yaml"
        path.write_text("teamId: teshared1\nproviders: [{name: x, bucket: abc, secretAccessKey: literal-value}]\n")
        return {
            "ServerApp": {"jpserver_extensions": {"gradient_jupyter": True}},
            "GradientStorage": {"team_file": str(path)},
        }

    async def test_is_one_error_in_the_log_and_a_warning_in_every_listing(self, capfd, api):
        # capfd first: it captures the server's log from its start (the extension's logger writes to stderr)
        code, made = await api("POST", "storage-providers", {"name": "mine", "type": "s3", "config": {"bucket": "abc"}})
        assert code == 201
        for _ in range(2):
            code, listing = await api("GET", "storage-providers")
            assert code == 200 and [p["name"] for p in listing["storageProviders"]] == ["Gradient Managed", "mine"]
            (warning,) = listing["warnings"]
            assert "broken-team.yaml: providers[0].secretAccessKey (line 2)" in warning
        log = capfd.readouterr().err
        errors = [line for line in log.splitlines() if line.startswith("[E ")]
        assert len(errors) == 1 and errors[0].endswith(f"GradientExtension] {warning}")
        assert log.count(warning) == 1 and "literal-value" not in log + warning
