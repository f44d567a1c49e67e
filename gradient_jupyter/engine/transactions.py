"""A version written by many processes at once, committed once (SPEC 9.1): `gradient_jupyter.transaction`.

The transaction makes an uncommitted version (and the dataset, if needed); any process then writes files into it
through `gradient://<datasetId>:<version>/...` (filesystem.py), each file sent once with its SHA-256 by
datasets/files.py `put_file`, which records path, size and SHA-256; the commit reads those records, never the
bytes (datasets/commit.py). An exception abandons the version: it is deleted, and so is a dataset it made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import TagInUse
from .ids import check_tag_name
from .models import Dataset, Version

if TYPE_CHECKING:
    from .core import Engine


@dataclass
class Transaction:
    """One uncommitted version being written; `url` and `storage_options` are what workers need."""

    engine: Engine = field(repr=False)
    dataset: Dataset
    version: Version
    tag: str | None = None
    made_dataset: bool = False
    committed: Version | None = None

    @property
    def url(self) -> str:
        """`gradient://<datasetId>:<version>/`: write files under it with fsspec (open, pipe, put, to_parquet)."""
        return f"gradient://{self.dataset.id}:{self.version.version}/"

    @property
    def storage_options(self) -> dict:
        """What a worker needs besides its own configuration: the team and the provider's name (no secret)."""
        provider = self.engine.registry.get(self.dataset.storage_provider_id)
        return {"team": self.engine.team_id, "provider": provider.name}

    def commit(self) -> Version:
        """Commit the version (once: again answers the same), then set the tag."""
        if self.committed is None:
            datasets = self.engine.datasets
            committed = datasets.commit(self.dataset, self.version.version)
            if self.tag:
                datasets.set_tag(self.dataset, self.tag, committed.version)
                committed = datasets.get_version(self.dataset, committed.version)
            self.committed = committed
        return self.committed

    def abort(self) -> None:
        """Delete the uncommitted version, and the dataset if this transaction made it and it has no other."""
        datasets = self.engine.datasets
        datasets.delete_version(self.dataset, self.version.version)
        if self.made_dataset and not datasets.list_versions(self.dataset, committed=None):
            datasets.delete(self.dataset)


def begin(engine: Engine, name: str, *, message: str = "", tag: str | None = None, provider=None) -> Transaction:
    """Make the uncommitted version of a transaction (and the dataset `name` if needed, in `provider` or the team
    default). A `tag` already naming a version is refused before anything is made."""
    from .transfer.save import dataset_for_save

    if tag is not None:
        check_tag_name(tag)
    ds, _ = dataset_for_save(engine, name, provider, lambda: 0)
    datasets = engine.datasets
    datasets.writable(ds, "write a version")
    manifests, tags = engine.map(lambda read: read(), [lambda: datasets.manifests(ds), lambda: datasets.list_tags(ds)])
    if tag and any(t.name == tag for t in tags):
        raise TagInUse(f"Tag {tag!r} already names a version of {ds.name!r}: choose another tag. Nothing was made.")
    version = datasets.create_version(ds, message=message, manifests=manifests)
    return Transaction(engine, ds, version, tag, made_dataset=not manifests)
