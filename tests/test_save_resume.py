"""An interrupted save, and the save after it: a leftover is reused only when its bytes are proven, without a
second copy; the draft it leaves is visible, counted and removable. Through the console script against SeaweedFS
over HTTP."""

from __future__ import annotations

import os

import pytest

from gradient_jupyter.engine.formatting import human_bytes
from gradient_jupyter.engine.transfer import save

from .helpers import cli, make_folder, read_folder
from .helpers.providers import seaweed_provider


class Interrupted(Exception):
    pass


def interrupted_save(engine, name, src, provider, after=4):
    """A save of `src` stopped after `after` files arrived (one at a time), leaving a draft."""
    engine.settings.max_concurrency = 1

    def stop_midway(event):
        if event.phase == "upload" and event.files_done >= after:
            raise Interrupted

    with pytest.raises(Interrupted):
        save(engine, name, src, provider=provider, progress=stop_midway)


def test_a_leftover_replaced_with_its_old_metadata_is_not_reused(engine, seaweed_bucket, tmp_path):
    seaweed, bucket = seaweed_bucket
    p = seaweed_provider(engine, seaweed, bucket)
    files = {f"f{i}.bin": os.urandom(4096) for i in range(8)}
    src = make_folder(tmp_path / "src", files)
    interrupted_save(engine, "resumed", src, p.id)
    client = seaweed.client()
    leftovers = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"] if "/data/" in o["Key"]]
    assert len(leftovers) >= 4
    for key in leftovers:  # a bucket writer: other bytes of the same size, the metadata kept as it was
        meta = client.head_object(Bucket=bucket, Key=key)["Metadata"]
        assert len(meta["sha256"]) == 64
        client.put_object(Bucket=bucket, Key=key, Body=b"\0" * 4096, Metadata=meta)
    again = cli("save", "resumed", src)
    assert again.returncode == 0, again.stderr
    assert "32.0 KiB sent, 0 B copied in the store" in again.stdout and "KiB resumed" not in again.stdout  # none taken
    loaded = cli("load", "resumed", tmp_path / "out")
    assert loaded.returncode == 0, loaded.stderr
    assert read_folder(tmp_path / "out") == files


def test_a_proven_leftover_is_reused_without_a_second_copy(engine, seaweed_bucket, tmp_path):
    seaweed, bucket = seaweed_bucket
    p = seaweed_provider(engine, seaweed, bucket)
    files = {f"f{i}.bin": os.urandom(4096) for i in range(8)}
    src = make_folder(tmp_path / "src", files)
    interrupted_save(engine, "resumed", src, p.id)
    client = seaweed.client()

    def data_objects():
        return [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"] if "/data/" in o["Key"]]

    leftovers = data_objects()
    again = cli("save", "resumed", src)
    assert again.returncode == 0, again.stderr
    resumed = len(leftovers) * 4096
    assert f"{(8 * 4096 - resumed) / 1024:.1f} KiB sent, 0 B copied in the store" in again.stdout
    assert f"; {resumed / 1024:.1f} KiB resumed (sent by an interrupted save" in again.stdout
    assert len(data_objects()) == 8  # each file's bytes once in the bucket
    loaded = cli("load", "resumed", tmp_path / "out")
    assert loaded.returncode == 0 and read_folder(tmp_path / "out") == files


async def test_drafts_are_listed_counted_in_usage_and_removable(engine, seaweed_bucket, tmp_path, api):
    seaweed, bucket = seaweed_bucket
    p = seaweed_provider(engine, seaweed, bucket)
    src = make_folder(tmp_path / "src", {f"f{i}.bin": os.urandom(4096) for i in range(8)})
    interrupted_save(engine, "drafty", src, p.id)
    ds = engine.datasets.get("drafty")
    (draft,) = engine.datasets.drafts(ds)  # the engine's public list, as the panel shows it
    assert draft.held_bytes >= 4 * 4096 and not draft.save_over  # this process still runs: not known to be over
    assert draft.to_json()["heldBytes"] == draft.held_bytes and not draft.version.is_committed

    listed = cli("datasets", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"1 ({human_bytes(draft.held_bytes)})" in listed.stdout and "Drafts" in listed.stdout
    assert "datasets versions list --id NAME --isCommitted false" in listed.stderr
    status, usage = await api("GET", "storage-providers/utilization")
    assert status == 200
    (row,) = [r for r in usage["storageProviders"] if r["id"] == p.id]
    assert row["draftBytes"] == draft.held_bytes and row["usedBytes"] >= row["draftBytes"]
    before = row["usedBytes"]
    status, versions = await api("GET", f"datasets/{ds.id}/versions", params={"isCommitted": "false"})
    assert status == 200 and [v["version"] for v in versions["versions"]] == [draft.version.version]
    status, listed = await api("GET", f"datasets/{ds.id}/drafts")
    assert status == 200 and listed["drafts"] == [draft.to_json()]

    deleted = cli("datasets", "versions", "delete", "--id", draft.ref)
    assert deleted.returncode == 0, deleted.stderr
    assert engine.datasets.drafts(ds) == []
    status, usage = await api("GET", "storage-providers/utilization")
    (row,) = [r for r in usage["storageProviders"] if r["id"] == p.id]
    assert row["draftBytes"] == 0 and row["usedBytes"] == before - draft.held_bytes  # the dataset's own records
    assert "Drafts" not in cli("datasets", "list").stderr
