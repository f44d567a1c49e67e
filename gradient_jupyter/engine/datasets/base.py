"""What every part of Datasets shares: the engine, the object keys, JSON objects in the bucket, and the calls one part
makes of another (declared here for the type checker; each is defined in the part named beside it)."""

from __future__ import annotations

import builtins
import json
import logging
from typing import TYPE_CHECKING

from .. import records
from ..errors import NotFound
from ..layout import Layout
from ..models import Dataset, FileEntry, Tag, Version
from ..providers import Provider
from ..records import BadRecord
from ..stores import Store
from ..stores.contract import WriteMode
from .caches import LatestVersions, ManifestCache, NameCache

if TYPE_CHECKING:
    from ..core import Engine

log = logging.getLogger("gradient_jupyter")
DATASET_FORMAT = "gradient-jupyter/dataset@1"


class Manifests(dict):
    """Version id -> its manifest, or None while uncommitted: a dataset's versions as read from the bucket now
    (versions.py `manifests`). `bad` holds the versions whose manifest was refused (engine/records.py)."""

    def __init__(self, read: dict[str, dict | None] | None = None, bad: dict[str, BadRecord] | None = None):
        super().__init__(read or {})
        self.bad = dict(bad or {})


def latest_committed(manifests: dict[str, dict | None]) -> str | None:
    """The one rule for `latest`: the version whose manifest was committed last (its `committedAt`, then its id),
    among `manifests` (None: nothing committed). A refused manifest (`Manifests.bad`) may be the newest one, so then
    which one is latest cannot be known: its BadRecord is raised, naming its key (docs/threat-model.md)."""
    for exc in getattr(manifests, "bad", {}).values():
        raise exc
    committed = [(m["committedAt"], v) for v, m in manifests.items() if m is not None]
    return max(committed)[1] if committed else None


def skipped(exc: BadRecord) -> None:
    """A bad record met in a listing: the others still show; the log names the key."""
    log.warning("Skipped: %s", exc.message)


class Part:
    """State and helpers shared by the parts of Datasets (catalog, versions, commit, files, tags)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.team = engine.team_id
        self.layout = Layout(self.team)  # every object key (engine/layout.py)
        self._where: dict[str, str] = {}  # dataset id -> provider id: a hint, always re-checked in the bucket
        self.names = NameCache(engine.home / "cache" / "dataset-names.json")
        self.manifest_cache = ManifestCache(engine.home / "cache" / "manifests")
        self.latest_versions = LatestVersions(engine.home / "cache" / "latest-versions.json")

    # -- keys (engine/layout.py) -----------------------------------------------------------------------------
    def data_key(self, ds_id: str, version: str, path: str) -> str:
        return self.layout.data(ds_id, version, path)

    def manifest_key(self, ds_id: str, version: str) -> str:
        return self.layout.manifest(ds_id, version)

    # -- json objects ------------------------------------------------------------------------------------------
    @staticmethod
    def _read_json(store: Store, key: str, limit: int = records.MAX_RECORD) -> dict | None:
        """A JSON object from the bucket of at most `limit` bytes (no more is read), or None if missing; each
        caller checks its fields (engine/records.py)."""
        try:
            raw = store.get_bytes(key, limit=limit)
        except NotFound:
            return None
        return records.read_json(raw, key, limit)

    @staticmethod
    def _write_json(store: Store, key: str, value: dict, *, mode: WriteMode = "overwrite") -> None:
        store.put_bytes(key, json.dumps(value, indent=1, sort_keys=True).encode(), mode=mode)

    # -- providers and stores ------------------------------------------------------------------------------------
    def _providers(self) -> list[Provider]:
        return self.engine.registry.list()

    def writable(self, ds: Dataset, what: str) -> Dataset:
        """`ds`, if its provider takes writes; else Forbidden `read-only-provider` (engine/providers.py), raised
        before anything is sent. `what` says what was refused, in the user's words."""
        self.engine.registry.get(ds.storage_provider_id).check_writable(what)
        return ds

    def _store_of(self, ds: Dataset) -> Store:
        return self.engine.store(ds.storage_provider_id)

    def _listed(self, read, items) -> builtins.list:
        """`read` over items in parallel, for a listing: an item whose records are bad is skipped (None)."""

        def guarded(item):
            try:
                return read(item)
            except BadRecord as exc:
                skipped(exc)
                return None

        return self.engine.map(guarded, items)

    if TYPE_CHECKING:
        # catalog.py
        def get(self, ds, *, provider=None) -> Dataset: ...

        def _dataset_json(self, store: Store, ds_id: str) -> dict | None: ...

        def _remember(self, data: dict, provider: Provider) -> Dataset: ...

        # versions.py
        def get_version(self, ds, version: str) -> Version: ...

        def _version(
            self,
            ds: Dataset,
            version: str,
            tags: dict[str, builtins.list[str]] | None = None,
            manifests: dict[str, dict] | None = None,
        ) -> Version | None: ...

        def _version_ids(self, ds: Dataset, store: Store | None = None) -> builtins.list[str]: ...

        def _cached_manifest(self, ds: Dataset, version: str) -> dict | None: ...

        def _confirmed(self, ds: Dataset, version: str, cached: dict | None) -> dict | None: ...

        def _version_records(self, ds: Dataset, version: str, store: Store | None = None) -> builtins.list: ...

        def _made_version(
            self,
            ds: Dataset,
            version: str,
            manifest: dict | None,
            info: dict | None,
            override: dict | None,
            tags: dict[str, builtins.list[str]] | None,
            manifests: dict[str, dict] | None,
        ) -> Version | None: ...

        def manifest(self, ds: Dataset, version: str) -> dict | None: ...

        def manifests(self, ds: Dataset) -> dict[str, dict | None]: ...

        def committed_index(
            self, ds: Dataset, manifests: dict[str, dict | None] | None = None
        ) -> dict[tuple[str, int], str]: ...

        def still_referenced(self, ds: Dataset, manifests: dict[str, dict | None], keys) -> set[str]: ...

        # files.py
        def _pointers(self, ds: Dataset, version: str) -> dict[str, FileEntry | None]: ...

        def _staged(self, ds: Dataset, version: str, *, with_hashes: bool = False) -> dict[str, FileEntry]: ...

        def pending_of(self, ds: Dataset, version: str) -> builtins.list[FileEntry] | None: ...

        def save_state(self, ds: Dataset, version: str) -> tuple[builtins.list[FileEntry], bool] | None: ...

        # tags.py
        def _read_tags(self, ds: Dataset, store: Store | None = None) -> builtins.list[Tag]: ...

        def _tags_by_version(
            self, ds: Dataset, tags: builtins.list[Tag] | None = None
        ) -> dict[str, builtins.list[str]]: ...

        def _untag(self, ds: Dataset, version: str) -> None: ...
