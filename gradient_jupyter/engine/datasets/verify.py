"""Bytes checked against their SHA-256: a manifest entry's while it streams, or an object's in the store."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from ..errors import IntegrityError, NotFound
from ..models import FileEntry
from ..stores import CHUNK, Store


def verified_stream(store: Store, entry: FileEntry, what: str) -> Iterator[bytes]:
    """The bytes of one manifest entry, checked while they stream; a missing object is named by its path."""
    try:
        chunks = store.stream(entry.object_key, CHUNK)
    except NotFound as exc:
        raise IntegrityError(
            f"{what}: the bytes of {entry.path!r} are missing from the store (object "
            f"{entry.key!r} was deleted behind our back)."
        ) from exc
    return verified_chunks(chunks, entry, what)


def verified_chunks(chunks, entry: FileEntry, what: str) -> Iterator[bytes]:
    """Pass chunks through, checking size and SHA-256 against `entry`; IntegrityError names the file."""
    h, size = hashlib.sha256(), 0
    for chunk in chunks:
        size += len(chunk)
        if size > entry.size:
            raise IntegrityError(
                f"{what}: {entry.path!r} in the store is larger than its manifest says "
                f"({entry.size} bytes): it was changed behind our back."
            )
        h.update(chunk)
        yield chunk
    if size != entry.size or (entry.sha256 and h.hexdigest() != entry.sha256):
        raise IntegrityError(
            f"{what}: {entry.path!r} in the store does not match its manifest "
            f"(expected {entry.size} bytes, SHA-256 {entry.sha256}; got {size} bytes, "
            f"SHA-256 {h.hexdigest()}): it was changed or corrupted behind our back."
        )


def hash_object(store: Store, key: str) -> tuple[str, int]:
    """(SHA-256, size) of an object, from its bytes in the store."""
    h, size = hashlib.sha256(), 0
    for chunk in store.stream(key, CHUNK):
        h.update(chunk)
        size += len(chunk)
    return h.hexdigest(), size


def holds(store: Store, key: str, sha256: str, size: int) -> bool:
    """Whether the object holds exactly the bytes of this SHA-256 and size, proven: the store's own checksum of the
    bytes written (`Store.verified_sha256`) matches, or else the bytes, read and hashed, do. Never the metadata a
    writer sets (`x-amz-meta-sha256`): anyone who can write the bucket sets that to anything."""
    try:
        if store.verified_sha256(key) == sha256:
            return True
        return hash_object(store, key) == (sha256, size)
    except NotFound:
        return False
