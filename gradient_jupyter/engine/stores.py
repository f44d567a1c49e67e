"""Stores: one contract over an S3 bucket (bytes through obstore, boto3 for the control plane) or the embedded
folder laid out like a bucket. The contract is described in README.md, "Stores"."""

from __future__ import annotations

import base64
import builtins
import hashlib
import logging
import os
import re
import socket
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .errors import BadInput, Conflict, GradientError, IntegrityError, NotFound, QuotaExceeded, StoreError
from .formatting import human_bytes

if TYPE_CHECKING:
    from obstore import GetOptions
    from obstore.store import ClientConfig, RetryConfig, S3Config

CHUNK = 1024 * 1024
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
Progress = Callable[[int], None]
log = logging.getLogger("gradient_jupyter")


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


class Store:
    """What the engine needs of a bucket; the embedded store and S3Store implement all of it.

    Keys are full object keys. A missing object raises NotFound (head answers None). Ranges are [start, end):
    `end` is exclusive, as in Python slices. Listing takes a prefix ending with "/" (a folder) or "" (the bucket);
    other prefixes work but read the whole folder they are in. What a store can do beyond the contract is said by
    its capability properties, never by its class."""

    bucket: str
    quota: int | None = None

    # -- capabilities ---------------------------------------------------------------------------------------------
    embedded = False  # the store is a folder on this machine (no endpoint, no credentials, no CORS)
    supports_presign = False  # can hand out presigned URLs a browser or another tool can use (`presign`)
    parallel_ranges = False  # a large object comes faster as parallel `get_range` calls than as one `stream`

    @property
    def verifies_checksums(self) -> bool | None:
        """True if the store refuses an upload whose bytes do not match the SHA-256 sent with it (None: not known
        until the first upload)."""
        return True

    # -- writes ---------------------------------------------------------------------------------------------------
    def put(self, key: str, data: bytes, *, mode: str = "overwrite", sha256: str | None = None) -> None:
        """Write a whole object. mode "create" writes only if the key is free (else Conflict, reason "exists"),
        atomically: of two writers exactly one wins. With `sha256`, bytes that do not match are refused
        (IntegrityError) and the digest is kept with the object (`stored_sha256`)."""
        raise NotImplementedError

    def put_bytes(self, key: str, data: bytes, *, create_only: bool = False, sha256: str | None = None) -> None:
        self.put(key, data, mode="create" if create_only else "overwrite", sha256=sha256)

    def put_file(
        self,
        key: str,
        path: str | os.PathLike,
        *,
        size: int,
        sha256: str,
        create_only: bool = False,
        progress: Progress | None = None,
    ) -> None:
        """Upload a local file whose size and SHA-256 are known; a file that changed since is refused
        (IntegrityError) and nothing is written."""
        raise NotImplementedError

    # -- reads ----------------------------------------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        """A whole (small) object."""
        return b"".join(self.stream(key))

    def get_bytes(self, key: str) -> bytes:
        return self.get(key)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of an object (fewer at its end; NotFound if it does not exist)."""
        raise NotImplementedError

    def get_ranges(self, key: str, ranges: Iterable[tuple[int, int]]) -> builtins.list[bytes]:
        """Several [start, end) ranges of one object, in the order asked (a store may merge nearby ranges)."""
        return [self.get_range(key, start, end) for start, end in ranges]

    def stream(self, key: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        raise NotImplementedError

    def stream_range(self, key: str, start: int, end: int, chunk_size: int = CHUNK) -> Iterator[bytes]:
        """Bytes [start, end) of an object, in chunks."""
        yield self.get_range(key, start, end)

    def head(self, key: str) -> ObjectInfo | None:
        raise NotImplementedError

    def stored_sha256(self, key: str) -> str | None:
        """The SHA-256 recorded with the object at upload, if the store keeps one (None: hash the bytes)."""
        return None

    # -- listing, copies, deletes ---------------------------------------------------------------------------------
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix`, in key order."""
        raise NotImplementedError

    def list_prefixes(self, prefix: str) -> builtins.list[str]:
        """The 'folders' directly under `prefix` (which ends with '/'), each ending with '/' (a delimiter listing)."""
        raise NotImplementedError

    def delete(self, keys: Iterable[str]) -> None:
        """Delete objects; keys that do not exist are fine."""
        raise NotImplementedError

    def copy(self, src: str, dst: str) -> None:
        """Copy an object inside the store (no bytes through this machine), overwriting `dst`."""
        raise NotImplementedError

    def presign(self, method: str, key: str, expires: int = 3600, **params) -> str:
        raise NotImplementedError(f"{type(self).__name__} cannot presign URLs (see supports_presign).")

    def call(self, op: str, key: str = "", **kwargs):
        """One S3 API operation by boto3's name (the control plane: multipart uploads for presigned URLs, CORS), for
        stores with an S3 endpoint (supports_presign)."""
        raise NotImplementedError(f"{type(self).__name__} has no S3 API (see supports_presign).")

    # -- helpers every store shares -------------------------------------------------------------------------------
    _part_pool: ThreadPoolExecutor | None = None
    _pool_lock = threading.Lock()

    @property
    def part_pool(self) -> ThreadPoolExecutor:
        """Threads for the parts of large objects, apart from the per-file pool so neither waits on the other."""
        if self._part_pool is None:
            with self._pool_lock:
                if self._part_pool is None:
                    self._part_pool = ThreadPoolExecutor(8, thread_name_prefix="gradient-part")
        return self._part_pool

    def used_bytes(self, prefix: str = "") -> int:
        return sum(o.size for o in self.list(prefix))

    def variant(self, **options) -> Store:
        """The same store with some options changed (timeout, attempts); a store without such options is itself."""
        return self

    def check_quota(self, needed: int, prefix: str = "") -> None:
        """Raise QuotaExceeded, before any byte is sent, if `needed` more bytes would pass the quota."""
        if self.quota is None or needed <= 0:
            return
        used = self.used_bytes(prefix)
        if used + needed > self.quota:
            raise QuotaExceeded(
                f"Gradient Managed quota exceeded: used {human_bytes(used)} ({used} bytes) of "
                f"{human_bytes(self.quota)} ({self.quota} bytes); this needs {human_bytes(needed)} ({needed} bytes) "
                "more. Delete old versions, raise c.GradientStorage.managed_quota, or save to another provider."
            )


def sha256_file(path: str | os.PathLike, progress: Progress | None = None) -> tuple[str, int]:
    """(hex SHA-256, size) of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
            if progress:
                progress(len(chunk))
    return h.hexdigest(), size


def b64_sha256(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def _changed(key: str, path) -> IntegrityError:
    return IntegrityError(
        f"Upload of {key!r} refused: {path} changed while it was being saved (its SHA-256 or size differs). Save again."
    )


# --------------------------------------------------------------------------------------------------------------
class LocalStore(Store):
    """The embedded Gradient Managed store: `<root>/<key>` files; create-only writes are atomic (link, not rename)."""

    embedded = True

    def __init__(self, root: Path, *, quota: int | None = None, bucket: str = "gradient-managed"):
        self.root = Path(root)
        self.tmp = self.root.parent / (self.root.name + ".tmp")
        for folder in (self.root, self.tmp):
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o700)
        self.quota = quota
        self.bucket = bucket

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or "\\" in key or "\x00" in key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise BadInput(f"Invalid object key {key!r}.")
        return self.root.joinpath(*parts)

    def _publish(self, tmp_path: str, target: Path, create_only: bool) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            if create_only:
                try:
                    os.link(tmp_path, target)  # fails if target exists: an atomic create-only write
                except FileExistsError as exc:
                    raise Conflict(
                        f"Object {target.relative_to(self.root).as_posix()!r} exists already.", reason="exists"
                    ) from exc
            else:
                os.replace(tmp_path, target)
        finally:
            if os.path.exists(tmp_path):
                os.unlink(tmp_path)

    def _tmp_file(self):
        return tempfile.NamedTemporaryFile(dir=self.tmp, delete=False)

    def put(self, key, data, *, mode="overwrite", sha256=None):
        target = self._path(key)
        create_only = _create_only(mode)
        if sha256 and hashlib.sha256(data).hexdigest() != sha256:
            raise IntegrityError(f"Upload of {key!r} refused: the bytes do not match their SHA-256.")
        with self._tmp_file() as f:
            f.write(data)
        self._publish(f.name, target, create_only)

    def put_file(self, key, path, *, size, sha256, create_only=False, progress=None):
        target = self._path(key)
        h = hashlib.sha256()
        written = 0
        with open(path, "rb") as src, self._tmp_file() as f:
            while chunk := src.read(CHUNK):
                f.write(chunk)
                h.update(chunk)
                written += len(chunk)
                if progress:
                    progress(len(chunk))
        if h.hexdigest() != sha256 or written != size:
            os.unlink(f.name)
            raise _changed(key, path)
        self._publish(f.name, target, create_only)

    def _open(self, key):
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFound(f"Object {key!r} does not exist in the store.", reason="no-such-key") from exc

    def stream(self, key, chunk_size=CHUNK):
        return self._read_file(self._open(key), chunk_size)

    def get_range(self, key, start, end):
        _check_range(start, end)
        with self._open(key) as f:
            return os.pread(f.fileno(), end - start, start) if end > start else b""

    def stream_range(self, key, start, end, chunk_size=CHUNK):
        _check_range(start, end)
        f = self._open(key)
        f.seek(start)
        return self._read_file(f, chunk_size, end - start)

    @staticmethod
    def _read_file(f, chunk_size, limit=None):
        with f:
            left = limit
            while chunk := f.read(chunk_size if left is None else min(chunk_size, left)):
                if left is not None:
                    left -= len(chunk)
                yield chunk

    def head(self, key):
        try:
            st = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return ObjectInfo(key, st.st_size) if not os.path.isdir(self._path(key)) else None

    def list(self, prefix):
        # Walk only below the deepest folder the prefix names, so listing one version stays cheap.
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root.joinpath(*folder.split("/")) if folder else self.root
        found = []
        for dirpath, _, filenames in os.walk(start):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            base = "" if rel == "." else rel + "/"
            for name in filenames:
                key = base + name
                if key.startswith(prefix):
                    try:
                        found.append(ObjectInfo(key, os.stat(os.path.join(dirpath, name)).st_size))
                    except FileNotFoundError:  # deleted while we walked
                        continue
        return iter(sorted(found, key=lambda o: o.key))  # key order, as a bucket lists

    def list_prefixes(self, prefix):
        folder = self.root.joinpath(*prefix.strip("/").split("/")) if prefix.strip("/") else self.root
        if not folder.is_dir():
            return []
        return sorted(prefix + e.name + "/" for e in os.scandir(folder) if e.is_dir())

    def delete(self, keys):
        for key in keys:
            path = self._path(key)
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            # Prune now-empty folders so the tree mirrors what a bucket would list.
            parent = path.parent
            while parent != self.root:
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent

    def copy(self, src, dst):
        source, target = self._path(src), self._path(dst)
        if not source.is_file():
            raise NotFound(f"Object {src!r} does not exist in the store.", reason="no-such-key")
        tmp = str(self.tmp / f"copy-{uuid.uuid4().hex}")
        os.link(source, tmp)  # objects are never modified in place, so sharing the inode is safe
        self._publish(tmp, target, False)


# --------------------------------------------------------------------------------------------------------------
_DENIED = "Access denied to {bucket!r} ({op}): the credentials lack permission; see 'storageProviders policy'."
_CLIENT_ERRORS = {
    "NoSuchKey": (NotFound, "no-such-key", "Object {key!r} does not exist in the bucket."),
    "404": (NotFound, "no-such-key", "Object {key!r} does not exist in the bucket."),
    "NotFound": (NotFound, "no-such-key", "Object {key!r} does not exist in the bucket."),
    "NoSuchBucket": (
        StoreError,
        "no-such-bucket",
        "Bucket {bucket!r} does not exist at this endpoint/region: check the bucket name and region.",
    ),
    "PreconditionFailed": (Conflict, "exists", "Object {key!r} exists already."),
    "412": (Conflict, "exists", "Object {key!r} exists already."),
    "ConditionalRequestConflict": (Conflict, "exists", "Object {key!r} is being written by someone else."),
    "AccessDenied": (StoreError, "access-denied", _DENIED),
    "403": (StoreError, "access-denied", _DENIED),
    "InvalidAccessKeyId": (
        StoreError,
        "invalid-credentials",
        "The store does not know this access key: check accessKey.",
    ),
    "SignatureDoesNotMatch": (
        StoreError,
        "signature-mismatch",
        "The store rejected the request signature: check secretAccessKey (and signatureVersion).",
    ),
    "InvalidClientTokenId": (
        StoreError,
        "invalid-credentials",
        "The store does not know this access key: check accessKey.",
    ),
    "InvalidToken": (StoreError, "invalid-credentials", "The session token is invalid or expired."),
    "ExpiredToken": (StoreError, "invalid-credentials", "The session token is invalid or expired."),
    "AuthorizationHeaderMalformed": (
        StoreError,
        "wrong-region",
        "The bucket is in another region than the one configured: set the right region.",
    ),
    "PermanentRedirect": (
        StoreError,
        "wrong-region",
        "The bucket is in another region than the one configured: set the right region.",
    ),
    "301": (
        StoreError,
        "wrong-region",
        "The bucket is in another region than the one configured: set the right region.",
    ),
    "NoSuchCORSConfiguration": (NotFound, "no-cors", "Bucket {bucket!r} has no CORS rules."),
    "NotImplemented": (StoreError, "not-implemented", "The store does not implement {op}: {detail}"),
    "BadDigest": (IntegrityError, "integrity", "The store refused {key!r}: the bytes did not match their checksum."),
    "XAmzContentChecksumMismatch": (
        IntegrityError,
        "integrity",
        "The store refused {key!r}: the bytes did not match their checksum.",
    ),
    "SlowDown": (
        StoreError,
        "unavailable",
        "The store kept answering 'SlowDown' (overloaded) to {op} after retries: try again later.",
    ),
    "503": (StoreError, "unavailable", "The store was unavailable (HTTP 503) for {op} after retries: try again later."),
    "ServiceUnavailable": (
        StoreError,
        "unavailable",
        "The store was unavailable (HTTP 503) for {op} after retries: try again later.",
    ),
    "InternalError": (
        StoreError,
        "unavailable",
        "The store had an internal error (HTTP 500) for {op} after retries: try again later.",
    ),
    "500": (
        StoreError,
        "unavailable",
        "The store had an internal error (HTTP 500) for {op} after retries: try again later.",
    ),
    "InvalidRequest": (StoreError, "invalid-request", "The store refused the request for {key!r}: {detail}"),
    "InvalidArgument": (StoreError, "invalid-request", "The store refused the request for {key!r}: {detail}"),
}


def _create_only(mode: str) -> bool:
    if mode not in ("create", "overwrite"):
        raise ValueError(f"mode must be 'create' or 'overwrite', not {mode!r}.")
    return mode == "create"


def _check_range(start: int, end: int) -> None:
    if start < 0 or end < start:
        raise ValueError(f"Invalid byte range [{start}, {end}): give 0 <= start <= end.")


def _addressable(key: str) -> bool:
    """Whether obstore can name this key: it refuses empty, '.' and '..' segments (such keys come only from others
    writing to the bucket; the engine never makes them)."""
    return bool(key) and not any(part in ("", ".", "..") for part in key.split("/"))


_XML_CODE = re.compile(r"<Code>([^<]{1,64})</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]{0,300})</Message>")
_XML_REQUEST_ID = re.compile(r"<RequestId>([^<]{1,128})</RequestId>")
_XML_REGION = re.compile(r"<Region>([a-z0-9-]{1,32})</Region>")
_HTTP_STATUS = re.compile(r"non-2xx status code: (\d{3})")


class S3Store(Store):
    """An S3-compatible bucket, AWS included. Object bytes and listings go through obstore (Apache Arrow's Rust
    `object_store`: its own connection pool, SigV4 signing, retries with backoff, no GIL while it works); boto3 is
    the control plane: presigned URLs, CORS, STS and the doctor (`client`, `call`, `client_for`)."""

    supports_presign = True
    parallel_ranges = True
    max_attempts = 5  # a request is tried at most this often (5xx, SlowDown, resets: with backoff), then reported
    WRITE_TOKEN = "gradient-write"  # user metadata naming one create-only write, to recognise it after a lost answer
    PARTS_IN_FLIGHT = 4  # parts of one file sent at once: 4 x part_size of memory per large file

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
        part_size: int = 16 * 1024**2,
        multipart_threshold: int = 64 * 1024**2,
        attempts: int | None = None,
    ):
        self._options = {k: v for k, v in locals().items() if k not in ("self", "bucket", "__class__")}
        self.bucket = bucket
        self.endpoint = endpoint
        self.region = region
        self.quota = quota
        self.part_size = part_size
        self.multipart_threshold = multipart_threshold
        self._creds = (access_key, secret_key, profile)
        # SigV2 applies to the boto3 control plane only (presigned URLs, the doctor); obstore signs with SigV4.
        self._signature_version = {"v4": "s3v4", "v2": "s3"}.get(signature_version or "", signature_version)
        self._timeout = timeout
        self._max_pool = max_pool
        if attempts:
            self.max_attempts = attempts
        self._checksums: bool | None = None if send_checksums else False  # decided by the first upload
        self._deciding = threading.Lock()
        self._client = None
        self._lock = threading.RLock()  # making the obstore client may make the boto3 client (an AWS bucket's region)
        self._obstores: dict[bool, object] = {}
        self._variants: dict[tuple, S3Store] = {}
        self._other_clients: dict[str, object] = {}
        self._resolved_region: str | None = None
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

        config: S3Config = {
            "region": self._region(),
            "virtual_hosted_style_request": not self.endpoint,
            "conditional_put": "etag",
        }
        if self.endpoint:
            config["endpoint"] = self.endpoint
        if checksums:
            config["checksum_algorithm"] = "sha256"
        client: ClientConfig = {
            "allow_http": bool(self.endpoint and self.endpoint.lower().startswith("http://")),
            "connect_timeout": timedelta(seconds=min(self._timeout, 10)),
            "read_timeout": timedelta(seconds=self._timeout),  # a stalled transfer; a slow but moving one goes on
            "timeout": timedelta(hours=1),
            "pool_max_idle_per_host": str(self._max_pool),
        }
        retry: RetryConfig = {
            "max_retries": max(0, self.max_attempts - 1),
            "retry_timeout": timedelta(minutes=2),
            "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=5), "base": 2},
        }
        return ObjectStore(
            self.bucket,
            config=config,
            client_options=client,
            retry_config=retry,
            credential_provider=self._credential_provider(),
        )

    def _credential_provider(self):
        """Access key and secret as given; else a profile or the default chain (environment, config files, SSO,
        container and instance roles) through boto3's public Session.get_credentials(), refreshed as they expire."""
        access_key, secret_key, _ = self._creds
        if access_key:
            static = {
                "access_key_id": access_key,
                "secret_access_key": secret_key or "",
                "token": None,
                "expires_at": None,
            }
            return lambda: static
        from obstore.auth.boto3 import Boto3CredentialProvider

        try:
            return Boto3CredentialProvider(self._session())
        except ValueError as exc:  # the chain found nothing
            raise StoreError(
                "No credentials found: give accessKey and secretAccessKey, or a profile.", reason="no-credentials"
            ) from exc
        except Exception as exc:
            raise self.translate(exc, "credentials") from exc

    def _dns_failure(self) -> StoreError:
        """A host name that does not resolve: the endpoint's (misspelt?), or AWS's own (offline, or a bad region)."""
        if self.endpoint:
            return StoreError(
                f"The storage endpoint's host name {urlsplit(self.endpoint).hostname!r} cannot be "
                "resolved (DNS): check the endpoint URL's spelling and this machine's network.",
                reason="dns",
            )
        host = f"{self.bucket}.s3.{self.region}.amazonaws.com" if self.region else "s3.amazonaws.com"
        region = f"that the region {self.region!r} exists, and " if self.region else ""
        return StoreError(
            f"AWS S3 cannot be reached: its host name {host!r} cannot be resolved (DNS). Check "
            f"{region}that this machine is online and its DNS works.",
            reason="dns",
        )

    def _region(self) -> str:
        if self.region:
            return self.region
        if self.endpoint:
            return "us-east-1"  # what S3-compatible stores expect when they have no regions
        if self._resolved_region is None:
            self._resolved_region = self._bucket_region()
        return self._resolved_region

    def _bucket_region(self) -> str:
        """An AWS bucket's own region, asked once: HEAD bucket answers it (`x-amz-bucket-region`), even when it refuses
        access. obstore does not follow S3's region redirects as boto3 does, so the configured default region (which
        may be another bucket's) is only the answer when the bucket does not say."""
        from botocore.exceptions import ClientError

        try:
            meta = self.client.head_bucket(Bucket=self.bucket)["ResponseMetadata"]
        except ClientError as exc:
            meta = exc.response.get("ResponseMetadata", {})
        except Exception as exc:
            raise self.translate(exc, "head_bucket") from exc
        return (meta.get("HTTPHeaders") or {}).get("x-amz-bucket-region") or self._session().region_name or "us-east-1"

    def _run(self, op: str, key: str, work: Callable, checksums: bool | None = None):
        """work(obstore store), its errors translated."""
        try:
            return work(self._obstore(self._checksums is not False if checksums is None else checksums))
        except (GradientError, KeyboardInterrupt):
            raise
        except Exception as exc:
            raise self.translate_obstore(exc, op, key) from exc

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

    def _traced(self, err: Exception, exc: Exception, op: str, key: str, request_id: str | None) -> Exception:
        """The store's request id goes on the engine error (to quote to the store's operator); the store's own
        words go to the debug log. The caller raises `err from exc`, so the cause stays in tracebacks too."""
        if isinstance(err, GradientError) and err is not exc:
            err.request_id = request_id or None
            log.debug(
                "%s %r on bucket %s failed (request id %s): %s: %s",
                op,
                key,
                self.bucket,
                request_id or "-",
                type(exc).__name__,
                exc,
            )
        return err

    def translate_obstore(self, exc: Exception, op: str, key: str = "") -> Exception:
        """Turn an obstore exception into an engine error with a plain-language message (never a secret)."""
        if isinstance(exc, GradientError):
            return exc
        request_id = _XML_REQUEST_ID.search(str(exc))
        return self._traced(self._from_obstore(exc, op, key), exc, op, key, request_id and request_id.group(1))

    def _from_obstore(self, exc: Exception, op: str, key: str) -> Exception:
        text = str(exc)
        where = self.endpoint or "AWS S3"
        name = type(exc).__name__
        if name == "InvalidPathError" or isinstance(exc, ValueError) and "parse path" in text:
            bad = re.search(r'Path "([^"]*)"', text)
            return BadInput(
                f"Object key {bad.group(1) if bad else key!r} cannot be used: it has an empty, '.' or '..' segment.",
                reason="invalid-key",
            )
        code_match, status_match = _XML_CODE.search(text), _HTTP_STATUS.search(text)
        code = code_match.group(1) if code_match else (status_match.group(1) if status_match else "")
        if name in ("AlreadyExistsError", "PreconditionError") and code in ("", "412"):
            code = "PreconditionFailed"
        if isinstance(exc, FileNotFoundError) and not code:
            code = "NoSuchKey"
        if code:
            region = _XML_REGION.search(text)
            if (
                region
                and region.group(1) != self._region()
                and code in ("AuthorizationHeaderMalformed", "PermanentRedirect", "301", "400")
            ):
                return StoreError(
                    f"Bucket {self.bucket!r} is in region {region.group(1)!r}, not {self._region()!r}:"
                    f" set the region to {region.group(1)}.",
                    reason="wrong-region",
                )
            if code in _CLIENT_ERRORS:
                cls, reason, message = _CLIENT_ERRORS[code]
                detail = _XML_MESSAGE.search(text)
                return cls(
                    message.format(key=key, bucket=self.bucket, op=op, detail=detail.group(1) if detail else code),
                    reason=reason,
                )
            detail = _XML_MESSAGE.search(text)
            return StoreError(
                f"The store refused {op} on {self.bucket!r}: {code} {detail.group(1) if detail else ''}".strip(),
                reason="store-error",
            )
        lowered = text.lower()
        if "dns error" in lowered or "failed to lookup address" in lowered:
            return self._dns_failure()
        if "timed out" in lowered or "kind: timeout" in lowered:
            return StoreError(
                f"The storage endpoint {where} did not answer within {self._timeout:g} s ({op}).", reason="timeout"
            )
        if "error sending request" in lowered or "kind: connect" in lowered or "connection" in lowered:
            return StoreError(
                f"Cannot connect to the storage endpoint {where}: check the URL, that the server "
                "is running, and the network.",
                reason="unreachable",
            )
        first_line = text.splitlines()[0][:300] if text else ""
        return StoreError(f"Storage request {op} failed: {name}: {first_line}", reason="store-error")

    # -- writes -------------------------------------------------------------------------------------------------------
    def put(self, key, data, *, mode="overwrite", sha256=None):
        create_only = _create_only(mode)
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

    def put_file(self, key, path, *, size, sha256, create_only=False, progress=None):
        if size < self.multipart_threshold or create_only:  # create-only is one PUT (S3 has no create-only parts)
            with open(path, "rb") as f:
                data = f.read()
            if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
                raise _changed(key, path)
            self._put_object(key, data, create_only, sha256)
            if progress:
                progress(size)
            return
        self._put_multipart(key, path, size, sha256, progress)

    def _put_multipart(self, key, path, size, sha256, progress):
        """Parts of `part_size` sent in parallel by obstore (at most `PARTS_IN_FLIGHT` per file, which bounds memory);
        the file is hashed as it is read, and a change since it was hashed stops the upload before its last part, so
        it never completes (obstore then aborts it)."""
        import obstore

        part_size = self.part_size

        def parts():
            h, total = hashlib.sha256(), 0
            with open(path, "rb") as f:
                while chunk := f.read(part_size):
                    h.update(chunk)
                    total += len(chunk)
                    if total > size or total == size and h.hexdigest() != sha256:
                        raise _changed(key, path)
                    yield chunk
                    if progress:
                        progress(len(chunk))
            if total != size:
                raise _changed(key, path)

        self._addressed(key)
        self._upload(
            "upload_part",
            key,
            lambda store: obstore.put(
                store,
                key,
                parts(),
                attributes={"sha256": sha256},
                use_multipart=True,
                chunk_size=part_size,
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

        _check_range(start, end)
        self._addressed(key)
        if end == start:
            return b""
        return bytes(self._run("get_object", key, lambda s: obstore.get_range(s, key, start=start, end=end)))

    def get_ranges(self, key, ranges):
        import obstore

        ranges = list(ranges)
        for start, end in ranges:
            _check_range(start, end)
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
        _check_range(start, end)
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

    def stored_sha256(self, key):
        import obstore

        self._addressed(key)
        attributes = self._run("head_object", key, lambda s: obstore.get(s, key, options={"head": True}).attributes)
        value = str(attributes.get("sha256", ""))
        return value if len(value) == 64 else None

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

    def _list_others(self, what: str, prefix: str) -> builtins.list:
        """A listing through boto3, for a bucket holding keys obstore cannot name (written by someone else)."""
        if prefix not in self._warned:
            self._warned.add(prefix)
            log.warning(
                "Bucket %s holds object keys under %r with an empty, '.' or '..' segment (not written by "
                "gradient-jupyter): listed through boto3.",
                self.bucket,
                prefix,
            )
        out, token = [], None
        while True:
            kwargs = {
                "Prefix": prefix,
                **({"Delimiter": "/"} if what == "prefixes" else {}),
                **({"ContinuationToken": token} if token else {}),
            }
            page = self.call("list_objects_v2", **kwargs)
            if what == "prefixes":
                out += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            else:
                out += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return out
            token = page["NextContinuationToken"]

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

    def presign(self, method: str, key: str, expires: int = 3600, **params) -> str:
        return self.client.generate_presigned_url(
            method, Params={"Bucket": self.bucket, "Key": key, **params}, ExpiresIn=expires
        )

    # -- the control plane: boto3 -------------------------------------------------------------------------------------
    @property
    def client(self):
        """A boto3 S3 client, for what obstore does not do: presigned URLs, CORS, the doctor's probes."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def variant(self, **options) -> S3Store:
        """The same bucket and credentials with some options changed (e.g. timeout, attempts); made once, kept."""
        key = tuple(sorted(options.items()))
        with self._lock:
            if key not in self._variants:
                self._variants[key] = S3Store(self.bucket, **{**self._options, **options})
            return self._variants[key]

    def _session(self):
        import boto3

        profile = self._creds[2]
        return boto3.session.Session(profile_name=profile) if profile else boto3.session.Session()

    def client_for(self, service: str):
        """A client of another service (e.g. 'sts') with this store's credentials, endpoint, region and timeouts."""
        with self._lock:
            if service not in self._other_clients:
                self._other_clients[service] = self._make_other_client(service)
            return self._other_clients[service]

    def _make_other_client(self, service: str):
        from botocore.config import Config

        access_key, secret_key, _ = self._creds
        config = Config(
            retries={"mode": "standard", "max_attempts": self.max_attempts},
            connect_timeout=min(self._timeout, 10),
            read_timeout=self._timeout,
        )
        kwargs = {"config": config, "endpoint_url": self.endpoint, "region_name": self.region or "us-east-1"}
        if access_key:
            kwargs.update(aws_access_key_id=access_key, aws_secret_access_key=secret_key)
        return self._session().client(service, **kwargs)

    def _make_client(self):
        from botocore.config import Config

        access_key, secret_key, _ = self._creds
        session = self._session()
        config = Config(
            retries={"mode": "standard", "max_attempts": self.max_attempts},
            max_pool_connections=self._max_pool,
            connect_timeout=min(self._timeout, 10),
            read_timeout=self._timeout,
            signature_version=self._signature_version,
            # Custom endpoints need path-style (no wildcard DNS for <bucket>.host); AWS picks its own.
            s3={"addressing_style": "path" if self.endpoint else "auto"},
            # We send our own SHA-256 where wanted; botocore's default CRC headers break many S3-compatible stores.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        kwargs = {"config": config, "endpoint_url": self.endpoint, "region_name": self.region or None}
        if access_key:
            kwargs.update(aws_access_key_id=access_key, aws_secret_access_key=secret_key)
        return session.client("s3", **kwargs)

    def translate(self, exc: Exception, op: str, key: str = "") -> Exception:
        """Turn a botocore exception into an engine error with a plain-language message (never a secret)."""
        meta = getattr(exc, "response", None) or {}
        meta = meta.get("ResponseMetadata", {}) if isinstance(meta, dict) else {}
        headers = meta.get("HTTPHeaders") or {}
        request_id = meta.get("RequestId") or headers.get("x-amz-request-id") or headers.get("x-amzn-requestid")
        return self._traced(self._from_botocore(exc, op, key), exc, op, key, request_id)

    def _from_botocore(self, exc: Exception, op: str, key: str) -> Exception:
        from botocore import exceptions as bx

        if isinstance(exc, bx.ClientError):
            err = exc.response.get("Error", {})
            meta = exc.response.get("ResponseMetadata", {})
            code = str(err.get("Code") or meta.get("HTTPStatusCode", ""))
            if op == "head_bucket" and code in ("404", "NotFound"):  # HEAD has no body: 404 means no bucket here
                code = "NoSuchBucket"
            actual = (meta.get("HTTPHeaders") or {}).get("x-amz-bucket-region")
            if (
                actual
                and actual != (self.region or "us-east-1")
                and code in ("301", "400", "PermanentRedirect", "AuthorizationHeaderMalformed")
            ):
                return StoreError(
                    f"Bucket {self.bucket!r} is in region {actual!r}, not {self.region or 'us-east-1'!r}:"
                    f" set the region to {actual}.",
                    reason="wrong-region",
                )
            if code in _CLIENT_ERRORS:
                cls, reason, text = _CLIENT_ERRORS[code]
                return cls(
                    text.format(key=key, bucket=self.bucket, op=op, detail=err.get("Message", "")), reason=reason
                )
            return StoreError(
                f"The store refused {op} on {self.bucket!r}: {code} {err.get('Message', '')}".strip(),
                reason="store-error",
            )
        where = self.endpoint or "AWS S3"
        if isinstance(exc, (bx.ConnectTimeoutError, bx.ReadTimeoutError)):
            return StoreError(
                f"The storage endpoint {where} did not answer within {self._timeout:g} s ({op}).", reason="timeout"
            )
        if isinstance(exc, bx.EndpointConnectionError) and _is_dns_failure(exc):
            return self._dns_failure()
        if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectionClosedError)):
            return StoreError(
                f"Cannot connect to the storage endpoint {where}: check the URL, that the server "
                "is running, and the network.",
                reason="unreachable",
            )
        if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
            return StoreError(
                "No credentials found: give accessKey and secretAccessKey, or a profile.", reason="no-credentials"
            )
        if isinstance(exc, bx.ProfileNotFound):
            return StoreError(f"AWS profile {self._creds[2]!r} not found in ~/.aws/config.", reason="no-credentials")
        if isinstance(exc, bx.BotoCoreError):
            return StoreError(f"Storage request {op} failed: {type(exc).__name__}: {exc}", reason="store-error")
        return exc

    def call(self, op: str, key: str = "", **kwargs):
        """Run one client operation, translating its errors."""
        try:
            return getattr(self.client, op)(Bucket=self.bucket, **({"Key": key} if key else {}), **kwargs)
        except Exception as exc:
            raise self.translate(exc, op, key) from exc


def _is_dns_failure(exc: BaseException) -> bool:
    """Whether a failed DNS lookup is among exc's causes: a socket.gaierror, or urllib3's NameResolutionError (which
    botocore keeps as the `error` of its EndpointConnectionError). Types only, never the OS's wording."""
    import urllib3.exceptions

    kinds = (socket.gaierror, getattr(urllib3.exceptions, "NameResolutionError", socket.gaierror))  # urllib3 < 2
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        if isinstance(current, kinds):
            return True
        seen.add(id(current))
        wrapped = getattr(current, "kwargs", None)
        pending += [current.__cause__, current.__context__, wrapped.get("error") if isinstance(wrapped, dict) else None]
    return False


def copy_stream_atomically(chunks: Iterable[bytes], dest: Path) -> None:
    """Write chunks to a temporary file next to `dest`, then rename: no partial file is ever visible."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".gradient-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, dest)
    except BaseException:
        os.unlink(tmp)
        raise


__all__ = ["Store", "LocalStore", "S3Store", "ObjectInfo", "sha256_file", "copy_stream_atomically"]
