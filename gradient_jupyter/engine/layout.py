"""Where everything lives in a bucket: every object key of a team's folder is computed here, and only here.
The layout is described in docs/bucket-layout.md. Pure: no store, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .stores import ObjectInfo


class Layout:
    """The object keys under one team's folder `<teamId>/`."""

    def __init__(self, team: str):
        self.team = team

    def root(self) -> str:
        return f"{self.team}/"

    def claim(self, name: str) -> str:
        """The claim of a dataset name (names are case-insensitive: one claim per lowercase name)."""
        return f"{self.team}/names/{name.lower()}.json"

    # -- a dataset ------------------------------------------------------------------------------------------------
    def datasets(self) -> str:
        return f"{self.team}/datasets/"

    def dataset(self, ds_id: str) -> str:
        return f"{self.datasets()}{ds_id}/"

    def dataset_record(self, ds_id: str) -> str:
        return f"{self.dataset(ds_id)}dataset.json"

    def tags(self, ds_id: str) -> str:
        return f"{self.dataset(ds_id)}tags/"

    def tag(self, ds_id: str, name: str) -> str:
        return f"{self.tags(ds_id)}{name}.json"

    # -- a version ------------------------------------------------------------------------------------------------
    def versions(self, ds_id: str) -> str:
        return f"{self.dataset(ds_id)}versions/"

    def version(self, ds_id: str, version: str) -> str:
        return f"{self.versions(ds_id)}{version}/"

    def version_of(self, ds_id: str, key: str) -> str:
        """The version a key under `versions(ds_id)` belongs to."""
        return key[len(self.versions(ds_id)) :].split("/", 1)[0]

    def version_record(self, ds_id: str, version: str) -> str:
        return f"{self.version(ds_id, version)}version.json"

    def message(self, ds_id: str, version: str) -> str:
        """A committed version's edited message (its manifest never changes)."""
        return f"{self.version(ds_id, version)}message.json"

    def pending(self, ds_id: str, version: str) -> str:
        """What a save is uploading, so that a re-run reuses what arrived."""
        return f"{self.version(ds_id, version)}pending.json"

    def committing(self, ds_id: str, version: str) -> str:
        """The claim of the one commit under way."""
        return f"{self.version(ds_id, version)}committing.json"

    def manifest(self, ds_id: str, version: str) -> str:
        """The commit point, written once."""
        return f"{self.version(ds_id, version)}manifest.json"

    def data(self, ds_id: str, version: str, path: str = "") -> str:
        """The bytes a version added or changed, under their own names (`path` empty: the folder)."""
        return f"{self.version(ds_id, version)}data/{path}"

    def uploads(self, ds_id: str, version: str, name: str = "") -> str:
        """Uncommitted only: bytes sent by a write URL (or a path put twice), until the commit copies them to data/."""
        return f"{self.version(ds_id, version)}uploads/{name}"

    def refs(self, ds_id: str, version: str, path: str = "") -> str:
        """Uncommitted only: a put file's pointer to its upload, or to a committed object."""
        return f"{self.version(ds_id, version)}refs/{path}"

    def draft_bytes(self, objects: Iterable[ObjectInfo]) -> int:
        """Bytes under the folders of uncommitted versions (a `version.json`, no `manifest.json`), from one listing
        of the team's folder: what drafts hold in the bucket (Engine.utilization)."""
        folders: dict[str, tuple[int, set[str]]] = {}
        for o in objects:
            head, sep, rest = o.key.partition("/versions/")
            if not sep or not head.startswith(self.datasets()):
                continue
            version, _, name = rest.partition("/")
            size, names = folders.get(head + version, (0, set()))
            if name in ("version.json", "manifest.json"):
                names.add(name)
            folders[head + version] = (size + o.size, names)
        return sum(size for size, names in folders.values() if names == {"version.json"})
