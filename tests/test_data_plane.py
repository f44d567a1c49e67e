"""Saves and loads on a real S3 server (SeaweedFS over HTTP, data on disk): a crash of the store mid-save, and the
data plane's requests."""

from __future__ import annotations

import os

import pytest

from gradient_jupyter.engine import StoreError
from gradient_jupyter.engine.transfer import load, save

from .test_datasets import make_folder, read_folder


def seaweed_provider(engine, seaweed, bucket, name="weed"):
    return engine.registry.create(
        name,
        {
            "bucket": bucket,
            "endpoint": seaweed.endpoint,
            "accessKey": seaweed.access_key,
            "secretAccessKey": seaweed.secret_key,
        },
    )


def test_store_killed_mid_save_then_restarted_commits_nothing_then_everything(engine, seaweed_bucket, tmp_path):
    seaweed, bucket = seaweed_bucket
    p = seaweed_provider(engine, seaweed, bucket)
    files = {f"d{i % 4}/f{i}.bin": os.urandom(3000 + i) for i in range(60)}
    files["big.bin"] = os.urandom(9 * 1024**2)  # in parts
    src = make_folder(tmp_path / "src", files)
    engine.settings.max_concurrency = 4
    engine.settings.multipart_threshold = engine.settings.part_size = 5 * 1024**2
    killed = []

    def kill_midway(event):
        if event.phase == "upload" and event.files_done >= 20 and not killed:
            killed.append(event.files_done)
            seaweed.kill()  # kill -9 of the whole server: nothing flushed, nothing closed

    try:
        with pytest.raises(StoreError) as info:
            save(engine, "phoenix", src, provider=p.id, progress=kill_midway)
        assert killed and info.value.reason in ("unreachable", "timeout")
    finally:
        seaweed.start()  # the same data folder and ports; the session's other tests go on with it
    assert engine.datasets.list_versions("phoenix") == []  # the failed save committed nothing
    again = save(engine, "phoenix", src)
    assert again.bytes_copied >= 20 * 3000  # what arrived before the crash is copied inside the store, not re-sent
    assert again.bytes_sent + again.bytes_copied == sum(len(d) for d in files.values())
    assert again.version.file_count == len(files)
    out = load(engine, "phoenix", tmp_path / "out")  # every byte verified against its SHA-256 on the way
    assert out.files == len(files) and read_folder(tmp_path / "out") == read_folder(src)
