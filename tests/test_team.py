"""The team file (README "Deploying for a team"): an administrator's providers, read-only to users, secrets by
reference and read when used, shown in every listing; a broken file is one warning and user providers still work."""

from __future__ import annotations

import json
import logging

import pytest

from gradient_jupyter.engine import Conflict, Engine, Forbidden, GradientStorage
from gradient_jupyter.engine.team import TeamFileError, load_team_file
from gradient_jupyter.engine.transfer import load, save

from .helpers import SECRET

TEAM = "teshared1"


def team_file(tmp_path, seaweed, bucket, **extra) -> str:
    """A team file naming a SeaweedFS provider whose keys come from env vars TEAM_KEY / TEAM_SECRET."""
    data = {
        "teamId": TEAM,
        "teamDefault": "shared",
        "providers": [
            {
                "name": "shared",
                "bucket": bucket,
                "endpoint": seaweed.endpoint,
                "accessKey": {"env": "TEAM_KEY"},
                "secretAccessKey": {"env": "TEAM_SECRET"},
            },
            {
                "name": "archive",
                "bucket": bucket,
                "endpoint": seaweed.endpoint,
                "accessKey": {"env": "TEAM_KEY"},
                "secretAccessKey": {"file": str(tmp_path / "secret")},
                "readOnly": True,
            },
        ],
        **extra,
    }
    (tmp_path / "secret").write_text(seaweed.secret_key + "\n")
    path = tmp_path / "team.json"
    path.write_text(json.dumps(data))
    return str(path)


@pytest.fixture
def team(tmp_path, seaweed_bucket, monkeypatch):
    seaweed, bucket = seaweed_bucket
    path = team_file(tmp_path, seaweed, bucket)
    monkeypatch.setenv("GRADIENT_JUPYTER_TEAM_FILE", path)
    monkeypatch.setenv("TEAM_KEY", seaweed.access_key)
    monkeypatch.setenv("TEAM_SECRET", seaweed.secret_key)
    return path


def test_team_providers_are_listed_read_only_to_users(team, tmp_path):
    engine = Engine(GradientStorage())
    providers = engine.registry.list()
    assert [(p.name, p.source, p.editable, p.read_only) for p in providers] == [
        ("Gradient Managed", "user", True, False),
        ("shared", "team", False, False),
        ("archive", "team", False, True),
    ]
    assert engine.team_id == TEAM and engine.registry.default().name == "shared"
    shown = json.dumps([p.to_json() for p in providers])
    assert "TEAM_KEY" not in shown and engine.registry.get("shared").public_config()["secretAccessKey"] == "********"
    assert engine.registry.warnings() == []
    for change in (
        lambda: engine.registry.update("shared", name="mine"),
        lambda: engine.registry.delete("archive"),
        lambda: engine.delete_provider("shared", force=True),
        lambda: engine.registry.update(engine.registry.managed().id, is_team_default=True),
    ):
        with pytest.raises(Forbidden, match="team file") as err:
            change()
        assert err.value.status == 403 and err.value.reason == "team-provider" and team in err.value.message
    with pytest.raises(Conflict, match="team provider"):
        engine.registry.create("Shared", {"bucket": "abc"})


def test_a_save_goes_to_the_team_default_and_another_user_loads_it(team, tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(b"team bytes" * 1000)
    alice = Engine(GradientStorage())
    summary = save(alice, "ds-one", src)
    assert summary.dataset.storage_provider_id == alice.registry.get("shared").id
    monkeypatch.setenv("GRADIENT_JUPYTER_HOME", str(tmp_path / "bob-home"))  # another user, another data home
    bob = Engine(GradientStorage())
    assert bob.registry.get("shared").id == alice.registry.get("shared").id
    load(bob, "ds-one", tmp_path / "dest")
    assert (tmp_path / "dest" / "a.bin").read_bytes() == b"team bytes" * 1000
    assert not any(SECRET in p.read_text(errors="replace") for p in (tmp_path / "bob-home").rglob("*") if p.is_file())


def test_read_only_provider_refuses_writes_up_front_and_reads(team, tmp_path):
    engine = Engine(GradientStorage())
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("x")
    with pytest.raises(Forbidden) as err:
        save(engine, "ro-one", src, provider="archive")
    assert err.value.reason == "read-only-provider" and "read-only" in err.value.message
    with pytest.raises(Forbidden, match="read-only"):
        engine.datasets.create("ro-two", provider="archive")
    # The same bucket through the writable provider: then the read-only one reads it but refuses changes.
    save(engine, "both", src, provider="shared")
    ro = engine.registry.get("archive")
    ds = engine.datasets.get("both", provider=ro.id)
    for write in (
        lambda: engine.datasets.create_version(ds),
        lambda: engine.datasets.delete(ds),
        lambda: engine.datasets.set_tag(ds, "t1", "abcdefg"),
    ):
        with pytest.raises(Forbidden, match="read-only"):
            write()
    v = engine.datasets.list_versions(ds)[0]
    assert [e.path for e in engine.datasets.list_files(ds, v.version)] == ["a.txt"]
    with pytest.raises(Forbidden, match="read-only"):
        engine.datasets.update_version(ds, v.version, message="no")
    load(engine, f"{ds.id}:{v.version}", tmp_path / "out")
    assert (tmp_path / "out" / "a.txt").read_text() == "x"


def test_a_rotated_secret_is_used_without_a_restart(team, tmp_path, seaweed_bucket, monkeypatch):
    engine = Engine(GradientStorage())
    monkeypatch.setenv("TEAM_SECRET", "wrong")
    from gradient_jupyter.engine import GradientError

    with pytest.raises(GradientError):
        engine.datasets.list_in(engine.registry.get("shared"), bad=[])
    monkeypatch.setenv("TEAM_SECRET", seaweed_bucket[0].secret_key)
    assert engine.datasets.list_in(engine.registry.get("shared"), bad=[]) == []
    monkeypatch.delenv("TEAM_SECRET")
    with pytest.raises(GradientError, match="TEAM_SECRET, which is not set"):
        engine.store("shared")


def test_a_user_provider_shadowed_by_a_team_name_is_warned_about(tmp_path, seaweed_bucket, monkeypatch):
    seaweed, bucket = seaweed_bucket
    mine = Engine(GradientStorage()).registry.create("shared", {"bucket": "my-bucket"})
    monkeypatch.setenv("GRADIENT_JUPYTER_TEAM_FILE", team_file(tmp_path, seaweed, bucket))
    engine = Engine(GradientStorage())
    shadowed = [p for p in engine.registry.list() if p.shadowed]
    assert [p.id for p in shadowed] == [mine.id] and shadowed[0].to_json()["shadowed"] is True
    assert engine.registry.get("shared").source == "team" and engine.registry.get(mine.id).bucket == "my-bucket"
    (warning,) = engine.registry.warnings()
    assert "shadowed" in warning and mine.id in warning


def test_a_broken_team_file_is_one_warning_and_user_providers_work(tmp_path, monkeypatch, caplog):
    path = tmp_path / "team.yaml"
    path.write_text(
        "teamId: teshared1\nproviders:\n  - name: x\n    bucket: abc\n    secretAccessKey: hunter2-literal\n"
    )
    monkeypatch.setenv("GRADIENT_JUPYTER_TEAM_FILE", str(path))
    with caplog.at_level(logging.ERROR, logger="gradient_jupyter"):
        engine = Engine(GradientStorage())
        mine = engine.registry.create("mine", {"bucket": "my-bucket"})
        assert [p.name for p in engine.registry.list()] == ["Gradient Managed", "mine"]
        (warning,) = engine.registry.warnings()
        engine.registry.warnings()
    assert "providers[0].secretAccessKey (line 5)" in warning and "by reference" in warning
    assert "hunter2" not in warning and "hunter2" not in caplog.text
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == [warning]  # logged once
    assert engine.registry.get("mine").id == mine.id and engine.team_id != TEAM
    path.unlink()
    assert "cannot be read" in engine.registry.warnings()[0]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("teamId: teshared1\nproviders:\n  - name: x\n    bucket: abc\n    colour: red\n", "providers[0] (line 3)"),
        ("teamId: teshared1\nproviders:\n  - &a {name: x, bucket: abc}\n  - *a\n", "line 4: aliases (*name)"),
        ("teamId: TE1\n", "teamId (line 1)"),
        ('{"teamId": "teshared1", "teamDefault": "nope"}', "teamDefault (line 1): names no provider"),
        ("teamId: teshared1\nproviders:\n  - {name: x, bucket: abc, accessKey: {env: K}}\n", "go together"),
        ("teamId: teshared1\nproviders: [{name: x, bucket: abc}, {name: X, bucket: abd}]\n", "taken by providers[0]"),
        ("teamId: teshared1\nproviders:\n  - name: x\n    bucket: abc\n    accessKey: AKIAXXXXXXXX\n", "by reference"),
        ("a: [\n", "not valid YAML or JSON at line 2"),
        ("teamId: teshared1\nproviders:\n  - secretAccessKey: AKIAXXXXXXXX: x\n", "not valid YAML or JSON at line 3"),
    ],
)
def test_invalid_team_files_name_the_key_and_line(tmp_path, text, says):
    path = tmp_path / "team.yaml"
    path.write_text(text)
    with pytest.raises(TeamFileError) as err:
        load_team_file(path)
    assert says in err.value.message and str(path) in err.value.message
    assert "AKIAXXXX" not in err.value.message


def test_the_documented_schema_is_the_one_checked():
    from pathlib import Path

    import jsonschema

    docs = Path(__file__).resolve().parents[1] / "docs" / "team-file.schema.json"
    jsonschema.Draft202012Validator.check_schema(json.loads(docs.read_text()))
    from gradient_jupyter.engine.team import SCHEMA

    assert docs.read_text() == SCHEMA.read_text()


def test_created_by_names_the_hub_user_in_kernels_and_shells(monkeypatch):
    from gradient_jupyter.engine.history import created_by

    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    assert created_by()["user"] == "alice"
    monkeypatch.delenv("JUPYTERHUB_USER")
    import getpass

    assert created_by()["user"] == getpass.getuser()


def test_gradient_managed_on_s3_from_the_team_file_with_its_quota(tmp_path, seaweed_bucket, monkeypatch):
    from gradient_jupyter.engine import QuotaExceeded

    seaweed, bucket = seaweed_bucket
    monkeypatch.setenv("TEAM_KEY", seaweed.access_key)
    monkeypatch.setenv("TEAM_SECRET", seaweed.secret_key)
    managed = {
        "endpoint": seaweed.endpoint,
        "bucket": bucket,
        "accessKey": {"env": "TEAM_KEY"},
        "secretAccessKey": {"env": "TEAM_SECRET"},
        "quota": 10_000,
    }
    path = tmp_path / "team.json"
    path.write_text(json.dumps({"teamId": TEAM, "gradientManaged": managed}))
    monkeypatch.setenv("GRADIENT_JUPYTER_TEAM_FILE", str(path))
    engine = Engine(GradientStorage())
    (provider,) = engine.registry.list()
    assert (provider.name, provider.source, provider.bucket, provider.is_team_default) == (
        "Gradient Managed",
        "team",
        bucket,
        True,
    )
    assert not provider.embedded and engine.managed_quota == 10_000
    src = tmp_path / "src"
    src.mkdir()
    (src / "small.txt").write_bytes(b"x" * 4000)
    save(engine, "fits", src)
    assert engine.datasets.get("fits").storage_provider_id == provider.id
    (src / "big.bin").write_bytes(b"y" * 8000)
    with pytest.raises(QuotaExceeded):
        save(engine, "too-big", src)
    with pytest.raises(Forbidden, match="team provider"):
        engine.registry.update(provider.id, is_team_default=True)


def test_an_edited_team_file_is_read_again(team, tmp_path):
    engine = Engine(GradientStorage())
    assert [p.name for p in engine.registry.list()][1:] == ["shared", "archive"]
    data = json.loads(open(team).read())
    data["providers"] = data["providers"][:1]
    with open(team, "w") as f:
        f.write(json.dumps(data, indent=2))  # another size: seen as changed even within one mtime tick
    assert [p.name for p in engine.registry.list()][1:] == ["shared"]
    with open(team, "w") as f:
        f.write("teamId: [broken")
    assert [p.name for p in engine.registry.list()][1:] == ["shared"]  # the last good reading stays
    assert "not valid YAML" in engine.registry.warnings()[0] and engine.team_id == TEAM


def test_the_panel_marks_team_providers_and_offers_no_change(team):
    from gradient_jupyter.notebook.panel import panel

    engine = Engine(GradientStorage())
    p = panel(engine)
    p.wait()
    tab = p.providers
    assert "team, read-only" in tab.table.value and ">Source<" in tab.table.value
    tab.choice.value = engine.registry.get("shared").id
    assert tab.edit_button.disabled and tab.delete_button.disabled and tab.default_button.disabled
    assert tab.edit_button.layout.display == tab.delete_button.layout.display == "none"  # no buttons at all
    tab.choice.value = engine.registry.managed().id
    assert tab.edit_button.disabled and tab.default_button.disabled  # the team file sets the default
    assert tab.edit_button.layout.display is None  # shown (greyed) for Gradient Managed, as without a team file
