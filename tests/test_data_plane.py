"""Saves and loads on a real S3 server (SeaweedFS over HTTP, data on disk): a crash of the store mid-save, and the
data plane's requests."""

from __future__ import annotations

import hashlib
import os

import pytest

from gradient_jupyter.engine import S3Store, StoreError
from gradient_jupyter.engine.datasets import verified_chunks
from gradient_jupyter.engine.models import FileEntry
from gradient_jupyter.engine.transfer import TransferProgress, load, save
from gradient_jupyter.engine.transfer.fetch import fetch_ranges
from gradient_jupyter.engine.work import Parts

from .helpers import make_folder, read_folder
from .helpers.providers import seaweed_provider


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
    assert again.bytes_resumed >= 20 * 3000  # what arrived before the crash is copied inside the store, not re-sent
    assert again.bytes_sent + again.bytes_resumed == sum(len(d) for d in files.values())
    assert again.version.file_count == len(files)
    out = load(engine, "phoenix", tmp_path / "out")  # every byte verified against its SHA-256 on the way
    assert out.files == len(files) and read_folder(tmp_path / "out") == read_folder(src)


def test_a_large_file_loads_as_ranges_streamed_into_place_and_verified_in_order(seaweed_bucket, tmp_path):
    """Each range lands at its offset while the file's bytes are read back in order for their SHA-256; progress is
    told once a range, not once a chunk."""
    seaweed, bucket = seaweed_bucket
    store = S3Store(bucket, endpoint=seaweed.endpoint, access_key=seaweed.access_key, secret_key=seaweed.secret_key)
    data = os.urandom(20 * 65536 + 100)  # 21 ranges of 64 KiB, the last one short
    store.put("big.bin", data)
    entry = FileEntry(path="big.bin", size=len(data), sha256=hashlib.sha256(data).hexdigest(), key="big.bin")
    events = []
    fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT)
    try:
        progress = TransferProgress(events.append, "download", 1, len(data))
        ranges = fetch_ranges(store, entry, fd, 65536, progress, "x", pool=Parts(4))
        assert b"".join(verified_chunks(ranges, entry, "x")) == data
    finally:
        os.close(fd)
    assert (tmp_path / "out").read_bytes() == data
    assert len(events) == 1 + 21 and events[-1].bytes_done == len(data)
