"""How an S3 store's failures read to the user: botocore's and obstore's exceptions become engine errors with a
plain-language message (never a secret) and the store's request id (`GradientError.request_id`), to quote to the
store's operator; the store's own words go to the debug log."""

from __future__ import annotations

import logging
import re
from typing import Protocol
from urllib.parse import urlsplit

from ..errors import BadInput, Conflict, GradientError, IntegrityError, NotFound, StoreError
from .credentials import NO_CREDENTIALS


class FailedStore(Protocol):
    """What a message names of the store that failed (S3Store has each; this module never imports it)."""

    @property
    def bucket(self) -> str: ...
    @property
    def endpoint(self) -> str | None: ...
    @property
    def region(self) -> str | None: ...
    @property
    def timeout(self) -> float: ...
    @property
    def profile(self) -> str | None: ...
    def signing_region(self) -> str: ...


log = logging.getLogger("gradient_jupyter")

_NO_KEY = (NotFound, "no-such-key", "Object {key!r} does not exist in the bucket.")
_EXISTS = (Conflict, "exists", "Object {key!r} exists already.")
_DENIED = (
    StoreError,
    "access-denied",
    "Access denied to {bucket!r} ({op}): the credentials lack permission; see 'storageProviders policy'.",
)
_UNKNOWN_KEY = (StoreError, "invalid-credentials", "The store does not know this access key: check accessKey.")
_TOKEN = (StoreError, "invalid-credentials", "The session token is invalid or expired.")
_REGION = (
    StoreError,
    "wrong-region",
    "The bucket is in another region than the one configured: set the right region.",
)
_DIGEST = (IntegrityError, "integrity", "The store refused {key!r}: the bytes did not match their checksum.")
_503 = (StoreError, "unavailable", "The store was unavailable (HTTP 503) for {op} after retries: try again later.")
_500 = (
    StoreError,
    "unavailable",
    "The store had an internal error (HTTP 500) for {op} after retries: try again later.",
)
_REFUSED = (StoreError, "invalid-request", "The store refused the request for {key!r}: {detail}")

# S3 error code (or HTTP status) -> (engine error, reason, message); the message may name {key}, {bucket}, {op}
# and {detail} (the store's own message).
CLIENT_ERRORS = {
    "NoSuchKey": _NO_KEY,
    "404": _NO_KEY,
    "NotFound": _NO_KEY,
    "NoSuchBucket": (
        StoreError,
        "no-such-bucket",
        "Bucket {bucket!r} does not exist at this endpoint/region: check the bucket name and region.",
    ),
    "PreconditionFailed": _EXISTS,
    "412": _EXISTS,
    "ConditionalRequestConflict": (Conflict, "exists", "Object {key!r} is being written by someone else."),
    "AccessDenied": _DENIED,
    "403": _DENIED,
    "InvalidAccessKeyId": _UNKNOWN_KEY,
    "InvalidClientTokenId": _UNKNOWN_KEY,
    "SignatureDoesNotMatch": (
        StoreError,
        "signature-mismatch",
        "The store rejected the request signature: check secretAccessKey (and signatureVersion).",
    ),
    "InvalidToken": _TOKEN,
    "ExpiredToken": _TOKEN,
    "AuthorizationHeaderMalformed": _REGION,
    "PermanentRedirect": _REGION,
    "301": _REGION,
    "NoSuchCORSConfiguration": (NotFound, "no-cors", "Bucket {bucket!r} has no CORS rules."),
    "NotImplemented": (StoreError, "not-implemented", "The store does not implement {op}: {detail}"),
    "BadDigest": _DIGEST,
    "XAmzContentChecksumMismatch": _DIGEST,
    "SlowDown": (
        StoreError,
        "unavailable",
        "The store kept answering 'SlowDown' (overloaded) to {op} after retries: try again later.",
    ),
    "503": _503,
    "ServiceUnavailable": _503,
    "500": _500,
    "InternalError": _500,
    "InvalidRequest": _REFUSED,
    "InvalidArgument": _REFUSED,
}


_XML_CODE = re.compile(r"<Code>([^<]{1,64})</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]{0,300})</Message>")
_XML_REQUEST_ID = re.compile(r"<RequestId>([^<]{1,128})</RequestId>")
_XML_REGION = re.compile(r"<Region>([a-z0-9-]{1,32})</Region>")
_HTTP_STATUS = re.compile(r"non-2xx status code: (\d{3})")


def from_botocore(store: FailedStore, exc: Exception, op: str, key: str = "") -> Exception:
    """Turn a botocore exception into an engine error with a plain-language message (never a secret); raise it
    `from exc` (see `_traced`)."""
    if isinstance(exc, GradientError):  # already in the engine's words (callers raise these before translating)
        return exc
    meta = getattr(exc, "response", None) or {}
    meta = meta.get("ResponseMetadata", {}) if isinstance(meta, dict) else {}
    headers = meta.get("HTTPHeaders") or {}
    request_id = meta.get("RequestId") or headers.get("x-amz-request-id") or headers.get("x-amzn-requestid")
    return _traced(store, _botocore_error(store, exc, op, key), exc, op, key, request_id)


def _botocore_error(store: FailedStore, exc: Exception, op: str, key: str) -> Exception:
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
            and actual != (store.region or "us-east-1")
            and code in ("301", "400", "PermanentRedirect", "AuthorizationHeaderMalformed")
        ):
            return StoreError(
                f"Bucket {store.bucket!r} is in region {actual!r}, not {store.region or 'us-east-1'!r}:"
                f" set the region to {actual}.",
                reason="wrong-region",
            )
        if code in CLIENT_ERRORS:
            cls, reason, text = CLIENT_ERRORS[code]
            return cls(text.format(key=key, bucket=store.bucket, op=op, detail=err.get("Message", "")), reason=reason)
        return StoreError(
            f"The store refused {op} on {store.bucket!r}: {code} {err.get('Message', '')}".strip(),
            reason="store-error",
        )
    where = store.endpoint or "AWS S3"
    if isinstance(exc, (bx.ConnectTimeoutError, bx.ReadTimeoutError)):
        return StoreError(
            f"The storage endpoint {where} did not answer within {store.timeout:g} s ({op}).", reason="timeout"
        )
    if isinstance(exc, bx.EndpointConnectionError) and _is_dns_failure(exc):
        return dns_failure(store)
    if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectionClosedError)):
        return StoreError(
            f"Cannot connect to the storage endpoint {where}: check the URL, that the server "
            "is running, and the network.",
            reason="unreachable",
        )
    if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return StoreError(NO_CREDENTIALS, reason="no-credentials")
    if isinstance(exc, bx.ProfileNotFound):
        return StoreError(f"AWS profile {store.profile!r} not found in ~/.aws/config.", reason="no-credentials")
    # Anything else (botocore's other errors, s3transfer's, a client's own): in its own words, never the exception
    # itself, which the caller makes the cause.
    return _failed(op, exc)


def _failed(op: str, exc: Exception) -> StoreError:
    text = str(exc)
    first_line = text.splitlines()[0][:300] if text else ""
    return StoreError(f"Storage request {op} failed: {type(exc).__name__}: {first_line}", reason="store-error")


def from_obstore(store: FailedStore, exc: Exception, op: str, key: str = "") -> Exception:
    """Turn an obstore exception into an engine error with a plain-language message (never a secret); raise it
    `from exc` (see `_traced`)."""
    if isinstance(exc, GradientError):  # already in the engine's words (callers raise these before translating)
        return exc
    request_id = _XML_REQUEST_ID.search(str(exc))
    return _traced(store, _obstore_error(store, exc, op, key), exc, op, key, request_id and request_id.group(1))


def _obstore_error(store: FailedStore, exc: Exception, op: str, key: str) -> Exception:
    text = str(exc)
    where = store.endpoint or "AWS S3"
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
            and region.group(1) != store.signing_region()
            and code in ("AuthorizationHeaderMalformed", "PermanentRedirect", "301", "400")
        ):
            return StoreError(
                f"Bucket {store.bucket!r} is in region {region.group(1)!r}, not {store.signing_region()!r}:"
                f" set the region to {region.group(1)}.",
                reason="wrong-region",
            )
        if code in CLIENT_ERRORS:
            cls, reason, message = CLIENT_ERRORS[code]
            detail = _XML_MESSAGE.search(text)
            return cls(
                message.format(key=key, bucket=store.bucket, op=op, detail=detail.group(1) if detail else code),
                reason=reason,
            )
        detail = _XML_MESSAGE.search(text)
        return StoreError(
            f"The store refused {op} on {store.bucket!r}: {code} {detail.group(1) if detail else ''}".strip(),
            reason="store-error",
        )
    lowered = text.lower()
    if "dns error" in lowered or "failed to lookup address" in lowered:
        return dns_failure(store)
    if "timed out" in lowered or "kind: timeout" in lowered:
        return StoreError(
            f"The storage endpoint {where} did not answer within {store.timeout:g} s ({op}).", reason="timeout"
        )
    if "error sending request" in lowered or "kind: connect" in lowered or "connection" in lowered:
        return StoreError(
            f"Cannot connect to the storage endpoint {where}: check the URL, that the server "
            "is running, and the network.",
            reason="unreachable",
        )
    return _failed(op, exc)


def _traced(store: FailedStore, err: Exception, exc: Exception, op: str, key: str, request_id: str | None) -> Exception:
    """The store's request id goes on the engine error (to quote to the store's operator); the store's own
    words go to the debug log. The caller raises `err from exc`, so the store's exception is the cause, once: a
    translation is a new error, never the exception it translates (which would make it its own cause)."""
    if isinstance(err, GradientError) and err is not exc:
        err.request_id = request_id or None
        log.debug(
            "%s %r on bucket %s failed (request id %s): %s: %s",
            op,
            key,
            store.bucket,
            request_id or "-",
            type(exc).__name__,
            exc,
        )
    return err


def dns_failure(store: FailedStore) -> StoreError:
    """A host name that does not resolve: the endpoint's (misspelt?), or AWS's own (offline, or a bad region)."""
    if store.endpoint:
        return StoreError(
            f"The storage endpoint's host name {urlsplit(store.endpoint).hostname!r} cannot be "
            "resolved (DNS): check the endpoint URL's spelling and this machine's network.",
            reason="dns",
        )
    host = f"{store.bucket}.s3.{store.region}.amazonaws.com" if store.region else "s3.amazonaws.com"
    region = f"that the region {store.region!r} exists, and " if store.region else ""
    return StoreError(
        f"AWS S3 cannot be reached: its host name {host!r} cannot be resolved (DNS). Check "
        f"{region}that this machine is online and its DNS works.",
        reason="dns",
    )


def _is_dns_failure(exc: BaseException) -> bool:
    """Whether a failed DNS lookup is among exc's causes: a socket.gaierror, or urllib3's NameResolutionError (which
    botocore keeps as the `error` of its EndpointConnectionError). Types only, never the OS's wording."""
    import socket  # here: only a failure needs it

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
