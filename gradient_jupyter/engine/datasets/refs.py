"""Resolving a ref ('<dataset>[:<version | tag | latest>]') to a version, in one place: `resolve`, the one rule for
`latest` (base.py `latest_committed`, with what this machine remembers as a hint only), and `committed_entries`, the
one way load, mount, open and gradient:// read a committed version."""

from __future__ import annotations

import builtins
from dataclasses import replace

from .. import records
from ..errors import Conflict, GradientError, NotFound
from ..ids import DATASET_ID, VERSION_ID, parse_ref
from ..models import Dataset, FileEntry, Version
from ..records import BadRecord, manifest_entries
from .base import Part, latest_committed, skipped


class Refs(Part):
    """Refs resolved to versions (see the module docstring)."""

    def committed_entries(self, ref: str, doing: str) -> tuple[Dataset, Version, builtins.list[FileEntry]]:
        """The one way to read a committed version: `ref` resolved (`resolve`), the version refused while uncommitted
        (Conflict, reason not-committed; `doing` names what the user was doing: "load", "mount", "read"), and its
        files from the manifest `resolve` read on the way (checked: engine/records.py). load, mount, open and
        gradient:// all read versions through this."""
        manifests: dict[str, dict] = {}
        ds, version = self.resolve(ref, manifests=manifests)
        if not version.is_committed:
            raise Conflict(
                f"Version {version.ref} is not committed yet, so there is nothing to {doing}: commit it "
                f"(datasets versions commit --id {version.ref}), then {doing} it.",
                reason="not-committed",
            )
        manifest = manifests.get(version.version) or self.manifest(ds, version.version) or {}
        return ds, version, manifest_entries(manifest)

    def resolve(self, ref: str, *, manifests: dict[str, dict] | None = None) -> tuple[Dataset, Version]:
        """'<dataset>[:<version | tag | latest>]' -> (dataset, version). The manifest read on the way is put in
        `manifests` if given, so a caller about to read it (load) need not ask the store again."""
        name, selector = parse_ref(ref)
        if selector == "latest" and (remembered := self._latest_as_remembered(name, manifests)):
            return remembered
        ds = self.get(name)
        if selector == "latest":
            return ds, self._latest(ds, manifests)
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

    def _latest(self, ds: Dataset, manifests: dict[str, dict] | None) -> Version:
        """The latest committed version, in three rounds of requests whatever the number of versions: the
        listings of versions and tags; every manifest (a HEAD where the data home holds a copy) together with the
        records of the version that is latest among those copies and the version.json of the others not known
        to be committed; then, only if a version committed since turns out to be later, its records. Which one is
        latest is `latest_committed`'s rule: a bad manifest refuses the answer, naming its key; so does a bad
        record of the answer itself, while one of another version (a draft, say) is skipped with a warning naming
        it, as `save` never reads it. The manifests read are put in `manifests`."""
        tags, ids = self.engine.map(lambda read: read(), [lambda: self._read_tags(ds), lambda: self._version_ids(ds)])
        copies = {v: self._cached_manifest(ds, v) for v in ids}
        guess = latest_committed(copies)
        unknown = [v for v in ids if copies[v] is None]
        store = self._store_of(ds)
        reads = [lambda v=v: self._confirmed(ds, v, copies[v]) for v in ids]
        reads += [lambda v=v: self._read_json(store, self.layout.version_record(ds.id, v)) for v in unknown]
        found = self.engine.map(lambda read: read(), reads + (self._version_records(ds, guess) if guess else []))
        read = {v: m for v, m in zip(ids, found[: len(ids)], strict=True) if m is not None}
        latest = latest_committed(read)
        for v, info in zip(unknown, found[len(ids) : len(reads)], strict=True):
            try:
                if info is not None and v != latest:  # the answer's record is checked as it is made, below
                    records.version_info(info, self.layout.version_record(ds.id, v))
            except BadRecord as exc:
                skipped(exc)
        if manifests is not None:
            manifests.update(read)
        if latest is None:
            raise NotFound(f"Dataset {ds.name!r} has no committed version yet.", reason="no-version")
        info, override = (
            found[len(reads) :]
            if latest == guess
            else self.engine.map(lambda read: read(), self._version_records(ds, latest))
        )
        made = self._made_version(ds, latest, read[latest], info, override, self._tags_by_version(ds, tags), None)
        assert made is not None  # it has a manifest
        self.latest_versions.remember(ds.id, latest, (v for v in read if v != latest))
        return made

    def _latest_as_remembered(self, name: str, manifests: dict[str, dict] | None) -> tuple[Dataset, Version] | None:
        """`resolve(name)` in one round of requests, when this machine remembers where dataset `name` lives and
        which version was its latest, and holds that version's manifest: the dataset's record, the listings of its
        versions and tags, a HEAD of that manifest and that version's records, all at once, through the short-timeout
        store of a lookup. The answer stands only if the record still has that name (or id), the manifest is still
        there and every other version listed is known to be older; anything else (a new version, a rename, a
        store that does not answer, a bad record) returns None, and `resolve` asks the usual way. "Known to be older"
        is `latest_committed`'s rule applied to the manifests this machine keeps (committed manifests never change),
        never the hint's word: a hint may spare round trips, never change the answer."""
        by_id = bool(DATASET_ID.fullmatch(name))
        hint, ds_id = (self.names.provider_of(name), name) if by_id else (self.names.get(name) or (None, None))
        remembered = self.latest_versions.get(ds_id) if ds_id else None
        if hint is None or ds_id is None or remembered is None:
            return None
        version, older = remembered
        try:
            provider = self.engine.registry.get(hint)
        except GradientError:
            return None
        guess = Dataset(ds_id, name, "", provider.id, "", "")  # what the requests need: ids, not the record
        copy = self._cached_manifest(guess, version)
        if copy is None:
            return None
        store = self.engine.lookup_store(provider)
        try:
            data, ids, tags, held, info, override = self.engine.map(
                lambda read: read(),
                [
                    lambda: self._dataset_json(store, ds_id),
                    lambda: self._version_ids(guess, store),
                    lambda: self._read_tags(guess, store),
                    lambda: store.head(self.manifest_key(ds_id, version)),
                    *self._version_records(guess, version, store),
                ],
            )
        except GradientError:
            return None
        if not data or held is None or version not in ids or data["id"] != ds_id:
            return None
        if not by_id and data["name"].lower() != name.lower():
            return None
        if not set(ids) <= older | {version}:  # a version made since, or a draft (which may be committed by now)
            return None
        kept = {v: self._cached_manifest(guess, v) for v in ids if v != version}
        if None in kept.values() or latest_committed({**kept, version: copy}) != version:
            return None
        ds = self._remember(data, provider)
        try:
            made = self._made_version(ds, version, copy, info, override, self._tags_by_version(ds, tags), None)
        except GradientError:
            return None
        if made is None:
            return None
        if manifests is not None:
            manifests[version] = copy
        return ds, made
