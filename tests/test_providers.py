"""The provider registry: persistence, rules, concurrency, and no secret anywhere it should not be."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import stat

import pytest

from gradient_jupyter.engine import BadInput, Conflict, Engine, GradientStorage, NotFound
from gradient_jupyter.engine.ids import PROVIDER_ID, TEAM_ID

from .helpers import SECRET

S3 = {"bucket": "my-bucket", "accessKey": "access-key", "secretAccessKey": SECRET}


def snapshot(engine):
    return [(p.id, p.name, json.dumps(p.config, sort_keys=True), p.is_team_default) for p in engine.registry.list()]


def test_fresh_install_has_gradient_managed_as_team_default(engine):
    providers = engine.registry.list()
    assert [p.name for p in providers] == ["Gradient Managed"]
    managed = providers[0]
    assert managed.is_gradient_managed and managed.is_team_default and managed.embedded
    assert PROVIDER_ID.fullmatch(managed.id)
    assert TEAM_ID.fullmatch(engine.team_id)


def test_create_list_details_update_delete(engine):
    reg = engine.registry
    p = reg.create("test", S3)
    assert PROVIDER_ID.fullmatch(p.id)
    assert [x.name for x in reg.list()] == ["Gradient Managed", "test"]
    assert reg.get("TEST").id == p.id == reg.get(p.id).id
    q = reg.update(p.id, config={"endpoint": "http://127.0.0.1:9000/", "region": "eu-west-1"})
    assert q.config["endpoint"] == "http://127.0.0.1:9000" and q.config["region"] == "eu-west-1"
    assert q.config["secretAccessKey"] == SECRET and q.dt_modified >= p.dt_modified
    q = reg.update(p.id, is_team_default=True)
    assert q.is_team_default and not reg.managed().is_team_default and reg.default().id == p.id
    reg.update(reg.managed().id, is_team_default=True)
    assert reg.default().is_gradient_managed
    reg.delete(p.id)
    with pytest.raises(NotFound, match="Unknown storage provider"):
        reg.get(p.id)


def test_registry_survives_restart_and_keeps_team_id(engine, aws_env):
    p = engine.registry.create("kept", S3)
    team, managed_id = engine.team_id, engine.registry.managed().id
    again = Engine(GradientStorage())
    assert again.team_id == team and again.registry.managed().id == managed_id
    assert again.registry.get("kept").config == p.config


def test_configured_team_id_wins(aws_env):
    assert Engine(GradientStorage(team_id="teabc1234")).team_id == "teabc1234"
    with pytest.raises(BadInput, match="team id"):
        GradientStorage(team_id="nope")


def test_files_are_private(engine):
    assert stat.S_IMODE(os.stat(engine.home).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(engine.registry.path).st_mode) == 0o600


@pytest.mark.parametrize(
    "name, config, message",
    [
        ("x", {**S3, "bucket": "Bad_Bucket"}, "Invalid bucket name"),
        ("x", {**S3, "bucket": "ab"}, "Invalid bucket name"),
        ("x", {**S3, "bucket": "192.168.1.1"}, "Invalid bucket name"),
        ("x", {**S3, "endpoint": "not a url"}, "Invalid endpoint"),
        ("x", {**S3, "endpoint": "ftp://host"}, "Invalid endpoint"),
        ("x", {**S3, "endpoint": "http://host:99999"}, "Invalid endpoint"),
        ("x", {**S3, "endpoint": "http://user:pw@host"}, "credentials in the URL"),
        ("x", {**S3, "secretAccessKey": ""}, "secret access key is empty"),
        ("x", {**S3, "signatureVersion": "v9"}, "signatureVersion"),
        ("x", {**S3, "colour": "blue"}, "Unknown config field"),
        ("", S3, "provider name"),
        ("x", {**S3, "profile": "dev"}, "either an AWS profile"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(engine, name, config, message):
    engine.registry.create("existing", S3)
    before = snapshot(engine)
    with pytest.raises(BadInput, match=message) as info:
        engine.registry.create(name, config)
    assert SECRET not in str(info.value)
    assert snapshot(engine) == before


def test_duplicate_name_unknown_provider_and_protected_providers(engine):
    reg = engine.registry
    reg.create("dup", S3)
    before = snapshot(engine)
    with pytest.raises(Conflict, match="exists already"):
        reg.create("DUP", S3)
    with pytest.raises(NotFound):
        reg.update("spnothere0000000", config={"region": "x"})
    with pytest.raises(Conflict, match="built in"):
        reg.delete(reg.managed().id)
    reg.update("dup", is_team_default=True)
    before = snapshot(engine)
    with pytest.raises(Conflict, match="team default"):
        reg.delete("dup")
    with pytest.raises(Conflict, match="built in"):
        reg.update(reg.managed().id, name="mine")
    with pytest.raises(BadInput, match="secret access key is empty"):
        reg.update("dup", config={"secretAccessKey": ""})
    assert snapshot(engine) == before


def test_profile_and_default_chain_providers(engine):
    p = engine.registry.create("profiled", {"bucket": "b-prof", "profile": "dev"})
    assert p.config["profile"] == "dev" and not p.config.get("accessKey")
    chain = engine.registry.create("chain", {"bucket": "b-chain"})
    assert chain.public_config()["secretAccessKey"] is None
    q = engine.registry.update("profiled", config={"accessKey": "AK", "secretAccessKey": SECRET})
    assert q.config["profile"] is None and q.config["accessKey"] == "AK"


def test_secret_never_in_repr_str_json_or_logs(engine, caplog):
    caplog.set_level(logging.DEBUG)
    from .helpers import free_port

    p = engine.registry.create("secretive", {**S3, "endpoint": f"http://127.0.0.1:{free_port()}"})
    shown = [repr(p), str(p), json.dumps(p.to_json()), repr(engine.registry.list()), repr(engine.store(p))]
    assert all(SECRET not in s for s in shown)
    assert p.to_json()["config"]["secretAccessKey"] == "********"
    store = engine.store(p)
    with pytest.raises(Exception) as info:
        list(store.list("x"))  # nothing listens there: fails, and the error must not carry the secret
    assert SECRET not in str(info.value)
    assert SECRET not in caplog.text


def _create_many(home: str, worker: int, count: int) -> None:
    os.environ["GRADIENT_JUPYTER_HOME"] = home
    engine = Engine(GradientStorage())
    for i in range(count):
        engine.registry.create(f"w{worker}-{i}", {"bucket": f"bucket-{worker}-{i}"})
        engine.registry.update(f"w{worker}-{i}", config={"region": "us-east-1"})


def test_concurrent_writers_in_several_processes(aws_env):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_create_many, args=(str(aws_env), w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    engine = Engine(GradientStorage())
    names = {p.name for p in engine.registry.list()}
    assert names == {"Gradient Managed"} | {f"w{w}-{i}" for w in range(4) for i in range(15)}
    assert all(p.config.get("region") == "us-east-1" for p in engine.registry.list() if not p.is_gradient_managed)
    assert len({p.id for p in engine.registry.list()}) == 61
    assert sum(p.is_team_default for p in engine.registry.list()) == 1
    assert len({Engine(GradientStorage()).team_id for _ in range(3)}) == 1


def test_delete_refused_while_datasets_use_it_unless_forced(engine, s3_bucket):
    endpoint, bucket = s3_bucket
    p = engine.registry.create("used", {"bucket": bucket, "endpoint": endpoint})
    engine.store(p).put_bytes(f"{engine.team_id}/datasets/dsabcdefghijklm/dataset.json", b"{}")
    with pytest.raises(Conflict, match="1 dataset"):
        engine.delete_provider(p.id)
    assert engine.registry.get(p.id)
    engine.delete_provider(p.id, force=True)
    with pytest.raises(NotFound):
        engine.registry.get(p.id)


def test_utilization_reports_managed_quota(engine):
    engine.store(engine.registry.managed()).put_bytes(f"{engine.team_id}/x", b"12345")
    u = engine.utilization()
    assert u["managed"]["usedBytes"] == 5
    assert u["managed"]["quotaBytes"] == 5 * 1024**3
    assert u["managed"]["remainingBytes"] == 5 * 1024**3 - 5
