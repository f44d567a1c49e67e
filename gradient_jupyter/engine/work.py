"""The engine's thread pools: `Workers`, on which every parallel step (reading records, hashing, uploads,
downloads) runs, and `Parts`, for the leaf tasks those steps wait on (byte ranges, blocks read ahead).

Threads are made once per engine, not per call, so a server answering many requests holds a bounded number of
threads. `map` lets its calling thread work too: a map running inside another map's item (listing versions while
saving) never waits for a free thread, so nesting cannot deadlock even when every pool thread is busy. For the
same reason there is no `submit`: a task waiting on a queued task of the same pool is how pools deadlock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Workers:
    """A lazily started pool of `threads` threads, shared by every call of one engine."""

    def __init__(self, threads: int, name: str = "gradient-engine"):
        self.threads = max(1, threads)
        self._name = name
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0
        self._lock = threading.Lock()

    @property
    def pool(self) -> ThreadPoolExecutor:
        with self._lock:
            # A forked child (multiprocessing, Dask) inherits the pool but none of its threads: it makes its own.
            if self._pool is None or self._pid != os.getpid():
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix=self._name)
                self._pid = os.getpid()
            return self._pool

    def map(
        self, fn: Callable[[Any], T], items: Iterable, limit: int | None = None, stop: threading.Event | None = None
    ) -> list[T]:
        """fn(item) for every item, results in the items' order, at most `limit` at once (default: the pool's size).

        On the first error (a KeyboardInterrupt too, even one that comes while waiting) no further item starts and
        `stop` is set, which the items running can watch to end early (a save's uploads do); items still running
        are waited for, then that error is raised. A Ctrl-C while waiting raises at once."""
        items = list(items)
        if len(items) <= 1:
            return [fn(i) for i in items]
        run = _Run(fn, items, stop)
        helpers = [self.pool.submit(run.work) for _ in range(min(limit or self.threads, len(items)) - 1)]
        try:
            run.work()
            for helper in helpers:
                if not helper.cancel():  # a helper that never started is dropped; a running one is waited for
                    helper.result()
        except BaseException as exc:  # Ctrl-C while waiting: nothing more starts, and what runs is told to stop
            run.failed(exc)
            raise
        if run.errors:
            raise run.errors[0]
        return run.results

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


class Parts(Workers):
    """The engine's pool for leaf tasks: one byte range of a large file (load) or one block a reader reads ahead
    (content/reader.py), each waiting on nothing else of the engine. That is why `submit` is safe here and not on
    `Workers`, whose steps wait on these: a step never waits on a task queued behind it in its own pool."""

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        return self.pool.submit(fn, *args)


class _Run:
    """One `map` call: its items, taken in order by the calling thread and the pool's helpers, their results, and
    the first error, after which no item starts."""

    def __init__(self, fn: Callable[[Any], Any], items: list, stop: threading.Event | None):
        self.fn, self.items, self.stop = fn, items, stop
        self.results: list[Any] = [None] * len(items)
        self.errors: list[BaseException] = []
        self.taken = iter(range(len(items)))
        self.lock = threading.Lock()

    def work(self) -> None:
        while True:
            with self.lock:
                if self.errors:
                    return
                i = next(self.taken, None)
            if i is None:
                return
            try:
                self.results[i] = self.fn(self.items[i])
            except BaseException as exc:  # handed to the caller of map, KeyboardInterrupt included
                self.failed(exc)
                return

    def failed(self, exc: BaseException) -> None:
        with self.lock:
            self.errors.append(exc)
        if self.stop is not None:
            self.stop.set()
