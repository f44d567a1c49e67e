"""Versions of a dataset: list, read, create, re-message and delete them, the manifests that make them committed
(cached: caches.py), which committed objects can be reused, and resolving '<dataset>[:<version | tag | latest>]'."""

from __future__ import annotations

import builtins
import os

from .. import history, records
from ..errors import Conflict, NotFound
from ..ids import VERSION_ID, check_text, check_version_id, new_version_id
from ..models import Dataset, Draft, FileEntry, Version
from ..processes import process_alive, this_host
from ..providers import now_iso
from ..records import MANIFEST_FORMAT, BadRecord, manifest_entries
from ..stores import Store
from ..uploads import end_uploads
from .base import Manifests, Part, latest_committed, skipped


class Versions(Part):
    """The versions of a dataset, committed (a manifest) or not."""

    def manifest(self, ds: Dataset, version: str) -> dict | None:
        """The manifest of a committed version (checked: engine/records.py), or None. Manifests are immutable, so
        they are cached locally."""
        check_version_id(version)
        return self._confirmed(ds, version, self._cached_manifest(ds, version))

    def _cached_manifest(self, ds: Dataset, version: str) -> dict | None:
        """The copy of a version's manifest kept in the data home, as records.manifest checked it before keeping it
        (caches.py `ManifestCache`), or None; it stands only while the bucket still holds the manifest
        (`_confirmed`)."""
        kept = self.manifest_cache.read(ds.storage_provider_id, ds.id, version)  # None: read the bucket's again
        ours = (
            isinstance(kept, dict)
            and (kept.get("format"), kept.get("dataset"), kept.get("version")) == (MANIFEST_FORMAT, ds.id, version)
            and isinstance(kept.get("files"), list)
        )
        return kept if ours else None

    def _confirmed(self, ds: Dataset, version: str, cached: dict | None) -> dict | None:
        """`manifest`, given what `_cached_manifest` found: the cached copy if the bucket still holds the manifest,
        else the manifest read from the bucket (and kept), or None."""
        ids = (ds.storage_provider_id, ds.id, version)
        store = self._store_of(ds)
        key = self.manifest_key(ds.id, version)
        if cached is not None:
            # Deleting a version removes its manifest: a cheap HEAD tells whether the cached copy still stands.
            if store.head(key) is not None:
                return cached
            self.manifest_cache.forget(*ids)
            return None
        data = self._read_json(store, key, records.MAX_LIST)
        if data is None:
            return None
        manifest = records.manifest(data, key, ds.id, version, self.layout.dataset(ds.id))
        self.manifest_cache.write(*ids, manifest)
        return manifest

    def _version(
        self,
        ds: Dataset,
        version: str,
        tags: dict[str, builtins.list[str]] | None = None,
        manifests: dict[str, dict] | None = None,
    ) -> Version | None:
        """A version, or None. Its three records are read at once; the manifest read is also put in `manifests`."""
        manifest, info, override = self.engine.map(
            lambda read: read(), [lambda: self.manifest(ds, version), *self._version_records(ds, version)]
        )
        return self._made_version(ds, version, manifest, info, override, tags, manifests)

    def _version_records(self, ds: Dataset, version: str, store: Store | None = None) -> builtins.list:
        """Reads of version.json and message.json (None when missing), for `_made_version`; `store`: another store
        object of the dataset's provider (a lookup's)."""
        store = store or self._store_of(ds)
        return [
            lambda: self._read_json(store, self.layout.version_record(ds.id, version)),
            lambda: self._read_json(store, self.layout.message(ds.id, version)),
        ]

    def _made_version(
        self,
        ds: Dataset,
        version: str,
        manifest: dict | None,
        info: dict | None,
        override: dict | None,
        tags: dict[str, builtins.list[str]] | None,
        manifests: dict[str, dict] | None,
    ) -> Version | None:
        """A Version from its three records as read (None if it has neither a manifest nor version.json)."""
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

    def _version_ids(self, ds: Dataset, store: Store | None = None) -> builtins.list[str]:
        ids = []
        for prefix in (store or self._store_of(ds)).list_prefixes(self.layout.versions(ds.id)):
            version = prefix.rstrip("/").rsplit("/", 1)[1]
            if VERSION_ID.fullmatch(version):
                ids.append(version)
            else:
                skipped(records.bad(prefix, "not a version id"))
        return ids

    def list_versions(
        self, ds, *, committed: bool | None = True, manifests: dict[str, dict] | None = None
    ) -> builtins.list[Version]:
        """Versions newest first; committed=True (default) only committed, False only uncommitted, None all.
        The manifests read on the way are put in `manifests` if given. A version with bad records is skipped
        with a warning (a listing; `latest` has its own rule: `latest_committed`)."""
        ds = self.get(ds)
        tags, ids = self.engine.map(
            lambda read: read(), [lambda: self._tags_by_version(ds), lambda: self._version_ids(ds)]
        )
        versions = [v for v in self._listed(lambda v: self._version(ds, v, tags, manifests), ids) if v is not None]
        if committed is not None:
            versions = [v for v in versions if v.is_committed == committed]
        return sorted(versions, key=lambda v: (v.dt_committed or v.dt_created, v.version), reverse=True)

    def drafts(self, ds) -> builtins.list[Draft]:
        """The dataset's uncommitted versions (drafts), newest first, each with the bytes its folder holds and
        whether it is what a save left when it was interrupted or killed (`Draft`): what the panel, `datasets list`
        and `datasets versions list --isCommitted false` show. Delete one with `delete_version`. Cheap when there is
        none: one listing, as the versions with a manifest in the data home's cache are committed."""
        ds = self.get(ds)
        store = self._store_of(ds)
        maybe = [v for v in self._version_ids(ds) if self._cached_manifest(ds, v) is None]

        def one(version: str) -> Draft | None:
            made = self._version(ds, version)
            if made is None or made.is_committed:
                return None
            held = sum(o.size for o in store.list(self.layout.version(ds.id, version)))
            state = self.save_state(ds, version)
            return Draft(made, held, bool(state and state[1]))

        found = [d for d in self._listed(one, maybe) if d is not None]
        return sorted(found, key=lambda d: (d.version.dt_created, d.version.version), reverse=True)

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
        ds = self.writable(self.get(ds), "create versions")
        check_text(message, "message")
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
                    mode="create",
                )
                break
            except Conflict:
                continue
        else:
            raise Conflict("Could not pick a new version id; try again.")
        if pending is not None:  # a save: pending.json names its process from the start (`save_state`)
            self.write_pending(ds, version, pending)
        return Version(ds.id, version, message, False, (), 0, 0, created, None, parent, created_by)

    def write_pending(
        self, ds: Dataset, version: str, pending: builtins.list[FileEntry], *, interrupted: bool = False
    ) -> None:
        """Record (replace) what a save of the uncommitted `version` uploads: pending.json, which lets a re-run
        reuse what arrived and keeps the objects it names from a delete (`still_referenced`). It names the saving
        process (host, pid) and, once it was interrupted (Ctrl-C), says so: a draft whose save is over
        (`save_over`) is removed by the next save of the dataset that commits."""
        self._write_json(
            self._store_of(ds),
            self.layout.pending(ds.id, version),
            {
                "files": [{"path": e.path, "size": e.size, "sha256": e.sha256, **self._source(ds, e)} for e in pending],
                "saver": {"host": this_host(), "pid": os.getpid()},
                **({"interrupted": True} if interrupted else {}),
            },
        )

    def save_state(self, ds: Dataset, version: str) -> tuple[builtins.list[FileEntry], bool] | None:
        """(what the save of `version` uploads, whether that save is over), from pending.json; None if there is none.
        Over: it was interrupted (Ctrl-C), or its process, on this host, is gone (a killed kernel or console). A
        save on another host is never known to be over: its draft stays until someone deletes it."""
        key = self.layout.pending(ds.id, version)
        data = self._read_json(self._store_of(ds), key, records.MAX_LIST)
        if data is None:
            return None
        saver = data.get("saver")
        over = data.get("interrupted") is True or (
            isinstance(saver, dict)
            and saver.get("host") == this_host()
            and isinstance(saver.get("pid"), int)
            and not process_alive(saver["pid"])
        )
        return records.pending(data, key, self.layout.dataset(ds.id)), over

    def _source(self, ds: Dataset, entry: FileEntry) -> dict:
        """Where a save's file comes from, compactly: {} (sent now), {"from": v} (v's data/ under the same path)
        or {"key": ...}."""
        if entry.key is None:
            return {}
        version = self.layout.version_of(ds.id, entry.key)
        return {"from": version} if entry.key == self.data_key(ds.id, version, entry.path) else {"key": entry.key}

    def update_version(self, ds, version: str, *, message: str) -> Version:
        ds = self.writable(self.get(ds), "change versions")
        current = self.get_version(ds, version)
        check_text(message, "message")
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
        remaining manifest, no file put into an uncommitted version, no save under way. The multipart uploads still
        open in it end too (engine/uploads.py): the compat API's, and those of a save that was killed."""
        ds = self.writable(self.get(ds), "delete versions")
        self.get_version(ds, version)
        store = self._store_of(ds)
        self._untag(ds, version)
        store.delete([self.manifest_key(ds.id, version)])  # from here on the version is not committed
        # Read only now: a save or put that reuses an object writes its pointer before checking that a manifest
        # still references it, so either it sees this manifest gone or this delete sees its pointer.
        keep = self._referenced(ds, skip=version)
        listing = list(store.list(self.layout.version(ds.id, version)))
        store.delete(o.key for o in listing if o.key not in keep)
        self._untag(ds, version)  # a tag set meanwhile (set_tag checks the manifest after writing the tag)
        refs, pending = self.layout.refs(ds.id, version), self.layout.pending(ds.id, version)
        # files put by write URLs (refs/), or a save's large files (pending.json) whose process was killed mid-way
        sent = any(o.key.startswith(refs) or o.key == pending for o in listing)
        end_uploads(self.engine, store, ds.id, version, put=sent)
        self.engine.changed("datasets")

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

    def manifests(self, ds: Dataset) -> Manifests:
        """Version id -> its manifest, or None while uncommitted: one listing, then one request per version.
        A version whose manifest is bad is left out (with a warning) and kept in `bad`: neither committed nor
        uncommitted, nothing in it is reused or resumed, and `latest_committed` refuses to name the latest."""
        ids = self._version_ids(ds)
        bad: dict[str, BadRecord] = {}

        def read(version):
            try:
                return self.manifest(ds, version)
            except BadRecord as exc:
                skipped(exc)
                bad[version] = exc
                return None

        found = self.engine.map(read, ids)
        return Manifests({v: m for v, m in zip(ids, found, strict=True) if v not in bad}, bad)

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
