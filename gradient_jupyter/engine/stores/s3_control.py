"""The control plane of an S3Store, through boto3: the bucket's region, presigned URLs, calls the doctor and CORS
need, other services (STS), the listings obstore cannot make (keys it cannot name, unfinished multipart uploads),
and how botocore's and obstore's errors read (s3_errors.py). The data plane, object bytes and listings through
obstore, is s3.py's `S3Store`, which is also this."""

from __future__ import annotations

import builtins
import logging
import math
import threading

from ..errors import NotFound, StoreError
from . import s3_errors
from .credentials import Credentials, boto3_client, session
from .regions import BucketRegions

log = logging.getLogger("gradient_jupyter")


class S3ControlPlane:
    """What S3Store does through boto3 (see the module docstring). The attributes are S3Store's, set in its
    `__init__`."""

    bucket: str
    endpoint: str | None
    region: str | None
    timeout: float
    max_attempts: int
    _creds: Credentials
    _signature_version: str | None
    _max_pool: int
    _retry_timeout: float
    _client: object | None
    _lock: threading.RLock
    _obstores: dict[bool, object]
    _other_clients: dict[str, object]
    _resolved_region: str | None
    _regions: BucketRegions | None
    _region_remembered: bool
    _warned: set[str]

    def variant(self, **options) -> S3ControlPlane:
        """S3Store's: the same bucket with some options changed."""
        raise NotImplementedError

    # -- the bucket's region -------------------------------------------------------------------------------------------
    def signing_region(self) -> str:
        """The region requests are signed for: the configured one, else the bucket's own (AWS) or us-east-1."""
        if self.region:
            return self.region
        if self.endpoint:
            return "us-east-1"  # what S3-compatible stores expect when they have no regions
        if self._resolved_region is None:
            with self._lock:
                if self._resolved_region is None:
                    remembered = self._regions.get(self.bucket) if self._regions else None
                    self._region_remembered = remembered is not None
                    self._resolved_region = remembered or self._learn_region()
        return self._resolved_region

    def _learn_region(self) -> str:
        region = self._bucket_region()
        if self._regions:
            self._regions.remember(self.bucket, region)
        return region

    def _region_moved(self, used: str | None) -> bool:
        """After S3 called the region `used` wrong: whether it was a remembered one (the bucket may have been deleted
        and made again elsewhere), now forgotten and asked again, so the request is worth one more try."""
        if used is None or self.region or self.endpoint:
            return False
        with self._lock:
            if self._resolved_region != used:  # another thread has asked again already
                return True
            if not self._region_remembered:  # the bucket's own answer in this process: the error stands
                return False
            self._region_remembered = False
            if self._regions:
                self._regions.remember(self.bucket, None)
            self._obstores.clear()  # they sign for the old region
            self._resolved_region = self._learn_region()
            return self._resolved_region != used

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
        return (
            (meta.get("HTTPHeaders") or {}).get("x-amz-bucket-region")
            or session(self._creds).region_name
            or "us-east-1"
        )

    # -- boto3 clients and calls ---------------------------------------------------------------------------------------
    @property
    def client(self):
        """A boto3 S3 client, for what obstore does not do: presigned URLs, CORS, the doctor's probes."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = boto3_client(
                        "s3",
                        self._creds,
                        endpoint=self.endpoint,
                        region=self.region or None,
                        timeout=self.timeout,
                        attempts=self._control_attempts(),
                        max_pool_connections=self._max_pool,
                        signature_version=self._signature_version,
                        # Custom endpoints need path-style (no wildcard DNS for <bucket>.host); AWS picks its own.
                        s3={"addressing_style": "path" if self.endpoint else "auto"},
                        # We send our own SHA-256 where wanted; botocore's default CRC headers break many
                        # S3-compatible stores.
                        request_checksum_calculation="when_required",
                        response_checksum_validation="when_required",
                    )
        return self._client

    def _control_attempts(self) -> int:
        """Tries of a boto3 request. boto3 has no overall deadline like obstore's `retry_timeout`; its standard
        retries wait up to 1, 2, 4... s before the 2nd, 3rd, 4th... try, so a store with a short `retry_timeout` (a
        lookup, engine/core.py) gets only the tries whose waits fit in it: a bucket that cannot be reached costs
        seconds, not the tens of seconds of five tries."""
        fitting = 1 + int(math.log2(self._retry_timeout + 1))
        return max(1, min(self.max_attempts, fitting))

    def client_for(self, service: str):
        """A client of another service (e.g. 'sts') with this store's credentials, endpoint, region and timeouts."""
        with self._lock:
            if service not in self._other_clients:
                self._other_clients[service] = boto3_client(
                    service,
                    self._creds,
                    endpoint=self.endpoint,
                    region=self.region or "us-east-1",
                    timeout=self.timeout,
                    attempts=self.max_attempts,
                )
            return self._other_clients[service]

    @property
    def profile(self) -> str | None:
        return self._creds.profile

    def call(self, op: str, key: str = "", **kwargs):
        """Run one client operation, translating its errors."""
        try:
            return getattr(self.client, op)(Bucket=self.bucket, **({"Key": key} if key else {}), **kwargs)
        except Exception as exc:
            raise self.translate(exc, op, key) from exc

    def presign(self, method: str, key: str, expires: int = 3600, **params) -> str:
        """A presigned URL. A `ContentLength` given is signed in with SigV4 (which signs that header, where SigV2,
        botocore's default for some endpoints, does not) unless the store is set to SigV2: S3 refuses other sizes."""
        store = (
            self.variant(signature_version="s3v4")
            if "ContentLength" in params and not self._signature_version
            else self
        )
        return store.client.generate_presigned_url(
            method, Params={"Bucket": self.bucket, "Key": key, **params}, ExpiresIn=expires
        )

    def translate(self, exc: Exception, op: str, key: str = "") -> Exception:
        """A botocore exception as an engine error (stores/s3_errors.py)."""
        return s3_errors.from_botocore(self, exc, op, key)

    def translate_obstore(self, exc: Exception, op: str, key: str = "") -> Exception:
        """An obstore exception as an engine error (stores/s3_errors.py)."""
        return s3_errors.from_obstore(self, exc, op, key)

    # -- listings obstore cannot make ----------------------------------------------------------------------------------
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
        return self._boto3_pages(what, prefix)

    def _boto3_pages(self, what: str, prefix: str) -> builtins.list:
        """Every page of a ListObjectsV2 through boto3: the prefixes below `prefix` when `what` is "prefixes", else
        (key, size) of every object."""
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

    def pending_parts_bytes(self, prefix: str) -> int:
        """Bytes of the parts of the multipart uploads not yet completed or aborted under `prefix` (0, with a warning
        in the log, if the credentials may not list them)."""
        total, page_args = 0, {"Prefix": prefix}
        try:
            while True:
                page = self.call("list_multipart_uploads", **page_args)
                for upload in page.get("Uploads", []):
                    try:
                        total += self._parts_bytes(upload["Key"], upload["UploadId"])
                    except (StoreError, NotFound) as exc:
                        if exc.reason == "access-denied":
                            raise
                        # completed or aborted since the listing: its bytes are an object now, or gone
                if not page.get("IsTruncated"):
                    return total
                page_args.update(KeyMarker=page["NextKeyMarker"], UploadIdMarker=page["NextUploadIdMarker"])
        except StoreError as exc:  # e.g. a policy without s3:ListBucketMultipartUploads
            log.warning(
                "Bucket %s: unfinished multipart uploads not counted against the quota: %s", self.bucket, exc.message
            )
            return total

    def _parts_bytes(self, key: str, upload_id: str) -> int:
        total, page_args = 0, {"UploadId": upload_id}
        while True:
            page = self.call("list_parts", key, **page_args)
            total += sum(part["Size"] for part in page.get("Parts", []))
            if not page.get("IsTruncated"):
                return total
            page_args["PartNumberMarker"] = page["NextPartNumberMarker"]
