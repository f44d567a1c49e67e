"""Multipart uploads begun through the compat API (server/compat/) and not finished yet: for the embedded store their
parts wait in the data home (`<data home>/tmp/compat-uploads/<upload id>/`), for S3 providers in the bucket's
multipart area under the version's uploads/. A commit or delete of the version, or a delete of its dataset, ends
them, whatever door it came through (the engine's commit and delete call `end_uploads`): they could never be
completed any more."""

from __future__ import annotations

import logging
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import GradientError, NotFound
from .records import MAX_RECORD, BadRecord, read_json_file
from .stores import Store

if TYPE_CHECKING:
    from .core import Engine

log = logging.getLogger("gradient_jupyter")

UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
UPLOAD_IDLE_SECONDS = 60 * 60  # an embedded multipart upload untouched this long is abandoned: its parts are removed


def uploads_folder(engine: Engine) -> Path:
    """Where the parts of the embedded store's multipart uploads wait."""
    return engine.home / "tmp" / "compat-uploads"


def open_uploads(engine: Engine) -> list[tuple]:
    """(folder, its upload.json) of every embedded multipart upload in the data home."""
    root = uploads_folder(engine)
    found = []
    for folder in root.iterdir() if root.is_dir() else ():
        try:
            found.append((folder, read_json_file(folder / "upload.json", MAX_RECORD) or {}))
        except (OSError, BadRecord):
            found.append((folder, {}))
    return found


def remove_abandoned_uploads(engine: Engine, *, ds_id: str | None = None, version: str | None = None) -> None:
    """Remove embedded multipart uploads untouched for UPLOAD_IDLE_SECONDS, and (given `ds_id`) those of that
    dataset, or only of its `version`: their parts would otherwise stay in the data home forever."""
    now = time.time()
    for folder, info in open_uploads(engine):
        try:
            idle = now - max(p.stat().st_mtime for p in [folder, *folder.iterdir()])
        except (OSError, ValueError):
            idle = UPLOAD_IDLE_SECONDS
        ours = ds_id is not None and info.get("ds") == ds_id and version in (None, info.get("v"))
        if idle >= UPLOAD_IDLE_SECONDS or ours:
            shutil.rmtree(folder, ignore_errors=True)


def end_uploads(engine: Engine, store: Store, ds_id: str, version: str | None = None, *, put: bool = True) -> None:
    """A version was committed or deleted (without `version`: the whole dataset was deleted): its multipart uploads
    still open can never be used; remove their parts (in the data home for the embedded store, in the bucket's
    multipart area of `store`, the dataset's, for S3 providers: the compat API's under uploads/, a killed save's under
    data/). `put=False`: no file was ever put or saved there (no refs/, no pending.json), so the bucket holds none
    of them (one begins by pointing refs/<path> at its key, a save by writing pending.json) and is not asked."""
    remove_abandoned_uploads(engine, ds_id=ds_id, version=version)
    if not store.supports_presign or not put:
        return
    layout = engine.datasets.layout
    prefix = layout.version(ds_id, version) if version else layout.dataset(ds_id)  # uploads/, and a save's data/
    try:  # the commit or delete stands either way; a lifecycle rule on the bucket catches what this cannot
        listing = store.call("list_multipart_uploads", Prefix=prefix)
        for upload in listing.get("Uploads", []):
            store.call("abort_multipart_upload", upload["Key"], UploadId=upload["UploadId"])
    except GradientError as exc:  # e.g. the least-privilege policy does not grant s3:ListBucketMultipartUploads
        where = f"{ds_id}:{version}" if version else ds_id
        log.warning("Could not remove the unfinished multipart uploads of %s: %s", where, exc.message)


def uploads_size(engine: Engine) -> int:
    """Bytes of embedded multipart parts waiting in the data home (they count against the quota)."""
    root = uploads_folder(engine)
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0


def upload_folder(engine: Engine, upload_id, ds_id: str, version: str, path: str) -> Path:
    """The folder of an embedded multipart upload, only if it was made for this dataset, version and path."""
    folder = uploads_folder(engine) / str(upload_id)
    try:
        ok = bool(UPLOAD_ID.fullmatch(str(upload_id))) and read_json_file(folder / "upload.json", MAX_RECORD) == {
            "ds": ds_id,
            "v": version,
            "path": path,
        }
    except (OSError, BadRecord):
        ok = False
    if not ok:
        raise NotFound(f"No multipart upload {upload_id!r} for {path!r} in {ds_id}:{version}.", reason="no-such-upload")
    return folder
