"""Stores: one small interface over an S3 bucket (boto3) or the embedded folder laid out like a bucket."""
from __future__ import annotations

import base64
import functools
import hashlib
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from .errors import BadInput, Conflict, IntegrityError, NotFound, QuotaExceeded, StoreError

CHUNK = 1024 * 1024
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
Progress = Callable[[int], None]


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


class Store:
    """What the engine needs of a bucket. Keys are full object keys; missing objects raise NotFound."""

    bucket: str
    quota: int | None = None
    supports_presign = False

    def put_bytes(self, key: str, data: bytes, *, create_only: bool = False, sha256: str | None = None) -> None:
        raise NotImplementedError

    def put_file(self, key: str, path: str | os.PathLike, *, size: int, sha256: str, create_only: bool = False,
                 progress: Progress | None = None) -> None:
        raise NotImplementedError

    def stream(self, key: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        raise NotImplementedError

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.stream(key))

    def head(self, key: str) -> ObjectInfo | None:
        raise NotImplementedError

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        raise NotImplementedError

    def list_prefixes(self, prefix: str) -> list[str]:
        """The 'folders' directly under `prefix` (which ends with '/'), each ending with '/'."""
        raise NotImplementedError

    def delete(self, keys: Iterable[str]) -> None:
        raise NotImplementedError

    def copy(self, src: str, dst: str) -> None:
        """Copy an object inside the store (no bytes through this machine)."""
        raise NotImplementedError

    def stored_sha256(self, key: str) -> str | None:
        """The SHA-256 recorded with the object at upload, if the store keeps one (None: hash the bytes)."""
        return None

    def used_bytes(self, prefix: str = "") -> int:
        return sum(o.size for o in self.list(prefix))

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


# --------------------------------------------------------------------------------------------------------------
class LocalStore(Store):
    """The embedded Gradient Managed store: `<root>/<key>` files; create-only writes are atomic (link, not rename)."""

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
        if (not key or "\\" in key or "\x00" in key or key.startswith("/")
                or any(p in ("", ".", "..") for p in parts)):
            raise BadInput(f"Invalid object key {key!r}.")
        return self.root.joinpath(*parts)

    def _publish(self, tmp_path: str, target: Path, create_only: bool) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            if create_only:
                try:
                    os.link(tmp_path, target)  # fails if target exists: an atomic create-only write
                except FileExistsError:
                    raise Conflict(f"Object {target.relative_to(self.root).as_posix()!r} exists already.",
                                   reason="exists") from None
            else:
                os.replace(tmp_path, target)
        finally:
            if os.path.exists(tmp_path):
                os.unlink(tmp_path)

    def _tmp_file(self):
        return tempfile.NamedTemporaryFile(dir=self.tmp, delete=False)

    def put_bytes(self, key, data, *, create_only=False, sha256=None):
        target = self._path(key)
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
            raise IntegrityError(f"Upload of {key!r} refused: {path} changed while it was being saved "
                                 "(its SHA-256 or size differs). Save again.")
        self._publish(f.name, target, create_only)

    def stream(self, key, chunk_size=CHUNK):
        try:
            f = open(self._path(key), "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"Object {key!r} does not exist in the store.", reason="no-such-key") from None
        return self._read_file(f, chunk_size)

    def stream_range(self, key, start, end, chunk_size=CHUNK):
        """Bytes start..end-1 of an object."""
        try:
            f = open(self._path(key), "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"Object {key!r} does not exist in the store.", reason="no-such-key") from None
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
        if not start.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames.sort()
            rel = Path(dirpath).relative_to(self.root).as_posix()
            base = "" if rel == "." else rel + "/"
            for name in sorted(filenames):
                key = base + name
                if key.startswith(prefix):
                    try:
                        yield ObjectInfo(key, os.stat(os.path.join(dirpath, name)).st_size)
                    except FileNotFoundError:  # deleted while we walked
                        continue

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
_CLIENT_ERRORS = {
    "NoSuchKey": (NotFound, "no-such-key", "Object {key!r} does not exist in the bucket."),
    "404": (NotFound, "no-such-key", "Object {key!r} does not exist in the bucket."),
    "NotFound": (NotFound, "no-such-key", "Object {key!r} does not exist in the bucket."),
    "NoSuchBucket": (StoreError, "no-such-bucket",
                     "Bucket {bucket!r} does not exist at this endpoint/region: check the bucket name and region."),
    "PreconditionFailed": (Conflict, "exists", "Object {key!r} exists already."),
    "412": (Conflict, "exists", "Object {key!r} exists already."),
    "ConditionalRequestConflict": (Conflict, "exists", "Object {key!r} is being written by someone else."),
    "AccessDenied": (StoreError, "access-denied",
                     "Access denied to {bucket!r} ({op}): the credentials lack permission; see 'storageProviders policy'."),
    "403": (StoreError, "access-denied",
            "Access denied to {bucket!r} ({op}): the credentials lack permission; see 'storageProviders policy'."),
    "InvalidAccessKeyId": (StoreError, "invalid-credentials",
                           "The store does not know this access key: check accessKey."),
    "SignatureDoesNotMatch": (StoreError, "signature-mismatch",
                              "The store rejected the request signature: check secretAccessKey (and signatureVersion)."),
    "InvalidClientTokenId": (StoreError, "invalid-credentials",
                             "The store does not know this access key: check accessKey."),
    "InvalidToken": (StoreError, "invalid-credentials", "The session token is invalid or expired."),
    "ExpiredToken": (StoreError, "invalid-credentials", "The session token is invalid or expired."),
    "AuthorizationHeaderMalformed": (StoreError, "wrong-region",
                                     "The bucket is in another region than the one configured: set the right region."),
    "PermanentRedirect": (StoreError, "wrong-region",
                          "The bucket is in another region than the one configured: set the right region."),
    "301": (StoreError, "wrong-region",
            "The bucket is in another region than the one configured: set the right region."),
    "NoSuchCORSConfiguration": (NotFound, "no-cors", "Bucket {bucket!r} has no CORS rules."),
    "NotImplemented": (StoreError, "not-implemented", "The store does not implement {op}: {detail}"),
    "BadDigest": (IntegrityError, "integrity", "The store refused {key!r}: the bytes did not match their checksum."),
    "XAmzContentChecksumMismatch": (IntegrityError, "integrity",
                                    "The store refused {key!r}: the bytes did not match their checksum."),
    "SlowDown": (StoreError, "unavailable", "The store kept answering 'SlowDown' (overloaded) to {op} after retries: "
                                            "try again later."),
    "503": (StoreError, "unavailable", "The store was unavailable (HTTP 503) for {op} after retries: try again later."),
    "ServiceUnavailable": (StoreError, "unavailable",
                           "The store was unavailable (HTTP 503) for {op} after retries: try again later."),
    "InternalError": (StoreError, "unavailable",
                      "The store had an internal error (HTTP 500) for {op} after retries: try again later."),
    "500": (StoreError, "unavailable",
            "The store had an internal error (HTTP 500) for {op} after retries: try again later."),
    "InvalidRequest": (StoreError, "invalid-request", "The store refused the request for {key!r}: {detail}"),
}


class S3Store(Store):
    """An S3-compatible bucket. One boto3 client per store, shared by threads (boto3 clients are thread-safe)."""

    supports_presign = True
    max_attempts = 5  # standard retry mode: 500/503/SlowDown/resets retried with backoff, then reported

    def __init__(self, bucket: str, *, endpoint: str | None = None, region: str | None = None,
                 access_key: str | None = None, secret_key: str | None = None, profile: str | None = None,
                 signature_version: str | None = None, timeout: float = 15.0, max_pool: int = 64,
                 send_checksums: bool = True, quota: int | None = None, part_size: int = 16 * 1024**2,
                 multipart_threshold: int = 64 * 1024**2, attempts: int | None = None):
        self._options = {k: v for k, v in locals().items() if k not in ("self", "bucket", "__class__")}
        self.bucket = bucket
        self.endpoint = endpoint
        self.region = region
        self.quota = quota
        self.send_checksums = send_checksums
        self.part_size = part_size
        self.multipart_threshold = multipart_threshold
        self._creds = (access_key, secret_key, profile)
        self._signature_version = {"v4": "s3v4", "v2": "s3"}.get(signature_version or "", signature_version)
        self._timeout = timeout
        self._max_pool = max_pool
        if attempts:
            self.max_attempts = attempts
        self._client = None
        self._part_pool = None
        self._lock = threading.Lock()
        self._variants: dict[tuple, S3Store] = {}
        self._other_clients: dict[str, object] = {}

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, endpoint={self.endpoint!r}, region={self.region!r})"

    @property
    def client(self):
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
        config = Config(retries={"mode": "standard", "max_attempts": self.max_attempts},
                        connect_timeout=min(self._timeout, 10), read_timeout=self._timeout)
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
        from botocore import exceptions as bx

        if isinstance(exc, bx.ClientError):
            err = exc.response.get("Error", {})
            meta = exc.response.get("ResponseMetadata", {})
            code = str(err.get("Code") or meta.get("HTTPStatusCode", ""))
            if op == "head_bucket" and code in ("404", "NotFound"):  # HEAD has no body: 404 means no bucket here
                code = "NoSuchBucket"
            actual = (meta.get("HTTPHeaders") or {}).get("x-amz-bucket-region")
            if actual and actual != (self.region or "us-east-1") and code in ("301", "400", "PermanentRedirect",
                                                                              "AuthorizationHeaderMalformed"):
                return StoreError(f"Bucket {self.bucket!r} is in region {actual!r}, not {self.region or 'us-east-1'!r}:"
                                  f" set the region to {actual}.", reason="wrong-region")
            if code in _CLIENT_ERRORS:
                cls, reason, text = _CLIENT_ERRORS[code]
                return cls(text.format(key=key, bucket=self.bucket, op=op, detail=err.get("Message", "")),
                           reason=reason)
            return StoreError(f"The store refused {op} on {self.bucket!r}: {code} {err.get('Message', '')}".strip(),
                              reason="store-error")
        where = self.endpoint or "AWS S3"
        if isinstance(exc, (bx.ConnectTimeoutError, bx.ReadTimeoutError)):
            return StoreError(f"The storage endpoint {where} did not answer within {self._timeout:g} s ({op}).",
                              reason="timeout")
        if isinstance(exc, bx.EndpointConnectionError) and _is_dns_failure(exc):
            host = urlsplit(self.endpoint).hostname if self.endpoint else "the AWS S3 endpoint"
            return StoreError(f"The storage endpoint's host name {host!r} cannot be resolved (DNS): check the "
                              "endpoint URL's spelling and this machine's network.", reason="dns")
        if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectionClosedError)):
            return StoreError(f"Cannot connect to the storage endpoint {where}: check the URL, that the server "
                              "is running, and the network.", reason="unreachable")
        if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
            return StoreError("No credentials found: give accessKey and secretAccessKey, or a profile.",
                              reason="no-credentials")
        if isinstance(exc, bx.ProfileNotFound):
            return StoreError(f"AWS profile {self._creds[2]!r} not found in ~/.aws/config.", reason="no-credentials")
        if isinstance(exc, bx.BotoCoreError):
            return StoreError(f"Storage request {op} failed: {type(exc).__name__}: {exc}", reason="store-error")
        return exc

    def _direct_ready(self):
        """(credentials, HTTP session) for direct requests, or None where they do not apply."""
        if not self.endpoint or self._signature_version not in (None, "s3v4"):
            return None  # AWS's own endpoints (virtual hosts, redirects) and SigV2 stay with the full client
        client = self.client
        credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
        session = getattr(getattr(client, "_endpoint", None), "http_session", None)
        return (credentials, session) if credentials is not None and session is not None else None

    def _direct(self, method: str, key: str, operation: str, *, body=None, sha256: str = EMPTY_SHA256,
                headers: dict | None = None, query: str = "", stream: bool = False):
        """One signed request to a custom endpoint through the client's own connection pool, without botocore's API
        layer (parameter checks, endpoint rules, hooks, XML parsing: most of its CPU per small object).

        The payload is signed with the SHA-256 we already know instead of hashing the body again. Returns the
        response if it succeeded, else None, and the caller makes the same call through the full client, which
        retries and explains the error; so a failure here costs one request, never a different outcome."""
        ready = self._direct_ready()
        if ready is None:
            return None
        from botocore.awsrequest import AWSRequest
        from botocore.hooks import first_non_none_response
        from botocore.utils import percent_encode

        credentials, session = ready
        url = f"{self.endpoint.rstrip('/')}/{self.bucket}/{percent_encode(key, safe='/~')}" + \
              (f"?{query}" if query else "")
        request = AWSRequest(method, url, data=body, headers=headers or {}, stream_output=stream)
        request.context["sha256"] = sha256
        response = None
        try:
            signer = _known_payload_signer()(credentials.get_frozen_credentials(), "s3", self.region or "us-east-1")
            signer.add_auth(request)
            prepared = request.prepare()
            # moto's mock_aws and any other before-send hook answer here, as they do for the client's own calls
            response = first_non_none_response(
                self.client.meta.events.emit(f"before-send.s3.{operation}", request=prepared)) \
                or session.send(prepared)
        except Exception:
            pass
        if response is not None and 200 <= response.status_code < 300:
            return response
        if response is not None and hasattr(response.raw, "drain_conn"):
            response.raw.drain_conn()  # read the (small) error body, so the connection can serve another request
        if hasattr(body, "seek"):
            body.seek(0)
        return None

    def call(self, op: str, key: str = "", **kwargs):
        """Run one client operation, translating its errors."""
        try:
            return getattr(self.client, op)(Bucket=self.bucket, **({"Key": key} if key else {}), **kwargs)
        except Exception as exc:
            raise self.translate(exc, op, key) from None

    def _checksum(self, sha256: str | None) -> dict:
        if not sha256:
            return {}
        meta = {"Metadata": {"sha256": sha256}}
        if not self.send_checksums:
            return meta
        return {**meta, "ChecksumAlgorithm": "SHA256", "ChecksumSHA256": b64_sha256(sha256)}

    def _direct_headers(self, sha256: str, extra: dict, size: int, *, metadata: bool = True) -> dict:
        """The headers the full client would send for these parameters (see _checksum)."""
        headers = {"Content-Length": str(size)}
        if "IfNoneMatch" in extra:
            headers["If-None-Match"] = extra["IfNoneMatch"]
        if metadata:
            headers["x-amz-meta-sha256"] = sha256
        if self.send_checksums:
            headers.update({"x-amz-sdk-checksum-algorithm": "SHA256", "x-amz-checksum-sha256": b64_sha256(sha256)})
        if size >= 1024**2:  # as botocore does: let the store refuse (exists, denied) before the body is sent
            headers["Expect"] = "100-continue"
        return headers

    def put_bytes(self, key, data, *, create_only=False, sha256=None):
        extra = {"IfNoneMatch": "*"} if create_only else {}
        self._put(key, data, extra, sha256)

    def _put(self, key, body, extra, sha256, size=None):
        if sha256 and size is not None and self._direct("PUT", key, "PutObject", body=body, sha256=sha256,
                                                        headers=self._direct_headers(sha256, extra, size)):
            return
        try:
            self.call("put_object", key, Body=body, **extra, **self._checksum(sha256))
        except StoreError as exc:
            # Some S3-compatible stores reject checksum headers: remember that and send without them.
            if sha256 and self.send_checksums and exc.reason == "invalid-request":
                self.send_checksums = False
                if hasattr(body, "seek"):
                    body.seek(0)
                self.call("put_object", key, Body=body, **extra, **self._checksum(sha256))
            else:
                raise

    def put_file(self, key, path, *, size, sha256, create_only=False, progress=None):
        extra = {"IfNoneMatch": "*"} if create_only else {}
        if size < self.multipart_threshold:
            with open(path, "rb") as f:
                self._put(key, f, extra, sha256, size)
            if progress:
                progress(size)
            return
        self._put_multipart(key, path, sha256, extra, progress)

    def _put_multipart(self, key, path, sha256, extra, progress):
        algo = {"ChecksumAlgorithm": "SHA256"} if self.send_checksums else {}
        upload_id = self.call("create_multipart_upload", key, Metadata={"sha256": sha256}, **algo)["UploadId"]
        size = os.path.getsize(path)
        offsets = range(0, size, self.part_size)

        def send_part(number_offset):
            number, offset = number_offset
            with open(path, "rb") as f:
                f.seek(offset)
                chunk = f.read(self.part_size)
            part_sha = hashlib.sha256(chunk).hexdigest()
            part_sum = {"ChecksumSHA256": b64_sha256(part_sha)} if self.send_checksums else {}
            direct = self._direct("PUT", key, "UploadPart", body=chunk, sha256=part_sha,
                                  query=f"partNumber={number}&uploadId={quote(upload_id, safe='')}",
                                  headers=self._direct_headers(part_sha, {}, len(chunk), metadata=False))
            if direct is not None:
                etag = direct.headers["ETag"]
            else:
                etag = self.call("upload_part", key, UploadId=upload_id, PartNumber=number, Body=chunk,
                                 **part_sum)["ETag"]
            if progress:
                progress(len(chunk))
            return {"PartNumber": number, "ETag": etag, **part_sum}

        try:
            parts = list(self.part_pool.map(send_part, enumerate(offsets, start=1)))
            self.call("complete_multipart_upload", key, UploadId=upload_id,
                      MultipartUpload={"Parts": parts}, **extra)
        except BaseException:
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except Exception:
                pass
            raise

    @property
    def part_pool(self) -> ThreadPoolExecutor:
        """Threads for the parts of large files, apart from the per-file pool so neither waits on the other."""
        if self._part_pool is None:
            with self._lock:
                if self._part_pool is None:
                    self._part_pool = ThreadPoolExecutor(8, thread_name_prefix="gradient-part")
        return self._part_pool

    def stream_range(self, key: str, start: int, end: int, chunk_size: int = CHUNK) -> Iterator[bytes]:
        """Bytes start..end-1 of an object."""
        return self._read_body(self._get(key, f"bytes={start}-{end - 1}"), key, chunk_size)

    def stream(self, key, chunk_size=CHUNK):
        return self._read_body(self._get(key), key, chunk_size)

    def get_bytes(self, key):
        # Small records, often absent (a 404 is an answer): through the client, not direct and then again.
        return b"".join(self._read_body(self.call("get_object", key)["Body"], key, CHUNK))

    def _get(self, key: str, byte_range: str | None = None):
        """The body of a GET, direct where it can be (see _direct), else through the client."""
        from botocore.response import StreamingBody

        r = self._direct("GET", key, "GetObject", headers={"Range": byte_range} if byte_range else {}, stream=True)
        if r is not None:
            length = r.headers.get("content-length")
            return StreamingBody(r.raw, int(length) if length else None)
        return self.call("get_object", key, **({"Range": byte_range} if byte_range else {}))["Body"]

    def _read_body(self, body, key, chunk_size):
        try:
            while True:
                try:
                    chunk = body.read(chunk_size)
                except Exception as exc:
                    raise self.translate(exc, "get_object", key) from None
                if not chunk:
                    break
                yield chunk
        finally:
            body.close()

    def head(self, key):
        try:
            r = self.call("head_object", key)
        except NotFound:
            return None
        return ObjectInfo(key, r["ContentLength"])

    def list(self, prefix):
        token = None
        while True:
            kwargs = {"Prefix": prefix, **({"ContinuationToken": token} if token else {})}
            page = self.call("list_objects_v2", **kwargs)
            for obj in page.get("Contents", []):
                yield ObjectInfo(obj["Key"], obj["Size"])
            if not page.get("IsTruncated"):
                return
            token = page["NextContinuationToken"]

    def list_prefixes(self, prefix):
        out, token = [], None
        while True:
            kwargs = {"Prefix": prefix, "Delimiter": "/", **({"ContinuationToken": token} if token else {})}
            page = self.call("list_objects_v2", **kwargs)
            out += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
            if not page.get("IsTruncated"):
                return sorted(out)
            token = page["NextContinuationToken"]

    def delete(self, keys):
        keys = list(keys)
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i:i + 1000]]
            r = self.call("delete_objects", Delete={"Objects": batch, "Quiet": True})
            errors = [e for e in r.get("Errors", []) if e.get("Code") != "NoSuchKey"]
            if errors:
                raise StoreError(f"Could not delete {len(errors)} object(s), e.g. {errors[0].get('Key')!r}: "
                                 f"{errors[0].get('Code')}.")

    def copy(self, src, dst):
        size = self.call("head_object", src)["ContentLength"]
        if size < 5 * 1024**3:
            self.call("copy_object", dst, CopySource={"Bucket": self.bucket, "Key": src}, MetadataDirective="COPY")
            return
        try:  # over 5 GiB S3 needs a multipart copy, which s3transfer does for us
            self.client.copy({"Bucket": self.bucket, "Key": src}, self.bucket, dst)
        except Exception as exc:
            raise self.translate(exc, "copy", dst) from None

    def stored_sha256(self, key):
        meta = self.call("head_object", key).get("Metadata", {})
        value = meta.get("sha256", "")
        return value if len(value) == 64 else None

    def presign(self, method: str, key: str, expires: int = 3600, **params) -> str:
        return self.client.generate_presigned_url(method, Params={"Bucket": self.bucket, "Key": key, **params},
                                                  ExpiresIn=expires)


@functools.cache
def _known_payload_signer():
    """botocore's S3 SigV4 signer, given the payload's SHA-256 instead of hashing the body again (made on first
    use: botocore is imported only when a bucket is used)."""
    from botocore.auth import S3SigV4Auth

    class KnownPayloadSigV4(S3SigV4Auth):
        def payload(self, request):
            return request.context["sha256"]

    return KnownPayloadSigV4


def _is_dns_failure(exc: Exception) -> bool:
    error = getattr(exc, "kwargs", {}).get("error")
    try:
        from urllib3.exceptions import NameResolutionError
    except ImportError:  # urllib3 < 2
        NameResolutionError = ()  # noqa: N806
    return isinstance(error, NameResolutionError) or "Name or service not known" in str(error) \
        or "nodename nor servname" in str(error) or "getaddrinfo failed" in str(error) \
        or "name resolution" in str(error)


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


__all__ = ["Store", "LocalStore", "S3Store", "ObjectInfo", "sha256_file", "human_bytes", "copy_stream_atomically"]
