"""Datasets, versions, files and tags, kept in the bucket itself, so any machine sees the same state.

Everything read back from the bucket is checked by engine/records.py first (docs/threat-model.md).

Layout under `<teamId>/`:
  names/<lowercase name>.json                         claim of a dataset name (create-only: one winner per team)
  datasets/<ds>/dataset.json                          the dataset record
  datasets/<ds>/tags/<tag>.json                       {"version": ...}; setting again overwrites (moves it)
  datasets/<ds>/versions/<v>/version.json             created with the version (create-only: ids never collide)
  datasets/<ds>/versions/<v>/data/<path>              bytes this version added or changed (written by save, or
                                                      copied from uploads/ by the commit; never by a put)
  datasets/<ds>/versions/<v>/uploads/<random id>      uncommitted only: bytes put by REST or a write URL
  datasets/<ds>/versions/<v>/refs/<path>              uncommitted only: a put file -> its upload, or a committed
                                                      object identical to it, or {"deleted": true}
  datasets/<ds>/versions/<v>/pending.json             what a save is uploading (lets a re-run reuse what arrived)
                                                      and which committed objects it reuses (deletes keep them)
  datasets/<ds>/versions/<v>/committing.json          a commit under way (one committer copies uploads at a time)
  datasets/<ds>/versions/<v>/message.json             a message changed after commit
  datasets/<ds>/versions/<v>/manifest.json            the commit point, create-only
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from . import history, records
from .errors import BadInput, Conflict, GradientError, Immutable, IntegrityError, NotFound
from .ids import (
    DATASET_ID,
    VERSION_ID,
    check_dataset_name,
    check_file_path,
    check_tag_name,
    check_version_id,
    new_dataset_id,
    new_version_id,
    parse_ref,
)
from .layout import Layout
from .models import Dataset, FileEntry, Tag, Version
from .providers import Provider, now_iso
from .records import MANIFEST_FORMAT, SHA256, BadRecord, manifest_entries, manifest_file  # noqa: F401 - the names others import
from .stores import CHUNK, Store

log = logging.getLogger("gradient_jupyter")
DATASET_FORMAT = "gradient-jupyter/dataset@1"


def latest_committed(manifests: dict[str, dict | None]) -> str | None:
    """The version id of the most recently committed manifest among `manifests` (None: nothing committed), as
    `latest` resolves it."""
    committed = [(m["committedAt"], v) for v, m in manifests.items() if m is not None]
    return max(committed)[1] if committed else None


def skipped(exc: BadRecord) -> None:
    """A bad record met in a listing: the others still show; the log names the key."""
    log.warning("Skipped: %s", exc.message)


def verified_stream(store: Store, entry: FileEntry, what: str) -> Iterator[bytes]:
    """The bytes of one manifest entry, checked while they stream; a missing object is named by its path."""
    try:
        chunks = store.stream(entry.object_key, CHUNK)
    except NotFound as exc:
        raise IntegrityError(
            f"{what}: the bytes of {entry.path!r} are missing from the store (object "
            f"{entry.key!r} was deleted behind our back)."
        ) from exc
    return verified_chunks(chunks, entry, what)


def verified_chunks(chunks, entry: FileEntry, what: str) -> Iterator[bytes]:
    """Pass chunks through, checking size and SHA-256 against `entry`; IntegrityError names the file."""
    h, size = hashlib.sha256(), 0
    for chunk in chunks:
        size += len(chunk)
        if size > entry.size:
            raise IntegrityError(
                f"{what}: {entry.path!r} in the store is larger than its manifest says "
                f"({entry.size} bytes): it was changed behind our back."
            )
        h.update(chunk)
        yield chunk
    if size != entry.size or (entry.sha256 and h.hexdigest() != entry.sha256):
        raise IntegrityError(
            f"{what}: {entry.path!r} in the store does not match its manifest "
            f"(expected {entry.size} bytes, SHA-256 {entry.sha256}; got {size} bytes, "
            f"SHA-256 {h.hexdigest()}): it was changed or corrupted behind our back."
        )


Unsearched = list[tuple[Provider, GradientError]]  # providers a lookup could not search, and why


class Datasets:
    """The datasets of one team across all its providers' buckets."""

    def __init__(self, engine):
        self.engine = engine
        self.team = engine.team_id
        self.layout = Layout(self.team)  # every object key (engine/layout.py)
        self._where: dict[str, str] = {}  # dataset id -> provider id: a hint, always re-checked in the bucket
        self._lock = threading.Lock()

    # -- keys (engine/layout.py) -----------------------------------------------------------------------------
    def data_key(self, ds_id: str, version: str, path: str) -> str:
        return self.layout.data(ds_id, version, path)

    def manifest_key(self, ds_id: str, version: str) -> str:
        return self.layout.manifest(ds_id, version)

    # -- json objects ------------------------------------------------------------------------------------------
    @staticmethod
    def _read_json(store: Store, key: str) -> dict | None:
        """A JSON object from the bucket, or None if missing; each caller checks its fields (engine/records.py)."""
        try:
            raw = store.get_bytes(key)
        except NotFound:
            return None
        return records.parse_json(raw, key)

    def _dataset_json(self, store: Store, ds_id: str) -> dict | None:
        key = self.layout.dataset_record(ds_id)
        data = self._read_json(store, key)
        return None if data is None else records.dataset(data, key, ds_id)

    def _read_claim(self, store: Store, name: str) -> dict | None:
        key = self.layout.claim(name)
        data = self._read_json(store, key)
        return None if data is None else records.claim(data, key, name)

    @staticmethod
    def _write_json(store: Store, key: str, value: dict, *, create_only: bool = False) -> None:
        store.put_bytes(key, json.dumps(value, indent=1, sort_keys=True).encode(), create_only=create_only)

    # -- datasets ----------------------------------------------------------------------------------------------
    def _providers(self) -> list[Provider]:
        return self.engine.registry.list()

    def _store_of(self, ds: Dataset) -> Store:
        return self.engine.store(ds.storage_provider_id)

    def _record(self, data: dict, provider: Provider) -> Dataset:
        """A Dataset from a record that `records.dataset` checked."""
        return Dataset(
            id=data["id"],
            name=data["name"],
            description=data["description"],
            storage_provider_id=provider.id,
            dt_created=data["dtCreated"],
            dt_modified=data["dtModified"],
        )

    def list(self, warnings: list | None = None) -> builtins.list[Dataset]:
        """Every dataset of the team, by name, from every provider that answers. Providers are asked in parallel
        with short timeouts (`lookup_timeout`); one that cannot be read is skipped, and a `Skipped` naming it and
        why is appended to `warnings` if given. A dataset seen through two providers on one bucket is listed once.
        A bad dataset record is skipped too, with a warning in the log naming its key."""

        def one(provider: Provider):
            try:
                return provider, self.list_in(provider, lookup=True), None
            except GradientError as exc:
                return provider, [], exc

        found, seen = [], set()
        for provider, datasets, exc in self.engine.map(one, self._providers()):
            if exc is not None:
                log.warning("Skipped storage provider %s while listing datasets: %s", provider.name, exc.message)
                if warnings is not None:
                    warnings.append(Skipped(provider.id, provider.name, exc.message, exc.reason))
                continue
            for ds in datasets:
                if ds.id not in seen:
                    seen.add(ds.id)
                    found.append(ds)
                    self._where.setdefault(ds.id, provider.id)
        return sorted(found, key=lambda d: d.name.lower())

    def list_in(
        self, provider: Provider, *, lookup: bool = False, bad: builtins.list | None = None
    ) -> builtins.list[Dataset]:
        """The datasets of this team in one provider's bucket; bad records are skipped (their keys appended to
        `bad` if given), store errors raised. `lookup`: through the short-timeout store."""
        store = self.engine.lookup_store(provider) if lookup else self.engine.store(provider)
        prefixes = store.list_prefixes(self.layout.datasets())

        def read(prefix: str) -> dict | None:
            ds_id = prefix.rstrip("/").rsplit("/", 1)[-1]
            try:
                if not DATASET_ID.fullmatch(ds_id):
                    raise records.bad(prefix, "not a dataset id")
                return self._dataset_json(store, ds_id)  # None: an empty folder some stores keep after a delete
            except BadRecord as exc:
                skipped(exc)
                if bad is not None:
                    bad.append(prefix)
                return None

        return [self._record(data, provider) for data in self.engine.map(read, prefixes) if data]

    def get(self, ds, *, provider=None) -> Dataset:
        """A dataset by Dataset, id or name (names are case-insensitive, and unique per provider's team folder).

        With `provider` (id or name), only that provider is searched. Otherwise every provider is, in parallel
        with short timeouts; if none has it but one could not be searched, the error says which and why."""
        if isinstance(ds, Dataset):
            return ds
        found, unsearched = self.find(ds, provider=provider)
        if found is not None:
            return found
        if unsearched:  # it may live there: saying "unknown" could lead to a second dataset of the same name
            provider_, exc = unsearched[0]
            raise type(exc)(
                f"Dataset {ds!r} was not found, but storage provider {provider_.name!r} could not be "
                f"searched: {exc.message}",
                reason=exc.reason,
            ) from exc
        raise NotFound(f"Unknown dataset {ds!r}: list datasets with 'datasets list'.", reason="unknown-dataset")

    def find(self, ds: str, *, provider=None) -> tuple[Dataset | None, Unsearched]:
        """(the dataset `ds`, id or name, or None; the providers that could not be searched, with why). With
        `provider`, only that one is searched; otherwise all of them at once, each bounded by `lookup_timeout`."""
        if not isinstance(ds, str) or not ds:
            raise BadInput("Give a dataset id (ds...) or name.")
        check_dataset_name(ds)
        if provider is not None:
            providers = [self.engine.registry.get(provider)]
        else:
            if not DATASET_ID.fullmatch(ds) and (found := self._by_remembered_name(ds)):
                return found, []
            providers = self._providers()
        hint = self._where.get(ds)
        providers.sort(key=lambda p: p.id != hint)
        answers = self.engine.map(lambda p: self._find_in(p, ds), providers)
        for provider_, (data, _) in zip(providers, answers, strict=True):
            if data:
                return self._remember(data, provider_), []
        return None, [(p, exc) for p, (_, exc) in zip(providers, answers, strict=True) if exc is not None]

    def _find_in(self, provider: Provider, ds: str) -> tuple[dict | None, GradientError | None]:
        """(dataset record, None) if `ds` (id or name) lives in this provider, (None, None) if not, (None, error) if
        the provider could not be searched. Lookups use the short-timeout store, and never write."""
        store = self.engine.lookup_store(provider)
        try:
            if DATASET_ID.fullmatch(ds):
                return self._dataset_json(store, ds), None
            data = self._by_claim(store, ds)
            if data:
                self._remember_name(ds, provider.id, data["id"])
            return data, None
        except (BadInput, IntegrityError):
            raise
        except GradientError as exc:
            return None, exc

    def _by_claim(self, store: Store, name: str) -> dict | None:
        """The dataset a name's claim points at, or None. A read never writes: the leftovers of an interrupted
        create or delete are finished by the next writer (`create`), not here."""
        claim = self._read_claim(store, name)
        if claim is None or claim.get("deleting"):  # a delete that was interrupted: the dataset is gone
            return None
        data = self._dataset_json(store, claim["id"])
        if data is None:  # a create interrupted after its claim (or still running): the claim holds the record
            return claim["record"]
        return data if data["name"].lower() == name.lower() else None  # a rename left this claim behind

    # A name resolves through its claim to an id, then to dataset.json: two round trips. The id a name had is kept
    # in the data home, so the next lookup reads dataset.json directly and believes it only if it still has that
    # name: a rename changes the name there, and a delete removes dataset.json first. Anything else: full search.
    def _names_file(self) -> Path:
        return self.engine.home / "cache" / "dataset-names.json"

    def _remembered_names(self) -> dict[str, builtins.list[str]]:
        try:
            names = json.loads(self._names_file().read_text())
        except (OSError, ValueError):
            return {}
        return names if isinstance(names, dict) else {}

    def _remember_name(self, name: str, provider_id: str, ds_id: str) -> None:
        names = self._remembered_names()
        if names.get(name.lower()) == [provider_id, ds_id]:
            return
        names[name.lower()] = [provider_id, ds_id]
        path = self._names_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(names))
        os.replace(tmp, path)  # two processes at once: one entry may be lost, which costs a lookup, nothing more

    def remembered_provider(self, name: str) -> str | None:
        """The id of the provider where this machine last saw dataset `name`, if any (a hint, not a fact)."""
        hint = self._remembered_names().get(name.lower())
        if isinstance(hint, list) and len(hint) == 2 and DATASET_ID.fullmatch(str(hint[1])):
            return str(hint[0])
        return None

    def _by_remembered_name(self, name: str) -> Dataset | None:
        hint = self._remembered_names().get(name.lower())
        if not (isinstance(hint, list) and len(hint) == 2 and DATASET_ID.fullmatch(str(hint[1]))):
            return None
        try:
            provider = self.engine.registry.get(hint[0])
            data = self._dataset_json(self.engine.lookup_store(provider), hint[1])
        except GradientError:
            return None
        if data and data["name"].lower() == name.lower():
            return self._remember(data, provider)
        return None

    def _remember(self, data: dict, provider: Provider) -> Dataset:
        self._where[data["id"]] = provider.id
        return self._record(data, provider)

    def _name_taken(self, name: str, provider: Provider, *, skip: str | None = None) -> bool:
        """Whether `provider` holds a dataset of that name: names are unique per provider's team folder, so a new
        name is checked only where it will live (another provider that cannot be reached blocks nothing)."""
        try:
            found = self.get(name, provider=provider.id)
        except NotFound:
            return False
        return found.id != skip

    def create(self, name: str, *, provider=None, description: str = "") -> Dataset:
        """A new, empty dataset in `provider` (id or name; default: the team default)."""
        check_dataset_name(name)
        if not isinstance(description, str):
            raise BadInput("'description' must be a string.")
        target = self.engine.registry.get(provider) if provider else self.engine.registry.default()
        if self._name_taken(name, target):
            raise Conflict(f"A dataset named {name!r} exists already: choose another name.", reason="duplicate-name")
        stamp = now_iso()
        data = {
            "id": new_dataset_id(),
            "name": name,
            "description": description,
            "dtCreated": stamp,
            "dtModified": stamp,
            "format": DATASET_FORMAT,
        }
        store = self.engine.store(target)
        for _ in range(2):
            try:  # the claim is the create-only write that lets exactly one creator of a name win
                self._write_json(store, self.layout.claim(name), data, create_only=True)
                break
            except Conflict as exc:
                if not self._finish_leftover(store, name):
                    raise Conflict(
                        f"A dataset named {name!r} exists already: choose another name.", reason="duplicate-name"
                    ) from exc
        else:
            raise Conflict(
                f"A dataset named {name!r} is being created by another writer: choose another name or try again.",
                reason="duplicate-name",
            )
        self._write_json(store, self.layout.dataset_record(data["id"]), data)
        self._remember_name(name, target.id, data["id"])
        self.engine.changed("datasets")
        return self._remember(data, target)

    def _finish_leftover(self, store: Store, name: str) -> bool:
        """A writer met the claim of `name`: finish what an interrupted delete or create left. True if the name
        is free now (an interrupted delete was finished), False if it belongs to a dataset."""
        try:
            claim = self._read_claim(store, name)
        except BadRecord as exc:
            raise Conflict(
                f"The name {name!r} is held by a damaged claim: {exc.message}", reason="duplicate-name"
            ) from exc
        if claim is None:  # deleted a moment ago
            return True
        if claim.get("deleting"):
            self._finish_delete(store, claim["id"], name)
            return True
        if claim["record"] and self._dataset_json(store, claim["id"]) is None:  # an interrupted create: finish it
            self._write_json(
                store, self.layout.dataset_record(claim["id"]), {**claim["record"], "format": DATASET_FORMAT}
            )
        return False

    def update(self, ds, *, name: str | None = None, description: str | None = None) -> Dataset:
        current = self.get(ds)
        store = self._store_of(current)
        data = {**current.to_json(), "format": DATASET_FORMAT}
        data.pop("storageProviderId")
        if description is not None:
            if not isinstance(description, str):
                raise BadInput("'description' must be a string.")
            data["description"] = description
        if name is None or name == current.name:
            name = current.name
        renamed = name != current.name
        if renamed:
            check_dataset_name(name)
            if self._name_taken(name, self.engine.registry.get(current.storage_provider_id), skip=current.id):
                raise Conflict(
                    f"A dataset named {name!r} exists already: choose another name.", reason="duplicate-name"
                )
            data["name"] = name
        data["dtModified"] = now_iso()
        if renamed and name.lower() != current.name.lower():
            try:
                self._write_json(store, self.layout.claim(name), data, create_only=True)
            except Conflict as exc:
                raise Conflict(
                    f"A dataset named {name!r} exists already: choose another name.", reason="duplicate-name"
                ) from exc
        else:
            self._write_json(store, self.layout.claim(data["name"]), data)
        self._write_json(store, self.layout.dataset_record(current.id), data)
        if renamed and name.lower() != current.name.lower():
            store.delete([self.layout.claim(current.name)])
        self.engine.changed("datasets")
        return self._record(data, self.engine.registry.get(current.storage_provider_id))

    def delete(self, ds) -> None:
        """Delete a dataset with all its versions, files and tags.

        The name's claim is marked first, so an interrupted delete reads as deleted (and the next create of the
        name finishes it); then dataset.json goes, which hides the dataset from listings and lookups by id."""
        try:
            current = self.get(ds)
        except NotFound:
            if isinstance(ds, str) and not DATASET_ID.fullmatch(ds) and self._finish_deletes_of(ds):
                return  # an earlier delete of this name was cut short: now it is done
            raise
        store = self._store_of(current)
        claim = self._read_claim(store, current.name)
        ours = claim is not None and claim["id"] == current.id  # else the name now belongs to another dataset
        if ours:
            record = {k: v for k, v in current.to_json().items() if k != "storageProviderId"}
            self._write_json(
                store, self.layout.claim(current.name), {**record, "format": DATASET_FORMAT, "deleting": True}
            )
        store.delete([self.layout.dataset_record(current.id)])
        self._finish_delete(store, current.id, current.name if ours else None)
        self._where.pop(current.id, None)
        self.engine.changed("datasets")

    def _finish_deletes_of(self, name: str) -> bool:
        """Finish the interrupted deletes of datasets named `name`, in every provider; True if there was one."""
        found = False
        for provider in self._providers():
            store = self.engine.store(provider)
            claim = self._read_claim(store, name)
            if claim and claim["deleting"]:
                self._finish_delete(store, claim["id"], name)
                found = True
        if found:
            self.engine.changed("datasets")
        return found

    def _finish_delete(self, store: Store, ds_id: str, name: str | None) -> None:
        store.delete(o.key for o in store.list(self.layout.dataset(ds_id)))
        if name is not None:
            store.delete([self.layout.claim(name)])

    # -- versions ----------------------------------------------------------------------------------------------
    def _manifest_cache(self, ds: Dataset, version: str) -> Path:
        # Named by a hash, so no part of a local path ever comes from the bucket (docs/threat-model.md).
        name = hashlib.sha256(f"{ds.storage_provider_id}/{ds.id}/{version}".encode()).hexdigest()
        return self.engine.home / "cache" / "manifests" / f"{name}.json"

    def manifest(self, ds: Dataset, version: str) -> dict | None:
        """The manifest of a committed version (checked: engine/records.py), or None. Manifests are immutable, so
        they are cached locally."""
        check_version_id(version)
        cache = self._manifest_cache(ds, version)
        store = self._store_of(ds)
        key = self.manifest_key(ds.id, version)
        try:
            cached = records.manifest(
                records.parse_json(cache.read_bytes(), str(cache)),
                str(cache),
                ds.id,
                version,
                self.layout.dataset(ds.id),
            )
        except (OSError, BadRecord):
            cached = None
        if cached is not None:
            # Deleting a version removes its manifest: a cheap HEAD tells whether the cached copy still stands.
            if store.head(key) is not None:
                return cached
            cache.unlink(missing_ok=True)
            return None
        data = self._read_json(store, key)
        if data is None:
            return None
        manifest = records.manifest(data, key, ds.id, version, self.layout.dataset(ds.id))
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(manifest))
        os.replace(tmp, cache)
        return manifest

    def _version(
        self,
        ds: Dataset,
        version: str,
        tags: dict[str, builtins.list[str]] | None = None,
        manifests: dict[str, dict] | None = None,
    ) -> Version | None:
        """A version, or None. Its three records are read at once; the manifest read is also put in `manifests`."""
        store = self._store_of(ds)
        manifest, info, override = self.engine.map(
            lambda read: read(),
            [
                lambda: self.manifest(ds, version),
                lambda: self._read_json(store, self.layout.version_record(ds.id, version)),
                lambda: self._read_json(store, self.layout.message(ds.id, version)),
            ],
        )
        if manifest is None and info is None:
            return None
        info = records.version_info(info, self.layout.version_record(ds.id, version)) if info is not None else {}
        if tags is None:
            tags = self._tags_by_version(ds)
        if manifest is not None:
            if manifests is not None:
                manifests[version] = manifest
            files = manifest["files"]
            message = (
                records.message(override, self.layout.message(ds.id, version)) if override else manifest["message"]
            )
            return Version(
                ds.id,
                version,
                message,
                True,
                tuple(sorted(tags.get(version, []))),
                len(files),
                sum(f["size"] for f in files),
                info.get("dtCreated", manifest["committedAt"]),
                manifest["committedAt"],
                info.get("parent"),
                info.get("createdBy"),
            )
        files = self._staged(ds, version)
        return Version(
            ds.id,
            version,
            info.get("message", ""),
            False,
            (),
            len(files),
            sum(f.size for f in files.values()),
            info.get("dtCreated", ""),
            None,
            info.get("parent"),
            info.get("createdBy"),
        )

    def _version_ids(self, ds: Dataset) -> builtins.list[str]:
        ids = []
        for prefix in self._store_of(ds).list_prefixes(self.layout.versions(ds.id)):
            version = prefix.rstrip("/").rsplit("/", 1)[1]
            if VERSION_ID.fullmatch(version):
                ids.append(version)
            else:
                skipped(records.bad(prefix, "not a version id"))
        return ids

    def _listed(self, read, items) -> builtins.list:
        """`read` over items in parallel, for a listing: an item whose records are bad is skipped (None)."""

        def guarded(item):
            try:
                return read(item)
            except BadRecord as exc:
                skipped(exc)
                return None

        return self.engine.map(guarded, items)

    def list_versions(
        self, ds, *, committed: bool | None = True, manifests: dict[str, dict] | None = None, skip_bad: bool = True
    ) -> builtins.list[Version]:
        """Versions newest first; committed=True (default) only committed, False only uncommitted, None all.
        The manifests read on the way are put in `manifests` if given. A version with bad records is skipped
        with a warning, or with `skip_bad=False` refused (which one is latest cannot be known then)."""
        ds = self.get(ds)
        tags, ids = self.engine.map(
            lambda read: read(), [lambda: self._tags_by_version(ds), lambda: self._version_ids(ds)]
        )
        read = self._listed if skip_bad else self.engine.map
        versions = [v for v in read(lambda v: self._version(ds, v, tags, manifests), ids) if v is not None]
        if committed is not None:
            versions = [v for v in versions if v.is_committed == committed]
        return sorted(versions, key=lambda v: (v.dt_committed or v.dt_created, v.version), reverse=True)

    def get_version(self, ds, version: str) -> Version:
        ds = self.get(ds)
        check_version_id(version)
        found = self._version(ds, version)
        if found is None:
            raise NotFound(f"Dataset {ds.name!r} has no version {version!r}.", reason="unknown-version")
        return found

    def create_version(
        self,
        ds,
        *,
        message: str = "",
        pending: builtins.list[FileEntry] | None = None,
        manifests: dict[str, dict | None] | None = None,
        created_by: dict | None = None,
    ) -> Version:
        """A new uncommitted version. `pending` (used by save) records what is about to be uploaded.

        Its lineage is recorded with it: `parent`, the latest committed version (found in `manifests` when the
        caller has read them), and `createdBy` (default: this process, see engine/history.py `created_by`)."""
        ds = self.get(ds)
        if not isinstance(message, str):
            raise BadInput("'message' must be a string.")
        store = self._store_of(ds)
        parent = latest_committed(self.manifests(ds) if manifests is None else manifests)
        created_by = history.created_by() if created_by is None else created_by
        created = now_iso()
        for _ in range(5):
            version = new_version_id()
            try:
                self._write_json(
                    store,
                    self.layout.version_record(ds.id, version),
                    {
                        "version": version,
                        "message": message,
                        "dtCreated": created,
                        "parent": parent,
                        "createdBy": created_by,
                    },
                    create_only=True,
                )
                break
            except Conflict:
                continue
        else:
            raise Conflict("Could not pick a new version id; try again.")
        if pending:
            self._write_json(
                store,
                self.layout.pending(ds.id, version),
                {
                    "files": [
                        {"path": e.path, "size": e.size, "sha256": e.sha256, **self._source(ds, e)} for e in pending
                    ]
                },
            )
        return Version(ds.id, version, message, False, (), 0, 0, created, None, parent, created_by)

    def _source(self, ds: Dataset, entry: FileEntry) -> dict:
        """Where a save's file comes from, compactly: {} (sent now), {"from": v} (v's data/ under the same path)
        or {"key": ...}."""
        if entry.key is None:
            return {}
        version = self.layout.version_of(ds.id, entry.key)
        return {"from": version} if entry.key == self.data_key(ds.id, version, entry.path) else {"key": entry.key}

    def update_version(self, ds, version: str, *, message: str) -> Version:
        ds = self.get(ds)
        current = self.get_version(ds, version)
        if not isinstance(message, str):
            raise BadInput("'message' must be a string.")
        store = self._store_of(ds)
        if current.is_committed:
            self._write_json(store, self.layout.message(ds.id, version), {"message": message})
        else:
            key = self.layout.version_record(ds.id, version)
            info = self._read_json(store, key) or {"version": version}
            records.version_info(info, key)  # refuse to carry a bad record forward
            self._write_json(store, self.layout.version_record(ds.id, version), {**info, "message": message})
        self.engine.changed("datasets")
        return self.get_version(ds, version)

    def delete_version(self, ds, version: str) -> None:
        """Delete a version: its tags, its manifest, and only the objects that nothing else points at: no
        remaining manifest, no file put into an uncommitted version, no save under way."""
        ds = self.get(ds)
        self.get_version(ds, version)
        store = self._store_of(ds)
        self._untag(ds, version)
        store.delete([self.manifest_key(ds.id, version)])  # from here on the version is not committed
        # Read only now: a save or put that reuses an object writes its pointer before checking that a manifest
        # still references it, so either it sees this manifest gone or this delete sees its pointer.
        keep = self._referenced(ds, skip=version)
        store.delete(o.key for o in store.list(self.layout.version(ds.id, version)) if o.key not in keep)
        self._untag(ds, version)  # a tag set meanwhile (set_tag checks the manifest after writing the tag)
        self.engine.changed("datasets")

    def _untag(self, ds: Dataset, version: str) -> None:
        self._store_of(ds).delete([self.layout.tag(ds.id, t.name) for t in self._read_tags(ds) if t.version == version])

    def _referenced(self, ds: Dataset, *, skip: str) -> set[str]:
        """Every object key a version other than `skip` points at: committed manifests, the pointers of files
        put into uncommitted versions, and the objects saves under way will reuse."""
        keep: set[str] = set()
        for version, manifest in self.manifests(ds).items():
            if version == skip:
                continue
            if manifest is not None:
                keep.update(e.object_key for e in manifest_entries(manifest))
                continue
            keep.update(e.object_key for e in self._pointers(ds, version).values() if e)
            keep.update(e.key for e in self.pending_of(ds, version) or () if e.key)
        return keep

    def commit(self, ds, version: str) -> Version:
        """Write the manifest (create-only): the commit point. Committing a committed version answers it unchanged.

        Files put by REST or the compat API wait under the version's uploads/ (where no manifest ever points);
        here each is copied to data/<path> and the copy is hashed: the manifest records what was verified, and no
        upload still in flight (or a write URL used again later) can reach a committed object."""
        ds = self.get(ds)
        current = self.get_version(ds, version)
        if current.is_committed:
            return current
        store = self._store_of(ds)
        self._take_commit_claim(store, ds, version)
        try:
            files = []
            for entry in self._staged(ds, version, with_hashes=True).values():
                if entry.object_key.startswith(self.layout.uploads(ds.id, version)):
                    target = self.layout.data(ds.id, version, entry.path)
                    try:
                        store.copy(entry.object_key, target)
                    except NotFound as exc:
                        raise Conflict(
                            f"{entry.path!r} was replaced or deleted while {ds.id}:{version} was being "
                            "committed: commit again.",
                            reason="changed-while-committing",
                        ) from exc
                    sha, size = self._hash_object(store, target)
                    if entry.sha256 and (sha, size) != (entry.sha256, entry.size):
                        raise IntegrityError(
                            f"The upload of {entry.path!r} changed after it was received (expected "
                            f"{entry.size} bytes, SHA-256 {entry.sha256}; found {size} bytes, "
                            f"SHA-256 {sha}): put the file again, then commit."
                        )
                    entry = FileEntry(entry.path, size, sha, target)
                files.append(entry)
            return self.write_manifest(ds, version, files, message=current.message)
        finally:
            store.delete([self.layout.committing(ds.id, version)])

    COMMIT_CLAIM_SECONDS = 3600  # a claim older than this was left by a committer that died

    def _take_commit_claim(self, store: Store, ds: Dataset, version: str) -> None:
        """One committer at a time copies a version's uploads into data/ (create-only claim)."""
        key = self.layout.committing(ds.id, version)
        for _ in range(2):
            try:
                self._write_json(store, key, {"since": time.time()}, create_only=True)
                return
            except Conflict as exc:
                since = (self._read_json(store, key) or {}).get("since")
                if isinstance(since, (int, float)) and time.time() - since < self.COMMIT_CLAIM_SECONDS:
                    raise Conflict(
                        f"Version {ds.id}:{version} is being committed by another request: wait for it to finish.",
                        reason="commit-in-progress",
                    ) from exc
                store.delete([key])  # left by a committer that died (or unreadable): take over
        raise Conflict(f"Version {ds.id}:{version} is being committed by another request.", reason="commit-in-progress")

    @staticmethod
    def _hash_object(store: Store, key: str) -> tuple[str, int]:
        h, size = hashlib.sha256(), 0
        for chunk in store.stream(key, CHUNK):
            h.update(chunk)
            size += len(chunk)
        return h.hexdigest(), size

    def write_manifest(
        self,
        ds: Dataset,
        version: str,
        files: builtins.list[FileEntry],
        *,
        message: str,
        uncommitted: Version | None = None,
    ) -> Version:
        """The commit point. If another writer committed this version first, theirs stands and this one fails.

        `uncommitted` (the version as create_version answered it, known to save) spares reading the committed
        version back."""
        store = self._store_of(ds)
        committed_at = now_iso()
        manifest = {
            "format": MANIFEST_FORMAT,
            "dataset": ds.id,
            "version": version,
            "message": message,
            "committedAt": committed_at,
            "files": [manifest_file(f) for f in sorted(files, key=lambda f: f.path)],
        }
        try:
            self._write_json(store, self.manifest_key(ds.id, version), manifest, create_only=True)
        except Conflict as exc:
            raise Conflict(
                f"Version {ds.id}:{version} was committed by another writer at the same time; theirs stands.",
                reason="already-committed",
            ) from exc
        store.delete(
            [self.layout.pending(ds.id, version)]
            + [o.key for o in store.list(self.layout.refs(ds.id, version))]
            + [o.key for o in store.list(self.layout.uploads(ds.id, version))]
        )
        self.engine.changed("datasets")
        if uncommitted is None:
            return self.get_version(ds, version)
        # only committed versions can be tagged, so a version committed just now has no tags
        return replace(
            uncommitted,
            message=message,
            is_committed=True,
            tags=(),
            file_count=len(files),
            size=sum(f.size for f in files),
            dt_committed=committed_at,
        )

    # -- files -------------------------------------------------------------------------------------------------
    def manifests(self, ds: Dataset) -> dict[str, dict | None]:
        """Version id -> its manifest, or None while uncommitted: one listing, then one request per version.
        A version whose manifest is bad is left out (with a warning)."""
        ids = self._version_ids(ds)
        bad = object()

        def read(version):
            try:
                return self.manifest(ds, version)
            except BadRecord as exc:  # neither committed nor uncommitted: nothing in it is reused or resumed
                skipped(exc)
                return bad

        return {v: m for v, m in zip(ids, self.engine.map(read, ids), strict=True) if m is not bad}

    def committed_index(
        self, ds: Dataset, manifests: dict[str, dict | None] | None = None
    ) -> dict[tuple[str, int], str]:
        """(sha256, size) -> object key, over every committed version: what never needs sending again."""
        index: dict[tuple[str, int], str] = {}
        for manifest in (self.manifests(ds) if manifests is None else manifests).values():
            for e in manifest_entries(manifest or {}):
                index.setdefault((e.sha256 or "", e.size), e.object_key)
        return index

    def still_referenced(self, ds: Dataset, manifests: dict[str, dict | None], keys) -> set[str]:
        """Which of `keys` (taken from `manifests`) a committed manifest still references, asked now.

        Whoever reuses a committed object first writes its pointer (refs/ or pending.json), then asks this: a
        delete of the last manifest holding the object either happened before (the object is not in the answer:
        send the bytes instead) or reads the pointer after (and keeps the object)."""
        keys = set(keys)
        holders: dict[str, set[str]] = {}
        for version, manifest in manifests.items():
            for e in manifest_entries(manifest or {}):
                if e.key in keys:
                    holders.setdefault(version, set()).add(e.object_key)
        store = self._store_of(ds)
        alive = self.engine.map(lambda v: store.head(self.manifest_key(ds.id, v)) is not None, list(holders))
        return {k for (v, held), ok in zip(holders.items(), alive, strict=True) if ok for k in held}

    def _pointers(self, ds: Dataset, version: str) -> dict[str, FileEntry | None]:
        """refs/ of an uncommitted version: path -> the file it points at, or None for a deleted file."""
        store = self._store_of(ds)

        def read(key):
            data = self._read_json(store, key)
            return None if data is None else records.pointer(data, key, self.layout.dataset(ds.id), version)

        refs = [o.key for o in store.list(self.layout.refs(ds.id, version))]
        return dict(p for p in self.engine.map(read, refs) if p)

    def _staged(self, ds: Dataset, version: str, *, with_hashes: bool = False) -> dict[str, FileEntry]:
        """Files of an uncommitted version: objects a save wrote under data/, overridden by the pointers under
        refs/ (to a committed object, or to an upload that has arrived under uploads/)."""
        store = self._store_of(ds)
        files = {}
        listing, pointers, arrived = self.engine.map(
            lambda read: read(),
            [
                lambda: list(store.list(self.layout.data(ds.id, version))),
                lambda: self._pointers(ds, version),
                lambda: {o.key: o.size for o in store.list(self.layout.uploads(ds.id, version))},
            ],
        )
        for o in listing:
            path = o.key[len(self.layout.data(ds.id, version)) :]
            sha = self.object_sha256(store, o.key, o.size) if with_hashes else None
            files[path] = FileEntry(path, o.size, sha, o.key)
        for path, entry in pointers.items():
            files.pop(path, None)
            if entry is None:
                continue
            if entry.key.startswith(self.layout.uploads(ds.id, version)):
                if entry.key not in arrived:  # a write URL was handed out, but nothing came (yet)
                    continue
                if entry.sha256 is None:  # came by write URL: the commit hashes it
                    entry = FileEntry(path, arrived[entry.key], None, entry.key)
            files[path] = entry
        return files

    @staticmethod
    def object_sha256(store: Store, key: str, size: int) -> str:
        sha = store.stored_sha256(key)
        if sha is None:  # uploaded by another tool: hash the bytes in the store
            sha = Datasets._hash_object(store, key)[0]
        return sha

    def pending_of(self, ds: Dataset, version: str) -> builtins.list[FileEntry] | None:
        """What a save of `version` was uploading (pending.json), checked; None if there is none."""
        key = self.layout.pending(ds.id, version)
        data = self._read_json(self._store_of(ds), key)
        return None if data is None else records.pending(data, key, self.layout.dataset(ds.id))

    def _uncommitted(self, ds, version: str) -> tuple[Dataset, Version]:
        ds = self.get(ds)
        v = self.get_version(ds, version)
        if v.is_committed:
            raise Immutable(
                f"Version {ds.id}:{version} is committed and cannot change: create a new version "
                "(datasets versions create) to add, replace or delete files."
            )
        return ds, v

    def list_files(self, ds, version: str, *, prefix: str = "") -> builtins.list[FileEntry]:
        ds = self.get(ds)
        v = self.get_version(ds, version)
        if v.is_committed:
            files = manifest_entries(self.manifest(ds, version) or {})
        else:
            files = list(self._staged(ds, version).values())
        return sorted((f for f in files if f.path.startswith(prefix)), key=lambda f: f.path)

    def uploads_prefix(self, ds_id: str, version: str) -> str:
        """Where the files put into an uncommitted version wait for its commit."""
        return self.layout.uploads(ds_id, version)

    def upload_key(self, ds: Dataset, version: str, path: str) -> str:
        """A new object key for bytes of `path` about to be put into an uncommitted version (by this engine or a
        write URL): under uploads/, where no manifest points, and named at random so no two uploads share it.
        The pointer refs/<path> is written first, so the commit and deletes know it."""
        check_file_path(path)
        key = self.layout.uploads(ds.id, version, uuid.uuid4().hex)
        self._write_json(self._store_of(ds), self.layout.refs(ds.id, version, path), {"path": path, "key": key})
        return key

    def upload_key_of(self, ds: Dataset, version: str, path: str) -> str:
        """The upload key `upload_key` gave `path` (for the later calls of a multipart upload)."""
        check_file_path(path)
        entry = self._pointers(ds, version).get(path)
        if entry is None or not entry.object_key.startswith(self.layout.uploads(ds.id, version)):
            raise NotFound(
                f"No upload of {path!r} was started in {ds.id}:{version}: start it again.", reason="no-such-upload"
            )
        return entry.object_key

    def put_file(self, ds, version: str, path: str, source) -> FileEntry:
        """Add or replace one file of an uncommitted version. `source`: a local path, bytes, or a binary file.

        The bytes go to a new object under uploads/ (a random name), then refs/<path> points at it; the commit
        verifies and copies them into data/<path>. A file identical to a committed one just points at it."""
        check_file_path(path)
        ds, _ = self._uncommitted(ds, version)
        store = self._store_of(ds)
        with _local_copy(source, self.engine.home) as (local, sha, size):
            manifests = self.manifests(ds)
            key = self.committed_index(ds, manifests).get((sha, size))
            if key:  # identical to a committed file: point at it instead of sending it again
                self._write_json(
                    store,
                    self.layout.refs(ds.id, version, path),
                    {"path": path, "size": size, "sha256": sha, "key": key},
                )
                if not self.still_referenced(ds, manifests, [key]):  # its versions were deleted meanwhile
                    key = None
            if not key:
                store.check_quota(size, self.layout.root())
                key = self.layout.uploads(ds.id, version, uuid.uuid4().hex)
                store.put_file(key, local, size=size, sha256=sha)  # a fresh random key: nothing to overwrite
                self._write_json(
                    store,
                    self.layout.refs(ds.id, version, path),
                    {"path": path, "size": size, "sha256": sha, "key": key},
                )
        if store.head(self.manifest_key(ds.id, version)) is not None:  # committed while we wrote: not part of it
            raise Immutable(
                f"Version {ds.id}:{version} was committed while {path!r} was being written; the file is not part of it."
            )
        return FileEntry(path, size, sha, key)

    def delete_file(self, ds, version: str, path: str) -> None:
        """Remove a file from an uncommitted version. Only its pointer changes: objects a commit may be copying
        or have copied are never deleted here."""
        check_file_path(path)
        ds, _ = self._uncommitted(ds, version)
        staged = self._staged(ds, version)
        if path not in staged:
            raise NotFound(f"Version {ds.id}:{version} has no file {path!r}.", reason="unknown-file")
        store = self._store_of(ds)
        self._write_json(store, self.layout.refs(ds.id, version, path), {"path": path, "deleted": True})
        if store.head(self.manifest_key(ds.id, version)) is not None:  # committed meanwhile: the file is part of it
            raise Immutable(
                f"Version {ds.id}:{version} was committed while {path!r} was being deleted; the file is part of it."
            )

    def file_entry(self, ds, version: str, path: str) -> FileEntry:
        check_file_path(path)
        ds = self.get(ds)
        v = self.get_version(ds, version)
        files = (
            manifest_entries(self.manifest(ds, version) or {})
            if v.is_committed
            else list(self._staged(ds, version, with_hashes=True).values())
        )
        for f in files:
            if f.path == path:
                return f
        raise NotFound(f"Version {ds.id}:{version} has no file {path!r}.", reason="unknown-file")

    def read_file(self, ds, version: str, path: str) -> tuple[FileEntry, Iterator[bytes]]:
        """One file's bytes, checked against the manifest while they stream (IntegrityError at the end if not)."""
        ds = self.get(ds)
        entry = self.file_entry(ds, version, path)
        return entry, verified_stream(self._store_of(ds), entry, f"Reading {ds.name}:{version}")

    # -- tags and refs -----------------------------------------------------------------------------------------
    def list_tags(self, ds) -> builtins.list[Tag]:
        """The tags of a dataset; a tag left pointing at a deleted version is not shown."""
        ds = self.get(ds)
        tags = self._read_tags(ds)
        store = self._store_of(ds)
        versions = sorted({t.version for t in tags})
        committed = self.engine.map(lambda v: store.head(self.manifest_key(ds.id, v)) is not None, versions)
        return [t for t in tags if dict(zip(versions, committed, strict=True))[t.version]]

    def _read_tags(self, ds: Dataset) -> builtins.list[Tag]:
        """Every well-formed tag record, whether or not its version still exists; bad ones are skipped."""
        store = self._store_of(ds)
        names = {}
        for o in store.list(self.layout.tags(ds.id)):
            name = records.tag_name(o.key)
            if name is None:
                skipped(records.bad(o.key, "not a tag name"))
            else:
                names[o.key] = name

        def read(key):
            data = self._read_json(store, key)
            return None if data is None else Tag(names[key], records.tag(data, key))

        return sorted((t for t in self._listed(read, names) if t), key=lambda t: t.name)

    def _tags_by_version(self, ds: Dataset, tags: builtins.list[Tag] | None = None) -> dict[str, builtins.list[str]]:
        out: dict[str, list[str]] = {}
        for t in self._read_tags(ds) if tags is None else tags:
            out.setdefault(t.version, []).append(t.name)
        return out

    def set_tag(self, ds, name: str, version: str) -> Tag:
        """Point tag `name` at a committed version (moving it if it exists)."""
        check_tag_name(name)
        ds = self.get(ds)
        if not self.get_version(ds, version).is_committed:
            raise Conflict(
                f"Version {ds.id}:{version} is not committed: commit it before tagging it.", reason="not-committed"
            )
        store = self._store_of(ds)
        self._write_json(store, self.layout.tag(ds.id, name), {"version": version, "dtModified": now_iso()})
        # A delete of the version may have run meanwhile: it removes tags after its manifest, so one of us sees
        # the other. If the manifest is gone, take the tag back rather than leave it pointing at nothing.
        if store.head(self.manifest_key(ds.id, version)) is None:
            store.delete([self.layout.tag(ds.id, name)])
            raise NotFound(
                f"Version {ds.id}:{version} was deleted while tag {name!r} was being set: the tag was not set.",
                reason="unknown-version",
            )
        self.engine.changed("datasets")
        return Tag(name, version)

    def delete_tag(self, ds, name: str) -> None:
        check_tag_name(name)
        ds = self.get(ds)
        if not any(t.name == name for t in self._read_tags(ds)):
            raise NotFound(f"Dataset {ds.name!r} has no tag {name!r}.", reason="unknown-tag")
        self._store_of(ds).delete([self.layout.tag(ds.id, name)])
        self.engine.changed("datasets")

    def resolve(self, ref: str, *, manifests: dict[str, dict] | None = None) -> tuple[Dataset, Version]:
        """'<dataset>[:<version | tag | latest>]' -> (dataset, version). The manifest read on the way is put in
        `manifests` if given, so a caller about to read it (load) need not ask the store again."""
        name, selector = parse_ref(ref)
        ds = self.get(name)
        if selector == "latest":
            versions = self.list_versions(ds, committed=True, manifests=manifests, skip_bad=False)
            if not versions:
                raise NotFound(f"Dataset {ds.name!r} has no committed version yet.", reason="no-version")
            return ds, versions[0]
        # A tag of that name wins over a version id; a selector shaped like a version id is read at the same time
        # as the tags, and kept if no tag has its name (one round trip, not two, for the refs save answers).
        guessed: dict[str, dict] = {}
        tags, guess = self.engine.map(
            lambda read: read(),
            [
                lambda: self._read_tags(ds),
                lambda: self._version(ds, selector, {}, guessed) if VERSION_ID.fullmatch(selector) else None,
            ],
        )
        version = next((t.version for t in tags if t.name == selector), None)
        if version is None and guess is not None:
            if manifests is not None:
                manifests.update(guessed)
            return ds, replace(guess, tags=tuple(sorted(self._tags_by_version(ds, tags).get(selector, []))))
        if version is None and not VERSION_ID.fullmatch(selector):
            raise NotFound(f"Dataset {ds.name!r} has no version or tag {selector!r}.", reason="unknown-version")
        found = self._version(ds, version or selector, self._tags_by_version(ds, tags), manifests)
        if found is None and version is not None:
            raise NotFound(
                f"Tag {selector!r} of dataset {ds.name!r} points at version {version!r}, which no longer "
                f"exists (it was deleted): set the tag again with 'datasets tags set'.",
                reason="unknown-version",
            )
        if found is None:
            raise NotFound(f"Dataset {ds.name!r} has no version {version or selector!r}.", reason="unknown-version")
        return ds, found


@dataclass(frozen=True)
class Skipped:
    """A provider a listing could not read: which one, and why (the store's words: credentials, DNS, timeout...)."""

    provider_id: str
    provider_name: str
    message: str
    reason: str

    def __str__(self) -> str:
        return f"Warning: storage provider {self.provider_name!r} was skipped: {self.message}"

    def to_json(self) -> dict:
        return {
            "storageProviderId": self.provider_id,
            "storageProviderName": self.provider_name,
            "message": self.message,
            "reason": self.reason,
        }


class _local_copy:
    """Give a source as (local path, sha256, size); bytes and file objects are spooled to a temp file in the home."""

    def __init__(self, source, home: Path):
        self.source, self.home = source, Path(home)
        self.tmp: str | None = None

    def __enter__(self):
        from .stores import sha256_file

        if isinstance(self.source, (str, os.PathLike)):
            if not os.path.isfile(self.source):
                raise BadInput(f"{os.fspath(self.source)!r} is not a file.")
            sha, size = sha256_file(self.source)
            return self.source, sha, size
        folder = self.home / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(dir=folder, prefix="upload-")
        h, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as f:
            if isinstance(self.source, (bytes, bytearray, memoryview)):
                f.write(self.source)
                h.update(self.source)
                size = len(self.source)
            else:
                while chunk := self.source.read(CHUNK):
                    f.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
        return self.tmp, h.hexdigest(), size

    def __exit__(self, *exc):
        if self.tmp:
            os.unlink(self.tmp)
