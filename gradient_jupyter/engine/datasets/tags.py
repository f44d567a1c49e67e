"""Tags of a dataset: names that point at committed versions (datasets/<ds>/tags/<tag>.json), moved by setting
them again (layout: datasets/__init__.py)."""

from __future__ import annotations

import builtins

from .. import records
from ..errors import Conflict, NotFound
from ..ids import check_tag_name
from ..models import Dataset, Tag
from ..providers import now_iso
from ..stores import Store
from .base import Part, skipped


class Tags(Part):
    """Tags point at committed versions; one left pointing at a deleted version is not shown."""

    def _untag(self, ds: Dataset, version: str) -> None:
        self._store_of(ds).delete([self.layout.tag(ds.id, t.name) for t in self._read_tags(ds) if t.version == version])

    def list_tags(self, ds) -> builtins.list[Tag]:
        """The tags of a dataset; a tag left pointing at a deleted version is not shown."""
        ds = self.get(ds)
        tags = self._read_tags(ds)
        store = self._store_of(ds)
        versions = sorted({t.version for t in tags})
        committed = self.engine.map(lambda v: store.head(self.manifest_key(ds.id, v)) is not None, versions)
        return [t for t in tags if dict(zip(versions, committed, strict=True))[t.version]]

    def _read_tags(self, ds: Dataset, store: Store | None = None) -> builtins.list[Tag]:
        """Every well-formed tag record, whether or not its version still exists; bad ones are skipped. `store`:
        another store object of the dataset's provider (a lookup's)."""
        store = store or self._store_of(ds)
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
        ds = self.writable(self.get(ds), "set tags")
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
        ds = self.writable(self.get(ds), "delete tags")
        if not any(t.name == name for t in self._read_tags(ds)):
            raise NotFound(f"Dataset {ds.name!r} has no tag {name!r}.", reason="unknown-tag")
        self._store_of(ds).delete([self.layout.tag(ds.id, name)])
        self.engine.changed("datasets")
