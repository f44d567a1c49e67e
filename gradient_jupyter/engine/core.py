"""The engine: settings, the provider registry and one store per provider, for every front end to share."""

from __future__ import annotations

import inspect
import logging
import os
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .defaults import Settings, config_files
from .errors import Conflict, GradientError
from .providers import Provider, ProviderRegistry
from .stores import Store
from .work import Parts, Workers

if TYPE_CHECKING:
    from .content.cache import ContentCache
    from .content.reader import FileReader
    from .datasets import Datasets
    from .hashcache import HashCache

log = logging.getLogger(__name__)
_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def configured() -> Settings:
    """The settings as a kernel or the console script sees them: those of the Jupyter config files (a
    GradientStorage), or, when there is no such file, the defaults without importing traitlets."""
    if not config_files():
        return Settings()
    from .settings import GradientStorage  # traitlets: only when a config file is there

    return GradientStorage.from_jupyter_config()


def _after_fork() -> None:
    """In a forked child: no engine keeps a client, pool, connection or lock of the parent, so gradient:// and
    saves work there (tests/test_processes.py)."""
    for engine in list(_engines):
        engine.forget_process_state()


os.register_at_fork(after_in_child=_after_fork)


class Engine:
    """Everything a front end needs. Plain Python: imports nothing from Jupyter."""

    def __init__(self, settings: Settings | None = None, *, team_id: str = "", providers: tuple = ()):
        """`team_id` and `providers` (Provider objects, kept in memory only): what a gradient:// reference shipped
        to a worker names (SPEC 9.1); by default the data home's and the team file's."""
        self.settings = settings or configured()
        self._listeners: list[Callable[[], Callable | None]] = []
        self._listeners_lock = threading.Lock()
        s = self.settings
        managed = {
            "bucket": s.managed_bucket if s.managed_endpoint else "gradient-managed",
            "endpoint": s.managed_endpoint or None,
            "region": s.managed_region or None,
            "accessKey": s.managed_access_key or None,
            "secretAccessKey": s.managed_secret_key or None,
        }
        self.registry = ProviderRegistry(
            s.home,
            team_id=s.team_id,
            managed_config=managed,
            on_change=self.changed,
            team_file=s.team_path,
            pinned_team=team_id,
            given=providers,
        )
        self._stores: dict[tuple, Store] = {}
        self._lock = threading.Lock()
        self._datasets: Datasets | None = None
        self._hash_cache: HashCache | None = None
        self.workers = Workers(max(16, s.max_concurrency))  # every parallel step of the engine runs on these
        self.parts = Parts(max(8, s.max_concurrency), name="gradient-part")  # the ranges and blocks they wait on
        self._content_cache: ContentCache | None = None
        _engines.add(self)

    def forget_process_state(self) -> None:
        """Drop what belongs to this process's threads (stores and their clients, the thread pool, SQLite
        connections, locks), to be made again on use: called in a forked child, where the parent's threads are
        gone and a lock they held would never be released."""
        self._lock = threading.Lock()
        self._listeners_lock = threading.Lock()
        self._stores = {}
        self.workers = Workers(self.workers.threads)
        self.parts = Parts(self.parts.threads, name="gradient-part")
        self.registry.forget_connections()
        self._datasets = self._hash_cache = self._content_cache = None

    @property
    def datasets(self) -> Datasets:
        """The datasets of this team (engine/datasets/)."""
        if self._datasets is None:
            from .datasets import Datasets

            self._datasets = Datasets(self)
        return self._datasets

    @property
    def hash_cache(self) -> HashCache:
        """SHA-256s of local files, kept while their size, mtime and inode are unchanged."""
        with self._lock:
            if self._hash_cache is None:
                from .hashcache import HashCache

                self._hash_cache = HashCache(self.home / "cache" / "hashes.sqlite3", self.parts)
        return self._hash_cache

    @property
    def content_cache(self) -> ContentCache:
        """Verified file bytes by SHA-256, shared by reading in place, mount and load (engine/content/cache.py)."""
        with self._lock:
            if self._content_cache is None:
                from .content.cache import ContentCache

                self._content_cache = ContentCache(
                    self.home / "cache" / "content", self.settings.cache_size, pool=self.parts
                )
        return self._content_cache

    def reader(self, ds, version: str, entry) -> FileReader:
        """A verified reader of one file of a committed version, through the content cache (content/reader.py)."""
        from .content.reader import FileReader

        return FileReader(self.content_cache, self.store(ds.storage_provider_id), entry, f"{ds.name}:{version}")

    @property
    def home(self) -> Path:
        """The data home (docs/configuration.md)."""
        return self.registry.home

    @property
    def team_id(self) -> str:
        """The team's id: the team file's, else this installation's (engine/providers.py)."""
        return self.registry.team_id

    @property
    def managed_quota(self) -> int:
        """Gradient Managed's quota in bytes: the team file's when it says, else the setting."""
        team, _ = self.registry.team.current()
        if team is not None and team.managed_quota is not None:
            return team.managed_quota
        return self.settings.managed_quota

    def store(self, provider: Provider | str) -> Store:
        """The store of a provider (by object, id or name); one per provider config, shared by threads."""
        if isinstance(provider, str):
            provider = self.registry.get(provider)
        config = provider.store_config()  # a team provider's secrets, read now: a rotated one makes a new store
        key = (provider.id, tuple(sorted((k, v) for k, v in config.items() if v is not None)))
        with self._lock:
            store = self._stores.get(key)
            if store is None:
                store = self._stores[key] = self._make_store(provider, config)
        return store

    def lookup_store(self, provider: Provider) -> Store:
        """The store of a provider for lookups across providers (finding and listing datasets, usage): each try
        waits `lookup_timeout` seconds, not the store's full patience, and no try starts after twice that: an
        endpoint whose TCP connect never answers costs a lookup two tries (five cost ~11 s), while quick transient
        errors (resets, 503s) are still retried as usual."""
        t = self.settings.lookup_timeout
        return self.store(provider).variant(timeout=t, retry_timeout=2 * t)

    def _make_store(self, provider: Provider, c: dict) -> Store:
        s = self.settings
        quota = self.managed_quota if provider.is_gradient_managed else None
        if provider.embedded:
            from .stores.local import LocalStore

            return LocalStore(self.home / "managed", quota=quota)
        from .stores.s3 import S3Store, obstore_usable

        store_class = S3Store
        if not obstore_usable():
            from .stores.s3_forked import ForkedS3Store as store_class

        return store_class(
            c["bucket"],
            endpoint=c.get("endpoint"),
            region=c.get("region"),
            access_key=c.get("accessKey"),
            secret_key=c.get("secretAccessKey"),
            profile=c.get("profile"),
            signature_version=c.get("signatureVersion"),
            timeout=s.store_timeout,
            max_pool=max(10, s.max_concurrency + 4),
            send_checksums=s.send_checksums,
            quota=quota,
            part_size=s.part_size,
            multipart_threshold=s.multipart_threshold,
            regions_file=self.home / "cache" / "bucket-regions.json",
        )

    # -- change events: every front end of this process (the panel) hears what the others changed ------------
    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call `listener(what)` after each change this engine makes; `what` is "providers" or "datasets".

        A bound method is held weakly (a panel that is gone is forgotten); listeners run in the thread that made
        the change, so they must return quickly."""
        ref = weakref.WeakMethod(listener) if inspect.ismethod(listener) else (lambda: listener)
        with self._listeners_lock:
            self._listeners.append(ref)

    def changed(self, what: str) -> None:
        """Tell the listeners that providers or datasets changed (called by the engine's own operations)."""
        with self._listeners_lock:
            self._listeners = [ref for ref in self._listeners if ref() is not None]
            listeners = [ref() for ref in self._listeners]
        for listener in listeners:
            if listener is None:
                continue
            try:
                listener(what)
            except Exception:  # a listener's failure is its own: the change itself succeeded
                log.exception("A change listener failed")

    def team_prefix(self) -> str:
        return f"{self.team_id}/"

    # -- providers: registry rules plus what needs the buckets -------------------------------------------------
    def delete_provider(self, id_or_name: str, *, force: bool = False) -> Provider:
        """Delete a provider; refused (409) while datasets live in it, unless force."""
        provider = self.registry.get(id_or_name)
        if not force and not provider.is_gradient_managed and not provider.is_team_default:
            try:
                count = self.dataset_count(provider)
            except GradientError as exc:  # fail closed: "could not look" is not "nothing there"
                raise Conflict(
                    f"Could not check whether datasets use storage provider {provider.name!r} "
                    f"({exc.message}). Fix the provider and try again, or delete it anyway with --force "
                    "(REST: ?force=true); any data stays in the bucket.",
                    reason="provider-unchecked",
                ) from exc
            if count:
                raise Conflict(
                    f"{count} dataset(s) use storage provider {provider.name!r}: delete them first, or "
                    "delete the provider anyway with --force (REST: ?force=true); their data stays in "
                    "the bucket.",
                    reason="provider-in-use",
                )
        return self.registry.delete(provider.id)

    def dataset_count(self, provider: Provider) -> int:
        """How many datasets of this team live in the provider's bucket: dataset records, good or bad (a bad one
        may still be someone's data), not empty folders some stores keep after a delete. A store error is raised,
        never taken as 0."""
        bad: list[str] = []
        return len(self.datasets.list_in(provider, bad=bad)) + len(bad)

    def map(self, fn: Callable, items, limit: int | None = None, stop: threading.Event | None = None) -> list:
        """fn over items on the engine's threads, results in order (engine/work.py); the first error is raised and
        sets `stop`."""
        return self.workers.map(fn, items, limit, stop)

    def utilization(self) -> dict:
        """Bytes used under the team folder per provider (`draftBytes` of them under uncommitted versions: drafts,
        such as an interrupted save leaves), and the managed quota. One listing of the team folder per provider."""

        def used_bytes(p: Provider):
            try:
                store, prefix = self.lookup_store(p), self.team_prefix()
                listing = list(store.list(prefix))
                return (store.used_bytes(prefix, listing), self.datasets.layout.draft_bytes(listing)), None
            except Exception as exc:  # one unreachable bucket must not hide the others
                return (None, None), getattr(exc, "message", type(exc).__name__)

        rows = []
        managed = {}
        providers = self.registry.list()
        # a dead bucket delays no other
        for p, ((used, drafts), error) in zip(providers, self.map(used_bytes, providers), strict=True):
            rows.append(
                {
                    "id": p.id,
                    "name": p.name,
                    "usedBytes": used,
                    "draftBytes": drafts,
                    **({"error": error} if error else {}),
                }
            )
            if p.is_gradient_managed:
                quota = self.managed_quota
                managed = {
                    "id": p.id,
                    "quotaBytes": quota,
                    "usedBytes": used,
                    "remainingBytes": None if used is None else max(0, quota - used),
                }
        return {"storageProviders": rows, "managed": managed}
