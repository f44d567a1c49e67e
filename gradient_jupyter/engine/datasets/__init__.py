"""Datasets, versions, files and tags, kept in the bucket itself, so any machine sees the same state.

Everything read back from the bucket is checked by engine/records.py first (docs/threat-model.md).

Layout under `<teamId>/`:
  names/<lowercase name>.json                         claim of a dataset name (create-only: one winner per team)
  datasets/<ds>/dataset.json                          the dataset record
  datasets/<ds>/tags/<tag>.json                       {"version": ...}; setting again overwrites (moves it)
  datasets/<ds>/versions/<v>/version.json             created with the version (create-only: ids never collide)
  datasets/<ds>/versions/<v>/data/<path>              bytes this version added or changed (written by save, or
                                                      put once create-only with a refs/ record, or
                                                      copied from uploads/ by the commit)
  datasets/<ds>/versions/<v>/uploads/<random id>      uncommitted only: bytes sent by a write URL, or a
                                                      path put again into the same version
  datasets/<ds>/versions/<v>/refs/<path>              uncommitted only: a put file -> its upload, or a committed
                                                      object identical to it, or {"deleted": true}
  datasets/<ds>/versions/<v>/pending.json             what a save is uploading (lets a re-run reuse what arrived)
                                                      and which committed objects it reuses (deletes keep them)
  datasets/<ds>/versions/<v>/committing.json          a commit under way (one committer copies uploads at a time)
  datasets/<ds>/versions/<v>/message.json             a message changed after commit
  datasets/<ds>/versions/<v>/manifest.json            the commit point, create-only

One part of `Datasets` a file:
  catalog.py    datasets: list, find, create, rename, delete (name claims)
  versions.py   versions: list, create, delete; manifests; which committed objects can be reused
  refs.py       resolving refs: `latest`, tags, `committed_entries` (how a committed version is read)
  commit.py     the commit: uploads copied into data/ and hashed, then the manifest
  files.py      files of a version: put, delete, list, read; what an uncommitted version holds
  tags.py       tags
  base.py       what the parts share (keys, JSON objects in the bucket)
  caches.py     the manifest and dataset-name caches in the data home
  verify.py     bytes checked against their SHA-256
"""

from __future__ import annotations

from ..records import MANIFEST_FORMAT, SHA256, BadRecord, manifest_entries, manifest_file
from .base import DATASET_FORMAT, latest_committed, skipped
from .catalog import Catalog, Skipped, Unsearched
from .commit import Commits
from .files import Files
from .refs import Refs
from .tags import Tags
from .verify import holds, verified_chunks, verified_stream
from .versions import Versions


class Datasets(Catalog, Versions, Refs, Commits, Files, Tags):
    """The datasets of one team across all its providers' buckets; one part a file (listed above)."""


__all__ = [
    "Datasets",
    "DATASET_FORMAT",
    "Skipped",
    "Unsearched",
    "holds",
    "latest_committed",
    "skipped",
    "verified_chunks",
    "verified_stream",
    "MANIFEST_FORMAT",
    "SHA256",
    "BadRecord",
    "manifest_entries",
    "manifest_file",
]
