"""gradient:// in other processes (SPEC 9.1): forked after the parent read through an S3 store, spawned, and
pickled as a reference that holds no secret."""

from __future__ import annotations

import hashlib
import multiprocessing
import pickle

import fsspec
import pytest

import gradient_jupyter
from gradient_jupyter.api import default_engine

from .helpers.files import make_folder
from .helpers.providers import seaweed_provider

pytestmark = pytest.mark.slow

DATA = {"a.bin": bytes(range(256)) * 12_000, "t/b.csv": b"x,y\n1,2\n"}


@pytest.fixture
def saved(seaweed_bucket, tmp_path):
    """Dataset `shared` on SeaweedFS, read once through gradient:// by this process (its S3 store is in use)."""
    server, bucket = seaweed_bucket
    seaweed_provider(default_engine(), server, bucket)
    gradient_jupyter.save("shared", make_folder(tmp_path / "src", DATA), provider="weed", progress=False)
    fs = fsspec.filesystem("gradient", skip_instance_cache=True)
    assert fs.cat("shared/a.bin") == DATA["a.bin"]
    return fs


def read_in_child(fs, queue):
    """What a child process reads, from S3 again (its content cache emptied first)."""
    default_engine().content_cache.clear()
    queue.put({path: hashlib.sha256(fs.cat(f"shared/{path}")).hexdigest() for path in DATA})


def expected():
    return {path: hashlib.sha256(data).hexdigest() for path, data in DATA.items()}


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_child_process_reads_what_the_parent_read(saved, method):
    context = multiprocessing.get_context(method)
    queue = context.Queue()
    child = context.Process(target=read_in_child, args=(saved, queue))
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
        pytest.fail(f"the {method} child hangs")
    assert child.exitcode == 0
    assert queue.get(timeout=5) == expected()


def test_a_pool_of_forked_workers_reads_while_the_parent_reads_too(saved):
    with multiprocessing.get_context("fork").Pool(3) as pool:
        got = pool.map_async(lambda_free_read, ["a.bin", "t/b.csv", "a.bin"])
        assert saved.cat("shared/t/b.csv") == DATA["t/b.csv"]
        assert got.get(60) == [DATA["a.bin"], DATA["t/b.csv"], DATA["a.bin"]]


def lambda_free_read(path):
    return fsspec.filesystem("gradient").cat(f"shared/{path}")


def test_the_pickle_is_a_reference_without_the_secret(saved, seaweed):
    raw = pickle.dumps(saved)
    assert seaweed.secret_key.encode() not in raw and seaweed.access_key.encode() not in raw
    assert pickle.loads(raw).cat("shared/t/b.csv") == DATA["t/b.csv"]
