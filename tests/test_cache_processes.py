"""Many processes filling the content cache at once never fail each other (SPEC 9.1): each joins a large file's
verified blocks into its whole-file entry, and the first to finish lets the blocks go."""

from __future__ import annotations

import hashlib
import multiprocessing
import os

import pytest

from gradient_jupyter.api import default_engine
from gradient_jupyter.engine import Engine, GradientStorage, transfer

from .helpers.files import make_folder

pytestmark = pytest.mark.slow

PROCESSES = 4


def whole_file(barrier, queue):
    """Wait for the others, then ask for the whole file in the cache (what mount links and load copies)."""
    try:
        engine = default_engine()
        ds, version = engine.datasets.resolve("big")
        entry = next(iter(engine.datasets.list_files(ds, version.version)))
        reader = engine.reader(ds, version.version, entry)
        barrier.wait(30)
        with open(reader.local_file(), "rb") as f:
            queue.put(hashlib.sha256(f.read()).hexdigest())
    except Exception as exc:  # reported to the test, with its type
        queue.put(f"{type(exc).__name__}: {exc}")


def test_processes_filling_the_same_large_file_at_once_all_get_it(aws_env, tmp_path):
    data = os.urandom(6 * 1024**2)
    saver = Engine(GradientStorage(block_size=64 * 1024, block_threshold=128 * 1024))
    transfer.save(saver, "big", make_folder(tmp_path / "src", {"big.bin": data}))
    context = multiprocessing.get_context("fork")
    for _ in range(6):
        default_engine().content_cache.clear()
        barrier, queue = context.Barrier(PROCESSES), context.Queue()
        children = [context.Process(target=whole_file, args=(barrier, queue)) for _ in range(PROCESSES)]
        for child in children:
            child.start()
        got = [queue.get(timeout=120) for _ in children]
        for child in children:
            child.join(30)
        assert got == [hashlib.sha256(data).hexdigest()] * PROCESSES
