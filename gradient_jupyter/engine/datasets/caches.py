"""The caches datasets keep in the data home (`<data home>/cache/`); they only spare round trips, and what they
hold is believed only while the bucket confirms it (README.md, "Fast"): a name's dataset record still has that name,
a version's manifest is still there."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from ..hints import HintFile, write_atomically
from ..ids import DATASET_ID, VERSION_ID
from ..records import MAX_LIST, BadRecord, read_json_file


class NameCache(HintFile):
    """Dataset name -> (provider id, dataset id) where this machine last saw it.

    A name resolves through its claim to an id, then to dataset.json: two round trips. The id a name had is kept
    here, so the next lookup reads dataset.json directly and believes it only if it still has that name: a rename
    changes the name there, and a delete removes dataset.json first. Anything else: full search."""

    def get(self, name: str) -> tuple[str, str] | None:
        """(provider id, dataset id) last seen for `name` (case-insensitive), or None: a hint, not a fact."""
        hint = self._read().get(name.lower())
        if isinstance(hint, list) and len(hint) == 2 and DATASET_ID.fullmatch(str(hint[1])):
            return str(hint[0]), str(hint[1])
        return None

    def provider_of(self, ds_id: str) -> str | None:
        """The provider id where dataset `ds_id` was last seen (under any name), or None: a hint, not a fact."""
        hints = self._read().values()
        return next((str(h[0]) for h in hints if isinstance(h, list) and len(h) == 2 and h[1] == ds_id), None)

    def remember(self, name: str, provider_id: str, ds_id: str) -> None:
        names = self._read()
        if names.get(name.lower()) == [provider_id, ds_id]:
            return
        names[name.lower()] = [provider_id, ds_id]
        self._write(names)


class LatestVersions(HintFile):
    """Dataset id -> the version `latest` last resolved to on this machine, and the committed versions that were
    older then (committed versions never change, so they stay older): a hint that lets a load ask for that version's
    records together with the listings, in one round of requests instead of three; believed only when the bucket
    shows that version committed and no version but those (refs.py `_latest_as_remembered`)."""

    def get(self, ds_id: str) -> tuple[str, set[str]] | None:
        """(the latest version, the committed versions older than it) last seen, or None: a hint, not a fact."""
        hint = self._read().get(ds_id)
        if not (isinstance(hint, list) and len(hint) == 2 and isinstance(hint[1], list)):
            return None
        latest, older = hint
        if not isinstance(latest, str) or not all(isinstance(v, str) for v in [latest, *older]):
            return None
        return (latest, set(older)) if all(VERSION_ID.fullmatch(v) for v in [latest, *older]) else None

    def remember(self, ds_id: str, latest: str, older: Iterable[str]) -> None:
        hints = self._read()
        hint = [latest, sorted(older)]
        if hints.get(ds_id) != hint:
            hints[ds_id] = hint
            self._write(hints)


class ManifestCache:
    """Committed manifests, which never change, kept once engine/records.py `manifest` has checked them. The data
    home is the user's own, as for the content cache's verified bytes, so a copy is used as it is, without checking
    each file again (for 2,000 files that took about as long as the rest of a load that finds them all in place);
    the caller asks the bucket whether the version still exists."""

    # Part of every copy's name: raise it when records.manifest checks more, so that copies an older check let
    # through are read from the bucket (and checked) again.
    CHECKED = "checked@3"  # 2: paths naming .git or .gradient refused; 3: sizes over 5 TiB

    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, provider_id: str, ds_id: str, version: str) -> Path:
        # Named by a hash, so no part of a local path ever comes from the bucket (docs/threat-model.md).
        name = hashlib.sha256(f"{self.CHECKED}/{provider_id}/{ds_id}/{version}".encode()).hexdigest()
        return self.folder / f"{name}.json"

    def read(self, provider_id: str, ds_id: str, version: str) -> dict | None:
        """The copy kept, or None (none, or not JSON of ours: cut short by a full disk, say)."""
        try:
            return read_json_file(self.path(provider_id, ds_id, version), MAX_LIST)
        except (OSError, BadRecord):
            return None

    def write(self, provider_id: str, ds_id: str, version: str, manifest: dict) -> None:
        write_atomically(self.path(provider_id, ds_id, version), json.dumps(manifest))

    def forget(self, provider_id: str, ds_id: str, version: str) -> None:
        self.path(provider_id, ds_id, version).unlink(missing_ok=True)
