"""S3Store: an S3-compatible bucket, AWS included: object bytes and listings through obstore (the data plane, here),
boto3 for the control plane (the region, presigned URLs, CORS, STS, the doctor: s3_control.py). Credentials and
clients: credentials.py; how its failures read: s3_errors.py."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BadInput, Conflict, GradientError, IntegrityError, NotFound, StoreError
from .contract import (
    CHUNK,
    ObjectInfo,
    Store,
    changed,
    check_range,
    hashed_reads,
    is_create_only,
)
from .credentials import Credentials, obstore_credentials
from .regions import BucketRegions
from .s3_control import S3ControlPlane

if TYPE_CHECKING:
    from obstore import GetOptions
    from obstore.store import ClientConfig, RetryConfig, S3Config

log = logging.getLogger("gradient_jupyter")
_OBSTORE_PID: int | None = None  # the process whose threads run obstore's runtime, once it has one


def obstore_usable() -> bool:
    """False in a process forked after its parent used obstore: the runtime's threads stayed in the parent, so
    every obstore call here would wait forever (stores/s3_forked.py sends the requests through boto3 instead)."""
    return _OBSTORE_PID in (None, os.getpid())


def _addressable(key: str) -> bool:
    """Whether obstore can name this key: it refuses empty, '.' and '..' segments (such keys come only from others
    writing to the bucket; the engine never makes them)."""
    return bool(key) and not any(part in ("", ".", "..") for part in key.split("/"))


class S3Store(S3ControlPlane, Store):
    """An S3-compatible bucket, AWS included. Object bytes and listings go through obstore (Apache Arrow's Rust
    `object_store`: its own connection pool, SigV4 signing, retries with backoff, no GIL while it works); boto3 is
    the control plane: presigned URLs, CORS, STS and the doctor (`client`, `call`, `client_for`)."""

    supports_presign = True
    parallel_ranges = True
    max_attempts = 5  # a request is tried at most this often (5xx, SlowDown, resets: with backoff), then reported
    WRITE_TOKEN = "gradient-write"  # user metadata naming one create-only write, to recognise it after a lost answer
    PARTS_IN_FLIGHT = 4  # parts of one file sent at once: 4 x part_size of memory per large file
    LARGE_FILES_IN_FLIGHT = 4  # files sent in parts at once, whatever max_concurrency is: memory stays bounded

    def __init__(
        self,
        bucket: str,
        *,
        endpoint: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        profile: str | None = None,
        signature_version: str | None = None,
        timeout: float = 15.0,
        max_pool: int = 64,
        send_checksums: bool = True,
        quota: int | None = None,
        part_size: int = 8 * 1024**2,
        multipart_threshold: int = 64 * 1024**2,
        attempts: int | None = None,
        retry_timeout: float = 120.0,
        regions_file: Path | None = None,
    ):
        self._options = {k: v for k, v in locals().items() if k not in ("self", "bucket", "__class__")}
        self.bucket = bucket
        self.endpoint = endpoint
        self.region = region
        self.quota = quota
        self.part_size = part_size
        self.multipart_threshold = multipart_threshold
        self._creds = Credentials(access_key, secret_key, profile)
        # SigV2 applies to the boto3 control plane only (presigned URLs, the doctor); obstore signs with SigV4.
        self._signature_version = {"v4": "s3v4", "v2": "s3"}.get(signature_version or "", signature_version)
        self.timeout = timeout
        self._max_pool = max_pool
        if attempts:
            self.max_attempts = attempts
        self._retry_timeout = retry_timeout  # no try starts after this many seconds since the first
        self._checksums: bool | None = None if send_checksums else False  # decided by the first upload
        self._deciding = threading.Lock()
        self._large_files = threading.BoundedSemaphore(self.LARGE_FILES_IN_FLIGHT)
        self._client = None
        self._lock = threading.RLock()  # making the obstore client may make the boto3 client (an AWS bucket's region)
        self._obstores: dict[bool, object] = {}
        self._variants: dict[tuple, S3Store] = {}
        self._other_clients: dict[str, object] = {}
        self._resolved_region: str | None = None
        self._regions = BucketRegions(regions_file) if regions_file else None  # an AWS bucket's, remembered
        self._region_remembered = False  # whether _resolved_region came from that file (it may be stale)
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, endpoint={self.endpoint!r}, region={self.region!r})"

    @property
    def verifies_checksums(self) -> bool | None:
        """True if uploads carry their SHA-256 (`x-amz-checksum-sha256`), False if this store refused those headers
        or they are turned off (`send_checksums`), None until the first upload has decided."""
        return self._checksums

    # -- the data plane: obstore ------------------------------------------------------------------------------------
    def _obstore(self, checksums: bool):
        store = self._obstores.get(checksums)
        if store is None:
            with self._lock:
                if checksums not in self._obstores:
                    self._obstores[checksums] = self._make_obstore(checksums)
                store = self._obstores[checksums]
        return store

    def _make_obstore(self, checksums: bool):
        from obstore.store import S3Store as ObjectStore

        global _OBSTORE_PID
        _OBSTORE_PID = _OBSTORE_PID or os.getpid()

        config: S3Config = {
            "region": self.signing_region(),
            "virtual_hosted_style_request": not self.endpoint,
            "conditional_put": "etag",
        }
        if self.endpoint:
            config["endpoint"] = self.endpoint
        if checksums:
            config["checksum_algorithm"] = "sha256"
        client: ClientConfig = {
            "allow_http": self._endpoint_in_use().lower().startswith("http://"),
            "connect_timeout": timedelta(seconds=min(self.timeout, 10)),
            "read_timeout": timedelta(seconds=self.timeout),  # a stalled transfer; a slow but moving one goes on
            "timeout": timedelta(hours=1),
            "pool_max_idle_per_host": str(self._max_pool),
        }
        retry: RetryConfig = {
            "max_retries": max(0, self.max_attempts - 1),
            "retry_timeout": timedelta(seconds=self._retry_timeout),
            "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=5), "base": 2},
        }
        return ObjectStore(
            self.bucket,
            config=config,
            client_options=client,
            retry_config=retry,
            credential_provider=obstore_credentials(self._creds, self.translate),
        )

    def _endpoint_in_use(self) -> str:
        """The configured endpoint, else the one obstore (like boto3) takes from the environment, else AWS's."""
        return self.endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""

    def _run(self, op: str, key: str, work: Callable, checksums: bool | None = None, retry: bool = True):
        """work(obstore store), its errors translated; tried once more if S3 calls a remembered region wrong."""
        used = None
        try:
            store = self._obstore(self._checksums is not False if checksums is None else checksums)
            used = self._resolved_region
            return work(store)
        except (GradientError, KeyboardInterrupt):
            raise
        except Exception as exc:
            err = self.translate_obstore(exc, op, key)
            if retry and getattr(err, "reason", None) == "wrong-region" and self._region_moved(used):
                return self._run(op, key, work, checksums, retry=False)
            raise err from exc

    def _upload(self, op: str, key: str, work: Callable):
        """An upload; the first one decides whether this store takes SHA-256 checksum headers (some S3-compatible
        stores refuse them): decided once, under a lock, logged once."""
        if self._checksums is not None:
            return self._run(op, key, work, self._checksums)
        with self._deciding:
            if self._checksums is not None:
                return self._run(op, key, work, self._checksums)
            try:
                result = self._run(op, key, work, True)
            except StoreError as exc:
                if exc.reason not in ("invalid-request", "not-implemented"):
                    raise
                result = self._run(op, key, work, False)  # if this fails too, the checksums were not the cause
                log.warning(
                    "The store at %s refused SHA-256 checksum headers (%s): uploads to bucket %s go without "
                    "them. Loads still verify every byte against its SHA-256.",
                    self.endpoint or "AWS S3",
                    exc.message,
                    self.bucket,
                )
                self._checksums = False
                return result
            self._checksums = True
            return result

    # -- writes -------------------------------------------------------------------------------------------------------
    def put(self, key, data, *, mode="overwrite", sha256=None):
        create_only = is_create_only(mode)
        if sha256 and hashlib.sha256(data).hexdigest() != sha256:
            raise IntegrityError(f"Upload of {key!r} refused: the bytes do not match their SHA-256.")
        self._put_object(key, data, create_only, sha256)

    def _put_object(self, key: str, data, create_only: bool, sha256: str | None) -> None:
        import obstore

        self._addressed(key)
        attributes = {"sha256": sha256} if sha256 else {}
        token = uuid.uuid4().hex
        if create_only:
            attributes[self.WRITE_TOKEN] = token
        try:
            self._upload(
                "put_object",
                key,
                lambda store: obstore.put(
                    store,
                    key,
                    data,
                    mode="create" if create_only else "overwrite",
                    attributes=attributes or None,
                    use_multipart=False,
                ),
            )
        except Conflict:
            # A retry after a lost answer finds the object its first attempt wrote: that write is ours, not a loss.
            if create_only and self._write_token(key) == token:
                return
            raise

    def _write_token(self, key: str) -> str | None:
        import obstore

        try:
            attributes = self._run("head_object", key, lambda s: obstore.get(s, key, options={"head": True}).attributes)
        except NotFound:
            return None
        return attributes.get(self.WRITE_TOKEN)

    def put_file(self, key, path, *, size, sha256, mode="overwrite", progress=None):
        create_only = is_create_only(mode)
        if size < self.multipart_threshold or create_only:  # create-only is one PUT (S3 has no create-only parts)
            with open(path, "rb") as f:
                data = f.read()
            if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
                raise changed(key, path)
            self._put_object(key, data, create_only, sha256)
            if progress:
                progress(size)
            return
        self._put_multipart(key, path, size, sha256, progress)

    def put_new_file(self, key, path, *, state, block_size=None, progress=None):
        found: dict = {}
        if state[0] < self.multipart_threshold:  # most files: one read (the whole file), one hash, one PUT
            data = b"".join(hashed_reads(key, path, state, state[0], block_size, None, found))
            self._put_object(key, data, False, found["sha256"])
            if progress:
                progress(len(data))
        else:
            # Without the file's SHA-256 as metadata (a multipart upload names its metadata before the first
            # part): a re-run that finds the object left by an interrupted save hashes its bytes instead.
            self._multipart(
                key, lambda: hashed_reads(key, path, state, self.part_size, block_size, progress, found), state[0], None
            )
        return found["sha256"], found["size"], found["blocks"]

    def _put_multipart(self, key, path, size, sha256, progress):
        """Parts of `part_size` sent in parallel (`_multipart`); the file is hashed as it is read, and a change since
        it was hashed stops the upload before its last part, so it never completes (obstore then aborts it)."""
        part_size = self.part_size

        def parts():
            h, total = hashlib.sha256(), 0
            with open(path, "rb") as f:
                while chunk := f.read(part_size):
                    h.update(chunk)
                    total += len(chunk)
                    if total > size or total == size and h.hexdigest() != sha256:
                        raise changed(key, path)
                    yield chunk
                    if progress:
                        progress(len(chunk))
            if total != size:
                raise changed(key, path)

        self._multipart(key, parts, size, {"sha256": sha256})

    def _multipart(self, key, parts: Callable, size: int, attributes: dict | None) -> None:
        """Send `parts()` (an iterator of bytes, made again for each try) as one multipart upload by obstore, in
        parts of `part_size` (at most `PARTS_IN_FLIGHT` per file and `LARGE_FILES_IN_FLIGHT` files at once, which
        bounds memory). An exception from the iterator stops the upload before it completes (obstore aborts it)."""
        import obstore

        self._addressed(key)
        with self._large_files:
            self._upload(
                "upload_part",
                key,
                lambda store: obstore.put(
                    store,
                    key,
                    parts(),
                    attributes=attributes,
                    use_multipart=True,
                    chunk_size=self.part_size,
                    max_concurrency=self.PARTS_IN_FLIGHT,
                ),
            )
        # A lost answer to "complete the upload" is retried by the client, and some stores then complete it again
        # from parts they have already let go (SeaweedFS makes an empty object): one HEAD tells.
        info = self.head(key)
        if info is None or info.size != size:
            raise IntegrityError(
                f"The store said the upload of {key!r} completed, but it holds "
                f"{'nothing' if info is None else f'{info.size} bytes'} there, not {size}: "
                "save again."
            )

    # -- reads --------------------------------------------------------------------------------------------------------
    def get(self, key):
        import obstore

        self._addressed(key)
        return bytes(self._run("get_object", key, lambda s: obstore.get(s, key).bytes()))

    def get_range(self, key, start, end):
        import obstore

        check_range(start, end)
        self._addressed(key)
        if end == start:
            return b""
        return bytes(self._run("get_object", key, lambda s: obstore.get_range(s, key, start=start, end=end)))

    def get_ranges(self, key, ranges):
        import obstore

        ranges = list(ranges)
        for start, end in ranges:
            check_range(start, end)
        self._addressed(key)
        if not ranges:
            return []
        got = self._run(
            "get_object",
            key,
            lambda s: obstore.get_ranges(s, key, starts=[r[0] for r in ranges], ends=[r[1] for r in ranges]),
        )
        return [bytes(b) for b in got]

    def stream(self, key, chunk_size=CHUNK):
        return self._stream(key, None, chunk_size)

    def stream_range(self, key, start, end, chunk_size=CHUNK):
        check_range(start, end)
        return self._stream(key, (start, end), chunk_size) if end > start else iter(())

    def _stream(self, key, byte_range, chunk_size):
        import obstore

        self._addressed(key)
        options: GetOptions | None = {"range": byte_range} if byte_range else None
        result = self._run("get_object", key, lambda s: obstore.get(s, key, options=options))
        length = byte_range[1] - byte_range[0] if byte_range else result.meta["size"]
        if length <= chunk_size:  # the whole body in one call: most files are small, and each call costs CPU
            return self._chunks((result.bytes() for _ in (1,)), key)
        return self._chunks(iter(result.stream(min_chunk_size=chunk_size)), key)

    def _chunks(self, chunks, key):
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except (GradientError, KeyboardInterrupt):
                raise
            except Exception as exc:
                raise self.translate_obstore(exc, "get_object", key) from exc
            yield bytes(chunk)

    def head(self, key):
        import obstore

        self._addressed(key)
        try:
            meta = self._run("head_object", key, lambda s: obstore.head(s, key))
        except NotFound:
            return None
        return ObjectInfo(key, meta["size"])

    def verified_sha256(self, key):
        """S3's full-object `ChecksumSHA256` (HEAD with `ChecksumMode=ENABLED`): the store checked it against the bytes
        when they were written (a PUT carrying `x-amz-checksum-sha256`, as every upload of ours does when the store
        takes it). A multipart upload's checksum is a composite of its parts' (`...-N`, `COMPOSITE`): None, like a
        store that keeps none. Some stores answer a checksum of something else (moto, for multipart uploads): use it
        only to confirm a SHA-256 known otherwise (`datasets/verify.py` `holds`), never as the file's."""
        self._addressed(key)
        try:
            head = self.call("head_object", key, ChecksumMode="ENABLED")
        except NotFound:
            return None
        value = head.get("ChecksumSHA256")
        if not isinstance(value, str) or "-" in value or head.get("ChecksumType", "FULL_OBJECT") != "FULL_OBJECT":
            return None
        try:
            digest = base64.b64decode(value, validate=True)
        except ValueError:
            return None
        return digest.hex() if len(digest) == 32 else None

    def _addressed(self, key: str) -> None:
        if not _addressable(key):
            raise BadInput(
                f"Object key {key!r} cannot be used: it has an empty, '.' or '..' segment.", reason="invalid-key"
            )

    # -- listing, copies, deletes -------------------------------------------------------------------------------------
    def list(self, prefix):
        import obstore

        folder = prefix if not prefix or prefix.endswith("/") else prefix.rpartition("/")[0] + "/"
        folder = "" if folder == "/" else folder
        try:
            # Read whole before yielding: a key obstore cannot name fails the listing, which boto3 then makes again.
            found = self._run(
                "list_objects_v2",
                prefix,
                lambda s: [
                    (m["path"], m["size"]) for batch in obstore.list(s, folder or None, chunk_size=1000) for m in batch
                ],
            )
        except BadInput:
            found = self._list_others("list", folder)
        return iter([ObjectInfo(k, size) for k, size in found if k.startswith(prefix)])

    def list_prefixes(self, prefix):
        import obstore

        try:
            listing = self._run(
                "list_objects_v2", prefix, lambda s: obstore.list_with_delimiter(s, prefix.rstrip("/") or None)
            )
            return sorted(p.rstrip("/") + "/" for p in listing["common_prefixes"])
        except BadInput:
            return sorted(self._list_others("prefixes", prefix))

    def delete(self, keys):
        import obstore

        keys = list(keys)
        others = [k for k in keys if not _addressable(k)]
        keys = [k for k in keys if _addressable(k)]
        for i in range(0, len(keys), 1000):
            batch = keys[i : i + 1000]
            self._run("delete_objects", batch[0], lambda s, batch=batch: obstore.delete(s, batch))
        for key in others:  # keys obstore cannot name (see _addressable)
            self.call("delete_object", key)

    def copy(self, src, dst):
        import obstore

        info = self.head(src)
        if info is None:
            raise NotFound(f"Object {src!r} does not exist in the bucket.", reason="no-such-key")
        self._addressed(dst)
        if info.size < 5 * 1024**3:
            self._run("copy_object", dst, lambda s: obstore.copy(s, src, dst, overwrite=True))
            return
        try:  # over 5 GiB S3 needs a multipart copy, which s3transfer does for us
            self.client.copy({"Bucket": self.bucket, "Key": src}, self.bucket, dst)
        except Exception as exc:
            raise self.translate(exc, "copy", dst) from exc

    def used_bytes(self, prefix: str = "", listing: Iterable[ObjectInfo] | None = None) -> int:
        """Bytes of the objects under `prefix`; for a store with a quota (Gradient Managed on S3), also of the parts
        of its unfinished multipart uploads there: parts sent by presigned URLs (the compat API) take room in the
        bucket that no listing of objects shows."""
        used = super().used_bytes(prefix, listing)
        return used if self.quota is None else used + self.pending_parts_bytes(prefix)

    def variant(self, **options) -> S3Store:
        """The same bucket and credentials with some options changed (e.g. timeout, attempts); made once, kept.
        It knows the bucket's region if this store found it (an AWS bucket's region is asked once)."""
        key = tuple(sorted(options.items()))
        with self._lock:
            if key not in self._variants:
                self._variants[key] = type(self)(self.bucket, **{**self._options, **options})
            found = self._variants[key]
            if found._resolved_region is None and self._resolved_region is not None:
                found._resolved_region, found._region_remembered = self._resolved_region, self._region_remembered
            return found
