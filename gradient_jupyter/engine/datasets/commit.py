"""Committing a version: the manifest is written create-only (the commit point; layout: datasets/__init__.py) from the
records of the files put into it (refs/: path, size, SHA-256), whose bytes are neither read nor copied; only what
came by a write URL, or a path put twice, waits under uploads/ and is copied into data/ and hashed first."""

from __future__ import annotations

import builtins
import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

from ..errors import Conflict, GradientError, IntegrityError, NotFound
from ..models import Dataset, FileEntry, Version
from ..processes import process_alive, this_host
from ..providers import now_iso
from ..records import MANIFEST_FORMAT, manifest_file
from ..stores import Store
from ..uploads import end_uploads
from .base import Part
from .verify import hash_object


class Commits(Part):
    """Committing versions: one committer at a time, and of two manifests for one version exactly one stands."""

    def commit(self, ds, version: str) -> Version:
        """Write the manifest (create-only): the commit point. Committing a committed version answers it unchanged.

        A file put by the engine is in data/<path> already (create-only) and its record says its size and SHA-256:
        nothing is read. Files sent by write URLs (the compat API), or put twice, wait under the version's
        uploads/ (where no manifest ever points); here each is copied to data/<path> and the copy is hashed: the
        manifest records what was verified, and no upload still in flight (or a write URL used again later) can
        reach a committed object. The compat API's multipart uploads still open in the version end
        (engine/uploads.py)."""
        ds = self.writable(self.get(ds), "commit versions")
        current = self.get_version(ds, version)
        if current.is_committed:
            return current
        store = self._store_of(ds)
        with self._commit_claim(store, ds, version):
            files = []
            staged = self._staged(ds, version, with_hashes=True)
            # Bytes sent by presigned URLs reached the bucket unchecked: what the commit keeps must fit the quota.
            uploads = self.layout.uploads(ds.id, version)
            kept = sum(e.size for e in staged.values() if e.object_key.startswith(uploads))
            store.check_quota(kept, self.layout.root(), held=True)
            for entry in staged.values():
                if entry.object_key.startswith(self.layout.uploads(ds.id, version)):
                    target = self.layout.data(ds.id, version, entry.path)
                    try:
                        store.copy(entry.object_key, target)
                    except NotFound as exc:
                        raise Conflict(
                            f"{entry.path!r} was replaced or deleted while {ds.id}:{version} was being "
                            "committed: commit again.",
                            reason="changed-while-committing",
                        ) from exc
                    sha, size = hash_object(store, target)
                    if entry.sha256 and (sha, size) != (entry.sha256, entry.size):
                        raise IntegrityError(
                            f"The upload of {entry.path!r} changed after it was received (expected "
                            f"{entry.size} bytes, SHA-256 {entry.sha256}; found {size} bytes, "
                            f"SHA-256 {sha}): put the file again, then commit."
                        )
                    entry = FileEntry(entry.path, size, sha, target)
                files.append(entry)
            committed = self.write_manifest(ds, version, files, message=current.message)
        end_uploads(self.engine, store, ds.id, version)  # the compat API's unfinished ones: not part of it, ever
        return committed

    HEARTBEAT_SECONDS = 10  # a committer rewrites its claim this often...
    SILENT_SECONDS = 60  # ...so one silent this long is gone (killed, its machine off): the claim is taken over

    @contextlib.contextmanager
    def _commit_claim(self, store: Store, ds: Dataset, version: str) -> Iterator[None]:
        """One committer at a time copies a version's uploads into data/: a create-only claim (committing.json)
        naming this process, rewritten every HEARTBEAT_SECONDS while the commit runs, removed when it ends. A
        claim whose committer is gone (a process of this host that no longer runs, or silent for SILENT_SECONDS:
        `kill -9`, a machine turned off) is taken over; a live one refuses, saying who holds it and since when."""
        key = self.layout.committing(ds.id, version)
        since = time.time()

        def claim() -> dict:
            return {"since": since, "alive": time.time(), "host": this_host(), "pid": os.getpid()}

        for _ in range(2):
            try:
                self._write_json(store, key, claim(), mode="create")
                break
            except Conflict as exc:
                held = self._read_json(store, key)
                if held is not None and not self._claim_gone(held):
                    raise self._claim_held(ds, version, held) from exc
                store.delete([key])  # left by a committer that is gone (or unreadable): take over
        else:
            raise Conflict(
                f"Version {ds.id}:{version} is being committed by another request.", reason="commit-in-progress"
            )
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.HEARTBEAT_SECONDS):
                with contextlib.suppress(GradientError):
                    self._write_json(store, key, claim())

        heart = threading.Thread(target=beat, name="gradient-commit-claim", daemon=True)
        heart.start()
        try:
            yield
        finally:
            done.set()
            heart.join()
            store.delete([key])

    def _claim_gone(self, held: dict) -> bool:
        alive = held.get("alive", held.get("since"))
        if not isinstance(alive, (int, float)) or time.time() - alive >= self.SILENT_SECONDS:
            return True
        pid = held.get("pid")
        return held.get("host") == this_host() and isinstance(pid, int) and not process_alive(pid)

    def _claim_held(self, ds: Dataset, version: str, held: dict) -> Conflict:
        host, pid, since = held.get("host"), held.get("pid"), held.get("since")
        who = f"process {pid} on {host}" if isinstance(host, str) and isinstance(pid, int) else "another request"
        when = time.strftime(" since %H:%M:%S UTC", time.gmtime(since)) if isinstance(since, (int, float)) else ""
        return Conflict(
            f"Version {ds.id}:{version} is being committed by {who[:200]}{when}: wait for it to finish "
            f"(or stop it). A commit whose process was killed is taken over as soon as that is known: at once on "
            f"the same machine, else once it has been silent for {self.SILENT_SECONDS} s; then commit again.",
            reason="commit-in-progress",
        )

    def _check_not_deleted(self, store: Store, ds: Dataset, version: str) -> None:
        """Refuse the commit of a version whose dataset was deleted meanwhile (a save or commit under way when
        `datasets delete` ran), removing what was sent for it (and its manifest, if written already): the delete
        may have listed the version's folder before they arrived."""
        if store.head(self.layout.dataset_record(ds.id)) is not None:
            return
        store.delete([o.key for o in store.list(self.layout.version(ds.id, version))])
        raise Conflict(
            f"Dataset {ds.name!r} ({ds.id}) was deleted while version {version} was being saved into it: nothing "
            "was committed, and what was sent for it is removed. Save again to make the dataset anew.",
            reason="dataset-deleted",
        )

    def write_manifest(
        self,
        ds: Dataset,
        version: str,
        files: builtins.list[FileEntry],
        *,
        message: str,
        uncommitted: Version | None = None,
    ) -> Version:
        """The commit point. If another writer committed this version first, theirs stands and this one fails.

        `uncommitted` (the version as create_version answered it, known to save) spares reading the committed
        version back."""
        store = self._store_of(ds)
        committed_at = now_iso()
        manifest = {
            "format": MANIFEST_FORMAT,
            "dataset": ds.id,
            "version": version,
            "message": message,
            "committedAt": committed_at,
            "files": [manifest_file(f) for f in sorted(files, key=lambda f: f.path)],
        }
        self._check_not_deleted(store, ds, version)
        try:
            self._write_json(store, self.manifest_key(ds.id, version), manifest, mode="create")
        except Conflict as exc:
            raise Conflict(
                f"Version {ds.id}:{version} was committed by another writer at the same time; theirs stands.",
                reason="already-committed",
            ) from exc
        # A delete of the dataset removes dataset.json before it lists what to remove: if it is gone now, that
        # listing may have missed this manifest, which would stand alone, pointing at deleted bytes.
        self._check_not_deleted(store, ds, version)
        store.delete(
            [self.layout.pending(ds.id, version)]
            + [o.key for o in store.list(self.layout.refs(ds.id, version))]
            + [o.key for o in store.list(self.layout.uploads(ds.id, version))]
        )
        self.engine.changed("datasets")
        if uncommitted is None:
            return self.get_version(ds, version)
        # only committed versions can be tagged, so a version committed just now has no tags
        return replace(
            uncommitted,
            message=message,
            is_committed=True,
            tags=(),
            file_count=len(files),
            size=sum(f.size for f in files),
            dt_committed=committed_at,
        )
