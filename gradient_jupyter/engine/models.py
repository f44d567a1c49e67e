"""What the engine hands the front ends: datasets, versions, files, tags, and the results of save and load."""

from __future__ import annotations

from dataclasses import dataclass, field

from .formatting import human_bytes


@dataclass(frozen=True)
class Dataset:
    id: str
    name: str
    description: str
    storage_provider_id: str
    dt_created: str
    dt_modified: str

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "storageProviderId": self.storage_provider_id,
            "dtCreated": self.dt_created,
            "dtModified": self.dt_modified,
        }


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str | None = None
    key: str | None = None  # the object key holding the bytes (manifest entries)
    block_size: int | None = None  # large files: the SHA-256 of each block of this size, in order (reading.py)
    blocks: tuple[str, ...] = ()

    @property
    def object_key(self) -> str:
        """`key` where one must be: manifest entries and files put into a version always have it."""
        if self.key is None:
            raise ValueError(f"File entry {self.path!r} has no object key.")
        return self.key

    def to_json(self) -> dict:
        out: dict[str, str | int] = {"path": self.path, "size": self.size}
        if self.sha256:
            out["sha256"] = self.sha256
        return out


@dataclass(frozen=True)
class Version:
    dataset_id: str
    version: str
    message: str
    is_committed: bool
    tags: tuple[str, ...]
    file_count: int
    size: int
    dt_created: str
    dt_committed: str | None
    parent: str | None = None  # the version that was latest when this one was created
    created_by: dict | None = None  # where it came from (engine/history.py `created_by`); None for old versions

    @property
    def ref(self) -> str:
        return f"{self.dataset_id}:{self.version}"

    def to_json(self) -> dict:
        return {
            "datasetId": self.dataset_id,
            "version": self.version,
            "message": self.message,
            "isCommitted": self.is_committed,
            "tags": list(self.tags),
            "fileCount": self.file_count,
            "size": self.size,
            "dtCreated": self.dt_created,
            "dtCommitted": self.dt_committed,
            "parent": self.parent,
            "createdBy": self.created_by,
        }

    def __repr__(self) -> str:
        state = "committed" if self.is_committed else "uncommitted"
        tags = f", tags {', '.join(self.tags)}" if self.tags else ""
        return f"<Version {self.ref} ({state}): {self.file_count} files, {human_bytes(self.size)}{tags}>"


@dataclass(frozen=True)
class Draft:
    """An uncommitted version (a draft), as `Datasets.drafts` lists it: one a save left when it was interrupted or
    killed, or one made to put files into. `held_bytes`: what its folder holds in the bucket, counted in the
    provider's usage until it is committed or deleted; `save_over`: made by a save that ended without committing
    (Ctrl-C, a killed process), so the dataset's next save reuses its bytes and removes it."""

    version: Version
    held_bytes: int
    save_over: bool

    @property
    def ref(self) -> str:
        return self.version.ref

    def to_json(self) -> dict:
        return {**self.version.to_json(), "heldBytes": self.held_bytes, "interruptedSave": self.save_over}


@dataclass(frozen=True)
class Tag:
    name: str
    version: str

    def to_json(self) -> dict:
        return {"name": self.name, "version": self.version}


@dataclass(frozen=True)
class ProgressEvent:
    """Progress of a save or load: `phase` is 'hash', 'upload', 'download' or 'verify'."""

    phase: str
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int


@dataclass
class TransferSummary:
    """What a save or load did. Bytes 'copied' were copied inside the store (a save copies nothing since resumed
    leftovers are taken over where they lie, but the summary keeps SPEC's four figures); 'resumed' were sent by an
    interrupted save and taken over by this one; 'skipped' were not moved at all."""

    dataset: Dataset
    version: Version
    files: int = 0
    bytes_sent: int = 0
    bytes_copied: int = 0
    bytes_resumed: int = 0
    bytes_skipped: int = 0
    files_skipped: int = 0
    requests: int = 0
    seconds: float = 0.0
    destination: str | None = None
    unchanged: bool = False  # save: the files were those of the latest version, which is the answer
    warnings: list[str] = field(default_factory=list)  # worth showing, not errors (e.g. a provider not searched)
    extra: dict = field(default_factory=dict)

    def line(self) -> str:
        moved = "received" if self.destination else "sent"
        line = (
            f"{self.files} files, {human_bytes(self.bytes_sent)} {moved}, {human_bytes(self.bytes_copied)} copied in "
            f"the store, {human_bytes(self.bytes_skipped)} skipped, in {self.seconds:.1f} s"
        )
        if self.bytes_resumed:
            line += f"; {human_bytes(self.bytes_resumed)} resumed (sent by an interrupted save, not sent again)"
        return line
