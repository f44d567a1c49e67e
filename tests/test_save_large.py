"""Files that save hashes as it sends them (Store.put_new_file): one read of the file instead of two, the same
guarantees: the manifest holds the SHA-256 of exactly the bytes committed, a file that changes while it is sent is
refused with nothing committed, and a save killed midway is resumed by the next."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from gradient_jupyter.engine import IntegrityError, LocalStore, StoreError
from gradient_jupyter.engine.hashing import block_hashes, file_state
from gradient_jupyter.engine.transfer import load, save

from .helpers import make_folder, read_folder
from .helpers.providers import seaweed_provider, seaweed_store

MIB = 1024**2


def settle(*paths):
    """Last modified a while ago, as a file is that a user saves (a file written this second is hashed first)."""
    old = time.time() - 60
    for path in paths:
        os.utime(path, (old, old))


def small_parts(engine):
    engine.settings.multipart_threshold = engine.settings.part_size = 5 * MIB
    engine.settings.block_threshold = MIB
    engine.settings.block_size = 3 * MIB  # blocks that do not line up with the parts: each is hashed across reads


@pytest.fixture(params=["embedded", "seaweed"])
def where(request, engine):
    """(engine, provider id) of the embedded store or of a SeaweedFS bucket, with small parts."""
    small_parts(engine)
    if request.param == "embedded":
        return engine, engine.registry.default().id
    server, bucket = request.getfixturevalue("seaweed_bucket")
    return engine, seaweed_provider(engine, server, bucket).id


def test_large_files_are_hashed_as_sent_and_round_trip(where, tmp_path):
    engine, pid = where
    files = {"big.bin": os.urandom(13 * MIB + 5), "d/other.bin": os.urandom(6 * MIB), "small.txt": b"small"}
    src = make_folder(tmp_path / "src", files)
    settle(src / "big.bin", src / "d" / "other.bin")
    events = []
    s = save(engine, "hashed-as-sent", src, provider=pid, progress=events.append)
    assert {e.files_total for e in events if e.phase == "hash"} == {1}  # small.txt: the others are read once, to send
    assert s.bytes_sent == sum(map(len, files.values())) and s.files == 3 and s.version.file_count == 3
    entries = {f.path: f for f in engine.datasets.list_files(s.dataset, s.version.version)}
    for rel in ("big.bin", "d/other.bin"):
        sha, size, blocks = block_hashes(src / rel, 3 * MIB)
        assert (entries[rel].sha256, entries[rel].size) == (hashlib.sha256(files[rel]).hexdigest(), size)
        assert sha == entries[rel].sha256
        assert entries[rel].blocks == tuple(blocks) and entries[rel].block_size == 3 * MIB
    load(engine, "hashed-as-sent", tmp_path / "out")
    assert read_folder(tmp_path / "out") == files
    again = save(engine, "hashed-as-sent", src)  # the hash cache learned them as they were sent
    assert again.unchanged and again.bytes_sent == 0
    settle(src / "big.bin")  # a new mtime: not in the hash cache, but of a size the dataset holds: hashed first
    again = save(engine, "hashed-as-sent", src)
    assert again.unchanged and again.bytes_sent == 0


def test_a_file_changed_while_it_is_sent_is_refused_and_nothing_committed(where, tmp_path):
    engine, pid = where
    engine.settings.max_concurrency = 1  # one file after the other: the change lands in the middle of the read
    data = os.urandom(17 * MIB)
    src = make_folder(tmp_path / "src", {"big.bin": data})
    settle(src / "big.bin")

    def change_it(event):
        assert event.phase != "hash" or event.files_total == 0  # not read before it is sent
        if event.phase == "upload" and 0 < event.bytes_done < len(data):
            with open(src / "big.bin", "r+b") as f:  # same size, bytes further on changed
                f.seek(len(data) - 10)
                f.write(b"0123456789")

    with pytest.raises(IntegrityError, match="changed while it was being saved"):
        save(engine, "changing", src, provider=pid, progress=change_it)
    assert engine.datasets.list_versions("changing") == []  # nothing committed
    (left,) = engine.datasets.list_versions("changing", committed=False)
    ds = engine.datasets.get("changing")
    assert engine.store(pid).head(engine.datasets.data_key(ds.id, left.version, "big.bin")) is None  # never completed
    settle(src / "big.bin")
    s = save(engine, "changing", src)  # the re-run commits what the file holds now
    load(engine, "changing", tmp_path / "out")
    assert (tmp_path / "out" / "big.bin").read_bytes() == (src / "big.bin").read_bytes() and s.version.is_committed


@pytest.mark.parametrize("block_size", [None, 3 * MIB])
@pytest.mark.parametrize("kind", ["embedded", "seaweed"])
def test_put_new_file_returns_the_hashes_of_the_bytes_written_or_refuses_a_change(kind, block_size, tmp_path, request):
    if kind == "embedded":
        store = LocalStore(tmp_path / "managed")
    else:
        store = seaweed_store(*request.getfixturevalue("seaweed_bucket"))
    for name, size in (("small.bin", 1000), ("big.bin", 13 * MIB + 1)):
        data = os.urandom(size)
        path = tmp_path / name
        path.write_bytes(data)
        settle(path)
        sent = []
        sha, got, blocks = store.put_new_file(
            f"te1/{name}", path, state=file_state(path.stat()), block_size=block_size, progress=sent.append
        )
        assert (sha, got) == (hashlib.sha256(data).hexdigest(), size)
        assert tuple(blocks) == (tuple(block_hashes(path, block_size)[2]) if block_size else ())
        assert sum(sent) == size and store.get(f"te1/{name}") == data
        before = file_state(path.stat())
        with open(path, "r+b") as f:  # changed after the caller looked at it: refused when opened
            f.write(b"x")
        with pytest.raises(IntegrityError, match="changed while it was being saved"):
            store.put_new_file(f"te1/changed-{name}", path, state=before, block_size=block_size)
        assert store.head(f"te1/changed-{name}") is None


def test_a_save_killed_midway_is_resumed_without_sending_the_large_file_again(engine, seaweed_bucket, tmp_path):
    seaweed, bucket = seaweed_bucket
    small_parts(engine)
    p = seaweed_provider(engine, seaweed, bucket)
    files = {"first.bin": os.urandom(6 * MIB), "second.bin": os.urandom(11 * MIB)}
    src = make_folder(tmp_path / "src", files)
    settle(src / "first.bin", src / "second.bin")
    engine.settings.max_concurrency = 1  # one after the other
    killed = []

    def kill_after_the_first(event):
        assert event.phase != "hash" or event.files_total == 0  # not read before they are sent
        if event.phase == "upload" and event.files_done >= 1 and not killed:
            killed.append(event.files_done)
            seaweed.kill()

    try:
        with pytest.raises(StoreError):
            save(engine, "resumed", src, provider=p.id, progress=kill_after_the_first)
        assert killed
    finally:
        seaweed.start()
    assert engine.datasets.list_versions("resumed") == []
    again = save(engine, "resumed", src)
    # the one that arrived before the crash (the larger goes first) is copied, the other sent
    assert again.bytes_resumed in (6 * MIB, 11 * MIB) and again.bytes_sent + again.bytes_resumed == 17 * MIB
    load(engine, "resumed", tmp_path / "out")
    assert read_folder(tmp_path / "out") == files


def test_small_files_of_a_new_dataset_are_read_once_and_round_trip(where, tmp_path):
    engine, pid = where
    files = {f"d{i % 3}/f{i}.bin": os.urandom(1000 + i) for i in range(30)}
    files["empty"] = b""
    src = make_folder(tmp_path / "src", files)
    settle(*(src / rel for rel in files))
    events = []
    s = save(engine, "small-once", src, provider=pid, progress=events.append)
    assert {e.files_total for e in events if e.phase == "hash"} == {0}  # nothing read before it is sent
    assert s.bytes_sent == sum(map(len, files.values())) and s.version.file_count == len(files)
    entries = {f.path: f for f in engine.datasets.list_files(s.dataset, s.version.version)}
    assert {p: e.sha256 for p, e in entries.items()} == {p: hashlib.sha256(d).hexdigest() for p, d in files.items()}
    load(engine, "small-once", tmp_path / "out")
    assert read_folder(tmp_path / "out") == files
    again = save(engine, "small-once", src)
    assert again.unchanged and again.bytes_sent == 0
