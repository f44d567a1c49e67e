"""The Store contract: what the engine needs of a bucket, which the embedded store (local.py) and S3Store (s3.py)
implement; the helpers every store shares. The contract is described in README.md, "Stores"."""

from __future__ import annotations

import builtins
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from ..errors import IntegrityError, QuotaExceeded
from ..formatting import human_bytes
from ..hashing import CHUNK, file_state

Progress = Callable[[int], None]
WriteMode = Literal["create", "overwrite"]  # "create": only if the key is free, atomically (obstore's `mode`)


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
    def put(self, key: str, data: bytes, *, mode: WriteMode = "overwrite", sha256: str | None = None) -> None:
        """Write a whole object. mode "create" writes only if the key is free (else Conflict, reason "exists"),
        atomically: of two writers exactly one wins. With `sha256`, bytes that do not match are refused
        (IntegrityError) and, where the store checks it, kept with the object (`verified_sha256`)."""
        raise NotImplementedError

    def put_bytes(self, key: str, data: bytes, *, mode: WriteMode = "overwrite", sha256: str | None = None) -> None:
        """`put`, for callers that hold bytes (the same modes)."""
        self.put(key, data, mode=mode, sha256=sha256)

    def put_file(
        self,
        key: str,
        path: str | os.PathLike,
        *,
        size: int,
        sha256: str,
        mode: WriteMode = "overwrite",
        progress: Progress | None = None,
    ) -> None:
        """Upload a local file whose size and SHA-256 are known; a file that changed since is refused
        (IntegrityError) and nothing is written. `mode` as for `put`."""
        raise NotImplementedError

    def put_new_file(
        self,
        key: str,
        path: str | os.PathLike,
        *,
        state: tuple[int, int, int, int],
        block_size: int | None = None,
        progress: Progress | None = None,
    ) -> tuple[str, int, builtins.list[str]]:
        """Upload a local file not hashed yet, hashing its bytes as they are read for sending: returns (SHA-256,
        size, SHA-256s of its `block_size` blocks) of exactly the bytes written. `state` is the file's `file_state`
        when the caller chose to send it (last modified long enough before for a change to move it, as the hash
        cache requires): a file whose state differs when it is opened or has moved by the end of the read changed
        while it was being saved, and is refused (IntegrityError) with nothing written."""
        raise NotImplementedError

    # -- reads ----------------------------------------------------------------------------------------------------
    def get(self, key: str) -> bytes:
        """A whole (small) object."""
        return b"".join(self.stream(key))

    def get_bytes(self, key: str, limit: int | None = None) -> bytes:
        """A whole (small) object; with `limit`, reading stops past `limit` bytes (the answer is then longer than
        `limit`: the caller refuses it), so an object forged huge costs no more than that."""
        if limit is None:
            return self.get(key)
        got = bytearray()
        chunks = self.stream(key)
        try:
            for chunk in chunks:
                got += chunk
                if len(got) > limit:
                    break
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return bytes(got)

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

    def verified_sha256(self, key: str) -> str | None:
        """The SHA-256 of the object's whole bytes as the store itself computed or checked it when they were written,
        or None (the store keeps none: hash the bytes). Never metadata a writer sets (`x-amz-meta-sha256`): anyone
        who can write the bucket can set that to anything. Only a confirmation of a SHA-256 known otherwise
        (`datasets/verify.py` `holds`): a store may answer a checksum of something else."""
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
    def used_bytes(self, prefix: str = "", listing: Iterable[ObjectInfo] | None = None) -> int:
        """Bytes of the objects under `prefix` (`listing`: `list(prefix)` as the caller read it already)."""
        return sum(o.size for o in (self.list(prefix) if listing is None else listing))

    def variant(self, **options) -> Store:
        """The same store with some options changed (timeout, attempts); a store without such options is itself."""
        return self

    def check_quota(self, needed: int, prefix: str = "", *, held: bool = False) -> None:
        """Raise QuotaExceeded, before any byte is sent, if `needed` more bytes would pass the quota. `held`: the
        store holds those bytes already (uploads a commit is to keep), so they are not counted twice."""
        if self.quota is None or needed <= 0:
            return
        used = self.used_bytes(prefix) - (needed if held else 0)
        if used + needed > self.quota:
            raise QuotaExceeded(
                f"Gradient Managed quota exceeded: used {human_bytes(used)} ({used} bytes) of "
                f"{human_bytes(self.quota)} ({self.quota} bytes); this needs {human_bytes(needed)} ({needed} bytes) "
                "more. Delete old versions, raise c.GradientStorage.managed_quota, or save to another provider."
            )


def changed(key: str, path) -> IntegrityError:
    return IntegrityError(
        f"Upload of {key!r} refused: {path} changed while it was being saved (its SHA-256 or size differs). Save again."
    )


def hashed_reads(
    key: str,
    path: str | os.PathLike,
    state: tuple[int, int, int, int],
    piece: int,
    block_size: int | None,
    progress: Progress | None,
    found: dict,
) -> Iterator[bytes]:
    """The bytes of a file for `put_new_file`, hashed as they go: read a block at a time with `block_size` (each
    read is one block, hashed whole: a regular file's reads are full until its end), else in `piece`-sized reads;
    at the end `found` holds sha256, size and blocks. Raises `changed` if the file's state is not `state` when
    opened or at the end, so an upload fed by this never completes with bytes of a changed file."""
    h, size, blocks = hashlib.sha256(), 0, []
    with open(path, "rb") as f:
        if file_state(os.fstat(f.fileno())) != state:
            raise changed(key, path)
        while chunk := f.read(block_size or piece):
            h.update(chunk)
            size += len(chunk)
            if block_size:
                blocks.append(hashlib.sha256(chunk).hexdigest())
            yield chunk
            if progress:
                progress(len(chunk))
        if file_state(os.fstat(f.fileno())) != state or size != state[0]:
            raise changed(key, path)
    found.update(sha256=h.hexdigest(), size=size, blocks=blocks)


def is_create_only(mode: WriteMode) -> bool:
    if mode not in ("create", "overwrite"):
        raise ValueError(f"mode must be 'create' or 'overwrite', not {mode!r}.")
    return mode == "create"


def check_range(start: int, end: int) -> None:
    if start < 0 or end < start:
        raise ValueError(f"Invalid byte range [{start}, {end}): give 0 <= start <= end.")
