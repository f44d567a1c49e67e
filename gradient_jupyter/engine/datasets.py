"""Datasets, versions, files and tags, kept in the bucket itself (SPEC section 2), so any machine sees the same state.

Layout under `<teamId>/`:
  names/<lowercase name>.json                         claim of a dataset name (create-only: one winner per team)
  datasets/<ds>/dataset.json                          the dataset record
  datasets/<ds>/tags/<tag>.json                       {"version": ...}; setting again overwrites (moves it)
  datasets/<ds>/versions/<v>/version.json             created with the version (create-only: ids never collide)
  datasets/<ds>/versions/<v>/data/<path>              bytes this version added or changed
  datasets/<ds>/versions/<v>/refs/<path>              uncommitted only: a put file identical to a committed one
  datasets/<ds>/versions/<v>/pending.json             what a save is uploading (lets a re-run reuse what arrived)
  datasets/<ds>/versions/<v>/message.json             a message changed after commit
  datasets/<ds>/versions/<v>/manifest.json            the commit point, create-only
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from . import history
from .errors import BadInput, Conflict, GradientError, Immutable, IntegrityError, NotFound
from .history import check_lineage
from .ids import (DATASET_ID, VERSION_ID, check_dataset_name, check_file_path, check_tag_name, new_dataset_id,
                  new_version_id, parse_ref)
from .models import Dataset, FileEntry, Tag, Version
from .providers import Provider, now_iso
from .stores import CHUNK, Store

log = logging.getLogger("gradient_jupyter")
MANIFEST_FORMAT = "gradient-jupyter/manifest@1"
SHA256 = re.compile(r"[0-9a-f]{64}")


def latest_committed(manifests: dict[str, dict | None]) -> str | None:
    """The version id of the most recently committed manifest among `manifests` (None: nothing committed), as
    `latest` resolves it."""
    committed = [(m["committedAt"], v) for v, m in manifests.items() if m is not None]
    return max(committed)[1] if committed else None


def manifest_entries(manifest: dict) -> list[FileEntry]:
    return [FileEntry(f["path"], f["size"], f["sha256"], f["key"], f.get("blockSize"), tuple(f.get("blocks", ())))
            for f in manifest.get("files", [])]


def manifest_file(f: FileEntry) -> dict:
    """One file of a manifest: path, size, SHA-256, object key, and for large files the block SHA-256s."""
    out = {"path": f.path, "size": f.size, "sha256": f.sha256, "key": f.key}
    if f.blocks:
        out.update(blockSize=f.block_size, blocks=list(f.blocks))
    return out


def blocks_problem(f: dict) -> str | None:
    """Why a manifest file's `blockSize`/`blocks` cannot be used, or None (absent is fine: read whole)."""
    if "blocks" not in f and "blockSize" not in f:
        return None
    size, block_size, blocks = f["size"], f.get("blockSize"), f.get("blocks")
    if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size <= 0 \
            or not isinstance(blocks, list) or len(blocks) != -(-size // block_size) \
            or not all(isinstance(b, str) and SHA256.fullmatch(b) for b in blocks):
        return f"bad blockSize or blocks for {f['path']!r}"
    return None


def verified_stream(store: Store, entry: FileEntry, what: str) -> Iterator[bytes]:
    """The bytes of one manifest entry, checked while they stream; a missing object is named by its path."""
    try:
        chunks = store.stream(entry.key, CHUNK)
    except NotFound:
        raise IntegrityError(f"{what}: the bytes of {entry.path!r} are missing from the store (object "
                             f"{entry.key!r} was deleted behind our back).") from None
    return verified_chunks(chunks, entry, what)


def verified_chunks(chunks, entry: FileEntry, what: str) -> Iterator[bytes]:
    """Pass chunks through, checking size and SHA-256 against `entry`; IntegrityError names the file."""
    h, size = hashlib.sha256(), 0
    for chunk in chunks:
        size += len(chunk)
        if size > entry.size:
            raise IntegrityError(f"{what}: {entry.path!r} in the store is larger than its manifest says "
                                 f"({entry.size} bytes): it was changed behind our back.")
        h.update(chunk)
        yield chunk
    if size != entry.size or (entry.sha256 and h.hexdigest() != entry.sha256):
        raise IntegrityError(f"{what}: {entry.path!r} in the store does not match its manifest "
                             f"(expected {entry.size} bytes, SHA-256 {entry.sha256}; got {size} bytes, "
                             f"SHA-256 {h.hexdigest()}): it was changed or corrupted behind our back.")


class Datasets:
    """The datasets of one team across all its providers' buckets."""

    def __init__(self, engine):
        self.engine = engine
        self.team = engine.team_id
        self._where: dict[str, str] = {}  # dataset id -> provider id: a hint, always re-checked in the bucket
        self._lock = threading.Lock()

    # -- keys ------------------------------------------------------------------------------------------------
    def _ds(self, ds_id: str) -> str:
        return f"{self.team}/datasets/{ds_id}/"

    def _claim(self, name: str) -> str:
        return f"{self.team}/names/{name.lower()}.json"

    def _v(self, ds_id: str, version: str) -> str:
        return f"{self._ds(ds_id)}versions/{version}/"

    def data_key(self, ds_id: str, version: str, path: str) -> str:
        return f"{self._v(ds_id, version)}data/{path}"

    def manifest_key(self, ds_id: str, version: str) -> str:
        return f"{self._v(ds_id, version)}manifest.json"

    # -- json objects ------------------------------------------------------------------------------------------
    @staticmethod
    def _read_json(store: Store, key: str) -> dict | None:
        try:
            return json.loads(store.get_bytes(key))
        except NotFound:
            return None
        except ValueError:
            raise IntegrityError(f"Object {key!r} is not valid JSON: it was forged or changed behind our back.") from None

    @staticmethod
    def _write_json(store: Store, key: str, value: dict, *, create_only: bool = False) -> None:
        store.put_bytes(key, json.dumps(value, indent=1, sort_keys=True).encode(), create_only=create_only)

    # -- datasets ----------------------------------------------------------------------------------------------
    def _providers(self) -> list[Provider]:
        return self.engine.registry.list()

    def _store_of(self, ds: Dataset) -> Store:
        return self.engine.store(ds.storage_provider_id)

    def _record(self, data: dict, provider: Provider) -> Dataset:
        return Dataset(id=data["id"], name=data["name"], description=data.get("description", ""),
                       storage_provider_id=provider.id, dt_created=data["dtCreated"],
                       dt_modified=data.get("dtModified", data["dtCreated"]))

    def list(self, warnings: list | None = None) -> list[Dataset]:
        """Every dataset of the team, by name, from every provider that answers. Providers are asked in parallel
        with short timeouts (`lookup_timeout`); one that cannot be read is skipped, and a `Skipped` naming it and
        why is appended to `warnings` if given. A dataset seen through two providers on one bucket is listed once."""
        def one(provider: Provider):
            store = self.engine.lookup_store(provider)
            try:
                prefixes = store.list_prefixes(f"{self.team}/datasets/")
                return provider, _parallel(lambda p: self._read_json(store, p + "dataset.json"), prefixes), None
            except GradientError as exc:
                return provider, [], exc

        found, seen = [], set()
        for provider, records, exc in _parallel(one, self._providers()):
            if exc is not None:
                log.warning("Skipped storage provider %s while listing datasets: %s", provider.name, exc.message)
                if warnings is not None:
                    warnings.append(Skipped(provider.id, provider.name, exc.message, exc.reason))
                continue
            for data in records:
                if data and data["id"] not in seen:
                    seen.add(data["id"])
                    found.append(self._record(data, provider))
                    self._where.setdefault(data["id"], provider.id)
        return sorted(found, key=lambda d: d.name.lower())

    def get(self, ds, *, provider=None) -> Dataset:
        """A dataset by Dataset, id or name (names are case-insensitive, and unique per provider's team folder).

        With `provider` (id or name), only that provider is searched. Otherwise every provider is, in parallel
        with short timeouts; if none has it but one could not be searched, the error says which and why."""
        if isinstance(ds, Dataset):
            return ds
        if not isinstance(ds, str) or not ds:
            raise BadInput("Give a dataset id (ds...) or name.")
        check_dataset_name(ds)
        if provider is not None:
            providers = [self.engine.registry.get(provider)]
        else:
            if not DATASET_ID.fullmatch(ds) and (found := self._by_remembered_name(ds)):
                return found
            providers = self._providers()
        hint = self._where.get(ds)
        providers.sort(key=lambda p: p.id != hint)
        answers = _parallel(lambda p: self._find_in(p, ds), providers)
        for provider_, (data, exc) in zip(providers, answers):
            if data:
                return self._remember(data, provider_)
        unsearched = [(p, exc) for p, (_, exc) in zip(providers, answers) if exc is not None]
        if unsearched:  # it may live there: saying "unknown" could lead to a second dataset of the same name
            provider_, exc = unsearched[0]
            hint = "" if provider is not None else (" To save a new dataset anyway, name the provider it goes to "
                                                    "(--provider, or storageProviderId).")
            raise type(exc)(f"Dataset {ds!r} was not found, but storage provider {provider_.name!r} could not be "
                            f"searched: {exc.message}{hint}", reason=exc.reason)
        raise NotFound(f"Unknown dataset {ds!r}: list datasets with 'datasets list'.", reason="unknown-dataset")

    def _find_in(self, provider: Provider, ds: str) -> tuple[dict | None, GradientError | None]:
        """(dataset.json, None) if `ds` (id or name) lives in this provider, (None, None) if not, (None, error) if the
        provider could not be searched. Lookups use the short-timeout store."""
        store = self.engine.lookup_store(provider)
        try:
            if DATASET_ID.fullmatch(ds):
                return self._read_json(store, self._ds(ds) + "dataset.json"), None
            claim = self._read_json(store, self._claim(ds))
            if not claim:
                return None, None
            data = self._read_json(store, self._ds(claim["id"]) + "dataset.json")
            if data is None:  # a create interrupted after its claim: finish it from the claim
                data = claim
                self._write_json(self.engine.store(provider), self._ds(claim["id"]) + "dataset.json", data)
            self._remember_name(ds, provider.id, data["id"])
            return data, None
        except (BadInput, IntegrityError):
            raise
        except GradientError as exc:
            return None, exc

    # A name resolves through its claim to an id, then to dataset.json: two round trips. The id a name had is kept
    # in the data home, so the next lookup reads dataset.json directly and believes it only if it still has that
    # name: a rename changes the name there, and a delete removes dataset.json first. Anything else: full search.
    def _names_file(self) -> Path:
        return self.engine.home / "cache" / "dataset-names.json"

    def _remembered_names(self) -> dict[str, list[str]]:
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

    def _by_remembered_name(self, name: str) -> Dataset | None:
        hint = self._remembered_names().get(name.lower())
        if not (isinstance(hint, list) and len(hint) == 2 and DATASET_ID.fullmatch(str(hint[1]))):
            return None
        try:
            provider = self.engine.registry.get(hint[0])
            data = self._read_json(self.engine.lookup_store(provider), self._ds(hint[1]) + "dataset.json")
        except GradientError:
            return None
        if isinstance(data, dict) and str(data.get("name", "")).lower() == name.lower() and data.get("id") == hint[1]:
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
        data = {"id": new_dataset_id(), "name": name, "description": description, "dtCreated": stamp,
                "dtModified": stamp, "format": "gradient-jupyter/dataset@1"}
        store = self.engine.store(target)
        try:  # the claim is the create-only write that lets exactly one creator of a name win
            self._write_json(store, self._claim(name), data, create_only=True)
        except Conflict:
            raise Conflict(f"A dataset named {name!r} exists already: choose another name.",
                           reason="duplicate-name") from None
        self._write_json(store, self._ds(data["id"]) + "dataset.json", data)
        self.engine.changed("datasets")
        return self._remember(data, target)

    def update(self, ds, *, name: str | None = None, description: str | None = None) -> Dataset:
        current = self.get(ds)
        store = self._store_of(current)
        data = self._read_json(store, self._ds(current.id) + "dataset.json") or {}
        if description is not None:
            if not isinstance(description, str):
                raise BadInput("'description' must be a string.")
            data["description"] = description
        renamed = name is not None and name != current.name
        if renamed:
            check_dataset_name(name)
            if self._name_taken(name, self.engine.registry.get(current.storage_provider_id), skip=current.id):
                raise Conflict(f"A dataset named {name!r} exists already: choose another name.",
                               reason="duplicate-name")
            data["name"] = name
        data["dtModified"] = now_iso()
        if renamed and name.lower() != current.name.lower():
            try:
                self._write_json(store, self._claim(name), data, create_only=True)
            except Conflict:
                raise Conflict(f"A dataset named {name!r} exists already: choose another name.",
                               reason="duplicate-name") from None
        else:
            self._write_json(store, self._claim(data["name"]), data)
        self._write_json(store, self._ds(current.id) + "dataset.json", data)
        if renamed and name.lower() != current.name.lower():
            store.delete([self._claim(current.name)])
        self.engine.changed("datasets")
        return self._record(data, self.engine.registry.get(current.storage_provider_id))

    def delete(self, ds) -> None:
        """Delete a dataset with all its versions, files and tags."""
        current = self.get(ds)
        store = self._store_of(current)
        store.delete([self._ds(current.id) + "dataset.json"])  # first, so a half-done delete hides the dataset
        store.delete(o.key for o in store.list(self._ds(current.id)))
        store.delete([self._claim(current.name)])
        self._where.pop(current.id, None)
        self.engine.changed("datasets")

    # -- versions ----------------------------------------------------------------------------------------------
    def _manifest(self, ds: Dataset, version: str) -> dict | None:
        """The manifest of a committed version, or None. Manifests are immutable, so they are cached locally."""
        cache = self.engine.home / "cache" / "manifests" / ds.storage_provider_id / ds.id / f"{version}.json"
        store = self._store_of(ds)
        key = self.manifest_key(ds.id, version)
        if cache.exists():
            # Deleting a version removes its manifest: a cheap HEAD tells whether the cached copy still stands.
            if store.head(key) is not None:
                return json.loads(cache.read_text())
            cache.unlink(missing_ok=True)
            return None
        manifest = self._read_json(store, key)
        if manifest is not None:
            problem = self._manifest_problem(ds, version, manifest)
            if problem:
                raise IntegrityError(f"The manifest of {ds.id}:{version} is not a valid manifest of that version "
                                     f"({problem}): it was forged or changed behind our back.")
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(manifest))
            os.replace(tmp, cache)
        return manifest

    def _manifest_problem(self, ds: Dataset, version: str, manifest) -> str | None:
        """Why a manifest cannot be trusted, or None. Paths are checked again where files land (load)."""
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            return "unknown format"
        if manifest.get("version") != version or manifest.get("dataset") != ds.id:
            return "it names another dataset or version"
        if not isinstance(manifest.get("files"), list) or not isinstance(manifest.get("committedAt"), str):
            return "no file list or commit time"
        own = self._ds(ds.id) + "versions/"
        for f in manifest["files"]:
            if not isinstance(f, dict) or not isinstance(f.get("path"), str) or not isinstance(f.get("key"), str):
                return "a file entry without path or key"
            if not isinstance(f.get("size"), int) or f["size"] < 0 or not SHA256.fullmatch(str(f.get("sha256"))):
                return f"bad size or SHA-256 for {f['path']!r}"
            if not f["key"].startswith(own) or "/../" in f["key"]:
                return f"{f['path']!r} points outside this dataset ({f['key']!r})"
            if problem := blocks_problem(f):
                return problem
        return None

    def _version(self, ds: Dataset, version: str, tags: dict[str, list[str]] | None = None,
                 manifests: dict[str, dict] | None = None) -> Version | None:
        """A version, or None. Its three records are read at once; the manifest read is also put in `manifests`."""
        store = self._store_of(ds)
        base = self._v(ds.id, version)
        manifest, info, override = _parallel(lambda read: read(), [
            lambda: self._manifest(ds, version), lambda: self._read_json(store, base + "version.json"),
            lambda: self._read_json(store, base + "message.json")])
        if manifest is None and info is None:
            return None
        info = info or {}
        if tags is None:
            tags = self._tags_by_version(ds)
        if manifest is not None:
            if manifests is not None:
                manifests[version] = manifest
            files = manifest["files"]
            return Version(ds.id, version, (override or manifest).get("message", ""), True,
                           tuple(sorted(tags.get(version, []))), len(files), sum(f["size"] for f in files),
                           info.get("dtCreated", manifest["committedAt"]), manifest["committedAt"],
                           *check_lineage(info, base + "version.json"))
        files = self._staged(ds, version)
        return Version(ds.id, version, info.get("message", ""), False, (), len(files),
                       sum(f.size for f in files.values()), info.get("dtCreated", ""), None,
                       *check_lineage(info, base + "version.json"))

    def _version_ids(self, ds: Dataset) -> list[str]:
        prefixes = self._store_of(ds).list_prefixes(self._ds(ds.id) + "versions/")
        return [p.rstrip("/").rsplit("/", 1)[1] for p in prefixes]

    def list_versions(self, ds, *, committed: bool | None = True,
                      manifests: dict[str, dict] | None = None) -> list[Version]:
        """Versions newest first; committed=True (default) only committed, False only uncommitted, None all.
        The manifests read on the way are put in `manifests` if given."""
        ds = self.get(ds)
        tags, ids = _parallel(lambda read: read(), [lambda: self._tags_by_version(ds), lambda: self._version_ids(ds)])
        versions = [v for v in _parallel(lambda v: self._version(ds, v, tags, manifests), ids) if v is not None]
        if committed is not None:
            versions = [v for v in versions if v.is_committed == committed]
        return sorted(versions, key=lambda v: (v.dt_committed or v.dt_created, v.version), reverse=True)

    def get_version(self, ds, version: str) -> Version:
        ds = self.get(ds)
        if not isinstance(version, str) or not VERSION_ID.fullmatch(version):
            raise BadInput(f"Invalid version {version!r}: a version id is 7 lowercase letters or digits.",
                           reason="invalid-version")
        found = self._version(ds, version)
        if found is None:
            raise NotFound(f"Dataset {ds.name!r} has no version {version!r}.", reason="unknown-version")
        return found

    def create_version(self, ds, *, message: str = "", pending: list[FileEntry] | None = None,
                       manifests: dict[str, dict | None] | None = None, created_by: dict | None = None) -> Version:
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
                self._write_json(store, self._v(ds.id, version) + "version.json",
                                 {"version": version, "message": message, "dtCreated": created, "parent": parent,
                                  "createdBy": created_by}, create_only=True)
                break
            except Conflict:
                continue
        else:
            raise Conflict("Could not pick a new version id; try again.")
        if pending:
            self._write_json(store, self._v(ds.id, version) + "pending.json",
                             {"files": [{"path": e.path, "size": e.size, "sha256": e.sha256, "key": e.key}
                                        for e in pending]})
        return Version(ds.id, version, message, False, (), 0, 0, created, None, parent, created_by)

    def update_version(self, ds, version: str, *, message: str) -> Version:
        ds = self.get(ds)
        current = self.get_version(ds, version)
        if not isinstance(message, str):
            raise BadInput("'message' must be a string.")
        store = self._store_of(ds)
        if current.is_committed:
            self._write_json(store, self._v(ds.id, version) + "message.json", {"message": message})
        else:
            info = self._read_json(store, self._v(ds.id, version) + "version.json") or {"version": version}
            self._write_json(store, self._v(ds.id, version) + "version.json", {**info, "message": message})
        self.engine.changed("datasets")
        return self.get_version(ds, version)

    def delete_version(self, ds, version: str) -> None:
        """Delete a version: its manifest, and only the objects no remaining manifest of the dataset references."""
        ds = self.get(ds)
        self.get_version(ds, version)
        store = self._store_of(ds)
        for tag in self.list_tags(ds):
            if tag.version == version:
                store.delete([self._tag_key(ds, tag.name)])
        store.delete([self.manifest_key(ds.id, version)])  # first: from here on the version is not committed
        keep = {e.key for v in self.list_versions(ds, committed=True) if v.version != version
                for e in manifest_entries(self._manifest(ds, v.version) or {})}
        store.delete(o.key for o in store.list(self._v(ds.id, version)) if o.key not in keep)
        self.engine.changed("datasets")

    def commit(self, ds, version: str) -> Version:
        """Write the manifest (create-only): the commit point. Committing a committed version answers it unchanged."""
        ds = self.get(ds)
        current = self.get_version(ds, version)
        if current.is_committed:
            return current
        staged = self._staged(ds, version, with_hashes=True)
        return self.write_manifest(ds, version, list(staged.values()), message=current.message)

    def write_manifest(self, ds: Dataset, version: str, files: list[FileEntry], *, message: str,
                       uncommitted: Version | None = None) -> Version:
        """The commit point. If another writer committed this version first, theirs stands and this one fails.

        `uncommitted` (the version as create_version answered it, known to save) spares reading the committed
        version back."""
        store = self._store_of(ds)
        manifest = {"format": MANIFEST_FORMAT, "dataset": ds.id, "version": version, "message": message,
                    "committedAt": now_iso(),
                    "files": [manifest_file(f) for f in sorted(files, key=lambda f: f.path)]}
        try:
            self._write_json(store, self.manifest_key(ds.id, version), manifest, create_only=True)
        except Conflict:
            raise Conflict(f"Version {ds.id}:{version} was committed by another writer at the same time; "
                           "theirs stands.", reason="already-committed") from None
        store.delete([self._v(ds.id, version) + "pending.json"]
                     + [o.key for o in store.list(self._v(ds.id, version) + "refs/")])
        self.engine.changed("datasets")
        if uncommitted is None:
            return self.get_version(ds, version)
        # only committed versions can be tagged, so a version committed just now has no tags
        return replace(uncommitted, message=message, is_committed=True, tags=(), file_count=len(files),
                       size=sum(f.size for f in files), dt_committed=manifest["committedAt"])

    # -- files -------------------------------------------------------------------------------------------------
    def manifests(self, ds: Dataset) -> dict[str, dict | None]:
        """Version id -> its manifest, or None while uncommitted: one listing, then one request per version."""
        ids = self._version_ids(ds)
        return dict(zip(ids, _parallel(lambda v: self._manifest(ds, v), ids)))

    def committed_index(self, ds: Dataset, manifests: dict[str, dict | None] | None = None) \
            -> dict[tuple[str, int], str]:
        """(sha256, size) -> object key, over every committed version: what never needs sending again."""
        index = {}
        for manifest in (self.manifests(ds) if manifests is None else manifests).values():
            for e in manifest_entries(manifest or {}):
                index.setdefault((e.sha256, e.size), e.key)
        return index

    def _staged(self, ds: Dataset, version: str, *, with_hashes: bool = False) -> dict[str, FileEntry]:
        """Files of an uncommitted version: objects under data/ plus refs/ to committed objects."""
        store = self._store_of(ds)
        base = self._v(ds.id, version)
        files = {}
        for o in store.list(base + "data/"):
            path = o.key[len(base) + 5:]
            sha = self._object_sha256(store, o.key, o.size) if with_hashes else None
            files[path] = FileEntry(path, o.size, sha, o.key)
        refs = [o.key for o in store.list(base + "refs/")]
        for ref in _parallel(lambda k: self._read_json(store, k), refs):
            if ref:
                files[ref["path"]] = FileEntry(ref["path"], ref["size"], ref["sha256"], ref["key"])
        return files

    @staticmethod
    def _object_sha256(store: Store, key: str, size: int) -> str:
        sha = store.stored_sha256(key)
        if sha is None:  # uploaded by another tool: hash the bytes in the store
            h = hashlib.sha256()
            for chunk in store.stream(key):
                h.update(chunk)
            sha = h.hexdigest()
        return sha

    def _uncommitted(self, ds, version: str) -> tuple[Dataset, Version]:
        ds = self.get(ds)
        v = self.get_version(ds, version)
        if v.is_committed:
            raise Immutable(f"Version {ds.id}:{version} is committed and cannot change: create a new version "
                            "(datasets versions create) to add, replace or delete files.")
        return ds, v

    def list_files(self, ds, version: str, *, prefix: str = "") -> list[FileEntry]:
        ds = self.get(ds)
        v = self.get_version(ds, version)
        if v.is_committed:
            files = manifest_entries(self._manifest(ds, version) or {})
        else:
            files = list(self._staged(ds, version).values())
        return sorted((f for f in files if f.path.startswith(prefix)), key=lambda f: f.path)

    def put_file(self, ds, version: str, path: str, source) -> FileEntry:
        """Add or replace one file of an uncommitted version. `source`: a local path, bytes, or a binary file."""
        check_file_path(path)
        ds, _ = self._uncommitted(ds, version)
        store = self._store_of(ds)
        with _local_copy(source, self.engine.home) as (local, sha, size):
            key = self.committed_index(ds).get((sha, size))
            base = self._v(ds.id, version)
            if key:  # identical to a committed file: point at it instead of sending it again
                self._write_json(store, base + "refs/" + path, {"path": path, "size": size, "sha256": sha, "key": key})
                store.delete([base + "data/" + path])
            else:
                store.check_quota(size, f"{self.team}/")
                key = base + "data/" + path
                store.put_file(key, local, size=size, sha256=sha)
                store.delete([base + "refs/" + path])
        if self._manifest(ds, version) is not None:  # committed while we wrote: our bytes are not part of it
            raise Immutable(f"Version {ds.id}:{version} was committed while {path!r} was being written; "
                            "the file is not part of it.")
        return FileEntry(path, size, sha, key)

    def delete_file(self, ds, version: str, path: str) -> None:
        check_file_path(path)
        ds, _ = self._uncommitted(ds, version)
        staged = self._staged(ds, version)
        if path not in staged:
            raise NotFound(f"Version {ds.id}:{version} has no file {path!r}.", reason="unknown-file")
        base = self._v(ds.id, version)
        self._store_of(ds).delete([base + "data/" + path, base + "refs/" + path])

    def file_entry(self, ds, version: str, path: str) -> FileEntry:
        check_file_path(path)
        ds = self.get(ds)
        v = self.get_version(ds, version)
        files = manifest_entries(self._manifest(ds, version) or {}) if v.is_committed \
            else list(self._staged(ds, version, with_hashes=True).values())
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
    def _tag_key(self, ds: Dataset, name: str) -> str:
        return f"{self._ds(ds.id)}tags/{name}.json"

    def list_tags(self, ds) -> list[Tag]:
        ds = self.get(ds)
        store = self._store_of(ds)
        keys = [o.key for o in store.list(self._ds(ds.id) + "tags/") if o.key.endswith(".json")]
        tags = []
        for key, data in zip(keys, _parallel(lambda k: self._read_json(store, k), keys)):
            if data and isinstance(data.get("version"), str):
                tags.append(Tag(key.rsplit("/", 1)[1][:-5], data["version"]))
        return sorted(tags, key=lambda t: t.name)

    def _tags_by_version(self, ds: Dataset, tags: list[Tag] | None = None) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for t in self.list_tags(ds) if tags is None else tags:
            out.setdefault(t.version, []).append(t.name)
        return out

    def set_tag(self, ds, name: str, version: str) -> Tag:
        """Point tag `name` at a committed version (moving it if it exists)."""
        check_tag_name(name)
        ds = self.get(ds)
        if not self.get_version(ds, version).is_committed:
            raise Conflict(f"Version {ds.id}:{version} is not committed: commit it before tagging it.",
                           reason="not-committed")
        self._write_json(self._store_of(ds), self._tag_key(ds, name), {"version": version, "dtModified": now_iso()})
        self.engine.changed("datasets")
        return Tag(name, version)

    def delete_tag(self, ds, name: str) -> None:
        check_tag_name(name)
        ds = self.get(ds)
        if not any(t.name == name for t in self.list_tags(ds)):
            raise NotFound(f"Dataset {ds.name!r} has no tag {name!r}.", reason="unknown-tag")
        self._store_of(ds).delete([self._tag_key(ds, name)])
        self.engine.changed("datasets")

    def resolve(self, ref: str, *, manifests: dict[str, dict] | None = None) -> tuple[Dataset, Version]:
        """'<dataset>[:<version | tag | latest>]' -> (dataset, version). The manifest read on the way is put in
        `manifests` if given, so a caller about to read it (load) need not ask the store again."""
        name, selector = parse_ref(ref)
        ds = self.get(name)
        if selector == "latest":
            versions = self.list_versions(ds, committed=True, manifests=manifests)
            if not versions:
                raise NotFound(f"Dataset {ds.name!r} has no committed version yet.", reason="no-version")
            return ds, versions[0]
        # A tag of that name wins over a version id; a selector shaped like a version id is read at the same time
        # as the tags, and kept if no tag has its name (one round trip, not two, for the refs save answers).
        guessed: dict[str, dict] = {}
        tags, guess = _parallel(lambda read: read(), [
            lambda: self.list_tags(ds),
            lambda: self._version(ds, selector, {}, guessed) if VERSION_ID.fullmatch(selector) else None])
        version = next((t.version for t in tags if t.name == selector), None)
        if version is None and guess is not None:
            if manifests is not None:
                manifests.update(guessed)
            return ds, replace(guess, tags=tuple(sorted(self._tags_by_version(ds, tags).get(selector, []))))
        if version is None and not VERSION_ID.fullmatch(selector):
            raise NotFound(f"Dataset {ds.name!r} has no version or tag {selector!r}.", reason="unknown-version")
        found = self._version(ds, version or selector, self._tags_by_version(ds, tags), manifests)
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
        return {"storageProviderId": self.provider_id, "storageProviderName": self.provider_name,
                "message": self.message, "reason": self.reason}


def _parallel(fn, items, workers: int = 16) -> list:
    items = list(items)
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


class _local_copy:
    """Give a source as (local path, sha256, size); bytes and file objects are spooled to a temp file in the home."""

    def __init__(self, source, home: Path):
        self.source, self.home, self.tmp = source, Path(home), None

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
