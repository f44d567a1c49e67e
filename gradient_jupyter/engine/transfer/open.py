"""open: a committed version read in place, without copying it."""

from __future__ import annotations

from ..datasets import manifest_entries
from ..errors import (
    Conflict,
    NotFound,
)
from ..models import Dataset, FileEntry, Version


class VersionReader:
    """One committed version, readable file by file without downloading the rest; every read is verified."""

    def __init__(self, engine, ds: Dataset, version: Version):
        self.engine, self.dataset, self.version = engine, ds, version
        manifest = engine.datasets.manifest(ds, version.version) or {}
        self._entries = {e.path: e for e in manifest_entries(manifest)}

    @property
    def files(self) -> dict[str, int]:
        """path -> size of every file of the version."""
        return {p: e.size for p, e in sorted(self._entries.items())}

    def _entry(self, path: str) -> FileEntry:
        if path not in self._entries:
            raise NotFound(f"{self.version.ref} has no file {path!r}.", reason="unknown-file")
        return self._entries[path]

    def read_bytes(self, path: str) -> bytes:
        """The whole file, verified against the manifest (through the content cache, engine/content/cache.py)."""
        e = self._entry(path)
        return self.engine.reader(self.dataset, self.version.version, e).read(0, e.size)

    def open(self, path: str):
        """A binary file object of one verified file: its entry in the content cache, opened read-only."""
        return open(self.engine.reader(self.dataset, self.version.version, self._entry(path)).local_file(), "rb")

    def __repr__(self) -> str:
        return f"<VersionReader {self.version!r}>"

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<tr><td>{html.escape(p)}</td><td>{s}</td></tr>" for p, s in self.files.items())
        return (
            f"<b>{html.escape(self.dataset.name)} {html.escape(self.version.ref)}</b>"
            f"<table><tr><th>path</th><th>size</th></tr>{rows}</table>"
        )


def open_version(engine, ref: str) -> VersionReader:
    ds, version = engine.datasets.resolve(ref)
    if not version.is_committed:
        raise Conflict(f"Version {version.ref} is not committed yet.", reason="not-committed")
    return VersionReader(engine, ds, version)
