"""The bucket is not trusted (docs/threat-model.md): a teammate with write access, a leaked key or a bug elsewhere can
put anything there. On a real S3 store (SeaweedFS over HTTP), as a hostile teammate would try it."""

from __future__ import annotations

import json
import logging
import os
import threading
from types import SimpleNamespace

import pytest

from gradient_jupyter.engine import Conflict, IntegrityError, NotFound, StoreError
from gradient_jupyter.engine.records import BadRecord
from gradient_jupyter.engine.transfer import load, save

from .helpers import make_folder, read_folder
from .helpers.faultproxy import FaultProxy

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def bucket(seaweed):
    # one bucket for the module (each SeaweedFS bucket takes volumes); every test's data home is a new team
    return seaweed.bucket()


@pytest.fixture
def weed(engine, seaweed, bucket):
    """A provider on the SeaweedFS bucket, and a boto3 client for playing the hostile teammate."""
    server = seaweed
    provider = engine.registry.create(
        "weed",
        {
            "bucket": bucket,
            "endpoint": server.endpoint,
            "accessKey": server.access_key,
            "secretAccessKey": server.secret_key,
        },
    )
    client = server.client()

    def put(key, body):
        client.put_object(Bucket=bucket, Key=key, Body=body if isinstance(body, bytes) else json.dumps(body).encode())

    def objects():  # this test's team only: key -> ETag
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=engine.team_id + "/")
        return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}

    return SimpleNamespace(id=provider.id, put=put, objects=objects, client=client, bucket=bucket, server=server)


def ds_key(engine, ds_id, rest=""):
    return f"{engine.team_id}/datasets/{ds_id}/{rest}"


# -- 1. records are checked; no local path comes from the bucket ------------------------------------------------
def test_a_forged_dataset_name_never_becomes_a_load_folder(engine, weed, tmp_path, monkeypatch, caplog):
    s = save(engine, "victim", make_folder(tmp_path / "src", {"a.txt": b"a"}), provider=weed.id)
    save(engine, "bystander", make_folder(tmp_path / "src2", {"b.txt": b"b"}), provider=weed.id)
    target = tmp_path / "home" / ".ssh"
    key = ds_key(engine, s.dataset.id, "dataset.json")
    record = json.loads(weed.client.get_object(Bucket=weed.bucket, Key=key)["Body"].read())
    weed.put(key, {**record, "name": str(target)})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(IntegrityError, match="not a dataset name") as info:
        load(engine, s.dataset.id)
    assert key in info.value.message and "Traceback" not in info.value.message
    assert not target.exists() and not (tmp_path / "home").exists()
    with caplog.at_level(logging.WARNING, logger="gradient_jupyter"):  # the others still list
        assert [d.name for d in engine.datasets.list()] == ["bystander"]
    assert key in caplog.text


def test_a_forged_tag_and_manifest_cannot_write_through_the_manifest_cache(engine, weed, tmp_path):
    s = save(engine, "cached", make_folder(tmp_path / "src", {"a.txt": b"a"}), provider=weed.id)
    kernel = tmp_path / "jupyter" / "kernels" / "python3" / "kernel"  # the cache would add ".json"
    weed.put(ds_key(engine, s.dataset.id, "tags/evil.json"), {"version": str(kernel)})
    real = json.loads(
        weed.client.get_object(
            Bucket=weed.bucket, Key=ds_key(engine, s.dataset.id, f"versions/{s.version.version}/manifest.json")
        )["Body"].read()
    )
    weed.put(
        ds_key(engine, s.dataset.id, f"versions/{kernel}/manifest.json"),
        {**real, "version": str(kernel), "argv": ["sh", "-c", "echo owned"]},
    )
    for attempt in (
        lambda: engine.datasets.resolve("cached:evil"),
        lambda: load(engine, "cached:evil", tmp_path / "d"),
    ):
        with pytest.raises((NotFound, IntegrityError)):
            attempt()
    assert not (tmp_path / "jupyter").exists() and not (tmp_path / "d").exists()
    assert [t.name for t in engine.datasets.list_tags("cached")] == []  # the bad tag is skipped, not shown
    engine.datasets.resolve(f"cached:{s.version.version}")  # a real manifest is cached, under a hash of its ids
    cached = [p.name for p in (engine.home / "cache").rglob("*") if p.is_file() and "manifests" in p.parts]
    assert len(cached) == 1 and len(cached[0]) == 64 + len(".json")


def test_one_malformed_record_does_not_break_listings_for_everyone(engine, weed, tmp_path, caplog):
    save(engine, "good", make_folder(tmp_path / "src", {"a.txt": b"a"}), provider=weed.id)
    bad = ds_key(engine, "dsaaaaaaaaaaaaa", "dataset.json")
    weed.put(bad, {"name": "x"})
    weed.put(ds_key(engine, "dsbbbbbbbbbbbbb", "dataset.json"), b"{not json")
    with caplog.at_level(logging.WARNING, logger="gradient_jupyter"):
        assert [d.name for d in engine.datasets.list()] == ["good"]
    assert bad in caplog.text
    with pytest.raises(BadRecord, match="not a dataset id") as info:
        engine.datasets.get("dsaaaaaaaaaaaaa")
    assert bad in info.value.message


# -- 3. deleting a version keeps what uncommitted versions and saves under way point at ---------------------------
def test_deleting_a_version_keeps_bytes_an_uncommitted_version_points_at(engine, weed, tmp_path):
    v1 = save(engine, "shared", make_folder(tmp_path / "src", {"a.txt": b"same bytes"}), provider=weed.id)
    v2 = engine.datasets.create_version("shared")
    engine.datasets.put_file("shared", v2.version, "b.txt", b"same bytes")  # stored as a pointer to v1's object
    engine.datasets.delete_version("shared", v1.version.version)
    engine.datasets.commit("shared", v2.version)
    entry, chunks = engine.datasets.read_file("shared", v2.version, "b.txt")
    assert b"".join(chunks) == b"same bytes"


def test_a_save_running_while_its_reused_version_is_deleted_loses_nothing(engine, weed, tmp_path):
    files = {f"f{i}.bin": os.urandom(2000) for i in range(40)}
    first = save(engine, "racing", make_folder(tmp_path / "src", files), provider=weed.id)
    (tmp_path / "src" / "new.txt").write_bytes(b"new")
    deleted = []

    def delete_when_hashed(event):  # the save has looked up what the store holds while it hashed
        if event.phase == "hash" and event.files_done == event.files_total and not deleted:
            deleted.append(first.version.version)
            engine.datasets.delete_version("racing", first.version.version)

    second = save(engine, "racing", tmp_path / "src", progress=delete_when_hashed)
    assert deleted and engine.datasets.list_versions("racing")[0].version == second.version.version
    load(engine, "racing", tmp_path / "out")
    assert read_folder(tmp_path / "out") == {**files, "new.txt": b"new"}


# -- 5. resuming an interrupted save compares SHA-256, not just size ---------------------------------------------
class Interrupted(Exception):
    pass


def test_resume_never_takes_a_replaced_leftover_of_the_same_size(engine, weed, tmp_path):
    files = {f"f{i}.bin": os.urandom(3000) for i in range(8)}
    src = make_folder(tmp_path / "src", files)
    engine.settings.max_concurrency = 1

    def stop_midway(event):
        if event.phase == "upload" and event.files_done >= 4:
            raise Interrupted

    with pytest.raises(Interrupted):
        save(engine, "resumed", src, provider=weed.id, progress=stop_midway)
    leftovers = [k for k in weed.objects() if "/data/" in k]
    assert leftovers
    weed.put(leftovers[0], b"\0" * 3000)  # a teammate's tool: same size, other bytes
    again = save(engine, "resumed", src)
    assert again.bytes_resumed <= (len(leftovers) - 1) * 3000
    load(engine, "resumed", tmp_path / "out")
    assert read_folder(tmp_path / "out") == files


# -- 6. an interrupted delete is finished by a writer, never undone by a read --------------------------------------
@pytest.mark.parametrize("finish", ["create again", "delete again"])
def test_an_interrupted_delete_stays_deleted_and_reads_write_nothing(engine, weed, tmp_path, finish):
    proxy = FaultProxy(weed.server.endpoint).start()
    try:
        engine.registry.delete(weed.id)  # only the proxied provider sees this bucket
        p = engine.registry.create(
            "proxied",
            {
                "bucket": weed.bucket,
                "endpoint": proxy.url,
                "accessKey": weed.server.access_key,
                "secretAccessKey": weed.server.secret_key,
            },
            is_team_default=True,
        )
        first = save(engine, "doomed", make_folder(tmp_path / "src", {"a.txt": b"a"}), provider=p.id)
        deletes = []

        def second_delete_fails(method, path):
            if method == "DELETE" or (method == "POST" and "delete" in path):
                deletes.append(path)
                return "503" if len(deletes) > 1 else None
            return None

        proxy.rule = second_delete_fails
        with pytest.raises(StoreError):
            engine.datasets.delete("doomed")
        assert len(deletes) > 1, deletes
        proxy.rule = None
        before = weed.objects()
        assert any(f"/datasets/{first.dataset.id}/" in k for k in before)  # the delete was cut short
        with pytest.raises(NotFound):
            engine.datasets.get("doomed")
        with pytest.raises(NotFound):
            engine.datasets.resolve("doomed")
        assert [d.name for d in engine.datasets.list()] == []
        assert weed.objects() == before  # reads wrote nothing
        if finish == "delete again":
            engine.datasets.delete("doomed")
            assert not any(f"/datasets/{first.dataset.id}/" in k for k in weed.objects())
            assert not any("/names/" in k for k in weed.objects())
            return
        again = save(engine, "doomed", make_folder(tmp_path / "src2", {"b.txt": b"b"}))  # a writer finishes it
        assert again.dataset.id != first.dataset.id
        assert not any(f"/datasets/{first.dataset.id}/" in k for k in weed.objects())
        assert [d.name for d in engine.datasets.list()] == ["doomed"]
    finally:
        proxy.stop()


# -- 7. deleting a provider fails closed, and counts real datasets ---------------------------------------------------
def test_provider_delete_refuses_when_it_cannot_check(engine, weed):
    from .helpers import free_port

    gone = engine.registry.create(
        "gone",
        {"bucket": "nowhere", "endpoint": f"http://127.0.0.1:{free_port()}", "accessKey": "k", "secretAccessKey": "s"},
    )
    engine.settings.store_timeout = 2
    with pytest.raises(Conflict, match="Could not check") as info:
        engine.delete_provider("gone")
    assert info.value.reason == "provider-unchecked" and "--force (REST: ?force=true)" in info.value.message
    assert engine.registry.get(gone.id)
    engine.delete_provider("gone", force=True)
    # a folder left under datasets/ without a dataset record is not a dataset
    weed.put(f"{engine.team_id}/datasets/dsccccccccccccc/versions/abcdefg/data/x", b"leftover")
    engine.delete_provider(weed.id)
    with pytest.raises(NotFound):
        engine.registry.get(weed.id)


# -- 10. tags and version deletes stay consistent ------------------------------------------------------------------
def test_a_tag_left_pointing_at_a_deleted_version_is_ignored_and_explained(engine, weed, tmp_path):
    s = save(engine, "tagged", make_folder(tmp_path / "src", {"a.txt": b"a"}), provider=weed.id, tag="prod")
    later = save(engine, "tagged", make_folder(tmp_path / "src2", {"b.txt": b"b"}))
    engine.datasets.delete_version("tagged", s.version.version)
    assert engine.datasets.list_tags("tagged") == []  # the delete removed its tags
    # the state a tag set racing the delete would have left on an older client
    weed.put(ds_key(engine, s.dataset.id, "tags/stale.json"), {"version": s.version.version})
    assert engine.datasets.list_tags("tagged") == []
    with pytest.raises(NotFound, match="points at version .* no longer exists") as info:
        engine.datasets.resolve("tagged:stale")
    assert "tags set" in info.value.message
    engine.datasets.delete_tag("tagged", "stale")  # and it can still be removed
    assert engine.datasets.resolve("tagged")[1].version == later.version.version


def test_tagging_while_deleting_never_leaves_a_tag_on_nothing(engine, weed, tmp_path):
    for round_ in range(6):
        s = save(engine, "contest", make_folder(tmp_path / f"src{round_}", {"a.txt": os.urandom(8)}), provider=weed.id)
        errors = []

        def tag(name=f"t{round_}", version=s.version.version, errors=errors):
            try:
                engine.datasets.set_tag("contest", name, version)
            except (NotFound, Conflict) as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=tag),
            threading.Thread(target=engine.datasets.delete_version, args=("contest", s.version.version)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        tags = {k for k in weed.objects() if "/tags/" in k}
        assert not tags, (round_, tags, errors)


def test_a_claim_holding_only_the_id_still_resolves_and_a_forged_one_is_named(engine, weed, tmp_path):
    s = save(engine, "minimal", make_folder(tmp_path / "src", {"a.txt": b"a"}), provider=weed.id)
    claim = f"{engine.team_id}/names/minimal.json"
    weed.put(claim, {"id": s.dataset.id})  # as older tools wrote it
    (engine.home / "cache" / "dataset-names.json").unlink(missing_ok=True)
    assert engine.datasets.get("minimal").id == s.dataset.id
    weed.put(claim, {"id": s.dataset.id, "name": "other"})
    (engine.home / "cache" / "dataset-names.json").unlink(missing_ok=True)
    with pytest.raises(BadRecord, match="claims the name 'other'") as info:
        engine.datasets.get("minimal")
    assert claim in info.value.message


def test_a_damaged_record_of_an_uncommitted_version_does_not_block_latest(engine, weed, tmp_path):
    """`latest` is the newest committed version: a draft (no manifest) with a damaged record cannot be it, so
    `load DATASET` goes on with a warning naming that key; a damaged record of a committed version still refuses."""
    import subprocess
    import sys

    def load_cli(dest):
        return subprocess.run(
            [sys.executable, "-m", "gradient_jupyter.cli", "load", "steady", str(tmp_path / dest)],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            timeout=120,
        )

    s = save(engine, "steady", make_folder(tmp_path / "src", {"a.txt": b"a"}), provider=weed.id)
    draft = engine.datasets.create_version("steady", message="draft")
    bad_draft = ds_key(engine, s.dataset.id, f"versions/{draft.version}/version.json")
    weed.put(bad_draft, {"version": draft.version, "message": 7})
    r = load_cli("out")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"a" and bad_draft in r.stdout + r.stderr
    bad_committed = ds_key(engine, s.dataset.id, f"versions/{s.version.version}/version.json")
    weed.put(bad_committed, {"version": s.version.version, "message": 7})
    r = load_cli("out2")
    assert r.returncode == 1 and bad_committed in r.stderr and not (tmp_path / "out2").exists()
