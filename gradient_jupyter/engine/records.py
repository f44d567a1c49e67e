"""Every record read back from a bucket, checked here before anyone uses it (docs/threat-model.md).

Anyone who can write the bucket can put anything there, so each record (dataset, name claim, tag, version, manifest,
a staged file's pointer, an interrupted save's list) is parsed by one function below: ids, names and versions must
have the syntax of docs (README "Words"), types must be what we wrote, and every object key must lie inside the
dataset it belongs to. A record that fails raises `BadRecord` naming its key; listings skip it with a warning.
The functions return plain values built from the checked fields only, never the raw JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import BadInput, IntegrityError
from .history import check_lineage
from .ids import DATASET_ID, DATASET_NAME, MAX_TEXT, TAG_NAME, VERSION_ID, check_file_path
from .models import FileEntry

MANIFEST_FORMAT = "gradient-jupyter/manifest@1"
SHA256 = re.compile(r"[0-9a-f]{64}")


class BadRecord(IntegrityError):
    """A record in the bucket that is not what the engine writes: forged, damaged, or from something else."""

    reason = "bad-record"
    problem = ""


def bad(key: str, problem: str, *, local: bool = False) -> BadRecord:
    if local:
        refusal = BadRecord(
            f"The file {key} is not valid ({problem}): gradient-jupyter did not write it so. Nothing in it was "
            "used; delete it."
        )
    else:
        refusal = BadRecord(
            f"The record {key!r} in the bucket is not valid ({problem}): it was forged or changed behind "
            "our back, or written by another tool. Nothing in it was used; repair or delete that object with "
            "S3 tools."
        )
    refusal.problem = problem  # for callers that word the refusal themselves (a request body: server/base.py)
    return refusal


MAX_RECORD = 1024 * 1024  # a dataset, claim, tag, version or pointer record: far above what the engine writes
MAX_LIST = 256 * 1024 * 1024  # a record listing files (manifest, pending.json, loaded.json): about a million files
MAX_DEPTH = 16  # arrays and objects inside each other: the engine's records hold four levels at most
_OTHER_BYTES = bytes(range(256)).translate(None, b'"[]{}')
_EMPTY_PAIR = re.compile(rb"\[\]|\{\}")


def read_json(raw: bytes, key: str, limit: int = MAX_RECORD, *, local: bool = False) -> dict:
    """The one place JSON from outside the process is parsed (records of the bucket, the data home's hints, the
    records a load or a mount keeps in a folder, the API's request bodies): a JSON object of at most `limit` bytes
    and MAX_DEPTH levels, else BadRecord naming `key` (a file of this machine when `local`). Deeper nesting is
    refused before parsing, so no record can exhaust the parser's recursion (100 KB of '[' once answered every
    listing with a 500)."""
    if len(raw) > limit:
        raise bad(key, f"larger than {limit} bytes", local=local)
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        raise bad(key, "not UTF-8 text", local=local) from exc
    if not _nesting_within(raw, MAX_DEPTH):
        raise bad(key, f"not JSON, or nested more than {MAX_DEPTH} levels deep", local=local)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise bad(key, "not JSON", local=local) from exc
    if not isinstance(data, dict):
        raise bad(key, "not a JSON object", local=local)
    return data


def read_json_file(path, limit: int = MAX_LIST) -> dict | None:
    """`read_json` of a local file (None if it does not exist), reading no more than `limit` + 1 bytes of it."""
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return read_json(raw, str(path), limit, local=True)


def _nesting_within(raw: bytes, depth: int) -> bool:
    """Whether the arrays and objects of a JSON text (UTF-8, where no byte of a multi-byte character is ASCII) nest
    at most `depth` deep; False also for brackets that do not pair up. Strings are taken out first (with the
    escaped backslashes and quotes in them), then the innermost empty pairs, one level a pass: a few C-speed passes
    over the text (20 MB of manifest: about 30 ms, a third of parsing it)."""
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    # only quotes and brackets are left; two quotes side by side close and open strings with nothing in them
    structure = raw.translate(None, _OTHER_BYTES).replace(b'""', b"")
    if b'"' in structure:
        structure = b"".join(structure.split(b'"')[::2])  # between quote 2k and 2k+1: inside a string
    for _ in range(depth):
        if not structure:
            return True
        structure, before = _EMPTY_PAIR.sub(b"", structure), structure
        if structure == before:
            return False
    return not structure


MAX_YAML = 64 * 1024  # a settings file people write: far more than any needs


def read_yaml(raw: bytes, name: str, limit: int = MAX_YAML):
    """YAML of a file people edit (`.gradient/settings.yaml`, a team file): at most `limit` bytes and MAX_DEPTH
    levels, and no aliases (`*name`): 678 bytes of aliases expand to gigabytes (a "billion laughs"), which once froze
    the server for 17 s in 3 GB. Anchors alone are harmless and allowed. Anything else: BadInput naming `name`
    (reason "bad-settings"), saying what to fix. Returns what yaml.safe_load would (None for an empty file)."""
    import yaml

    if len(raw) > limit:
        raise BadInput(f"{name} is larger than {limit} bytes: no settings file needs that much.", reason="bad-settings")

    class Loader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                refusal = "aliases (*name) are not allowed here: write the value out"
                raise yaml.composer.ComposerError(None, None, refusal, self.peek_event().start_mark)
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH:
                    raise yaml.composer.ComposerError(
                        None, None, f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark
                    )
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    loader = Loader(raw)
    try:
        return loader.get_single_data()
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: e.g. a number of more digits than Python converts
        raise BadInput(f"{name} is not valid YAML for this file ({exc}): fix it.", reason="bad-settings") from exc
    finally:
        loader.dispose()


def _text(data: dict, field: str, key: str, *, default: str | None = None, limit: int = MAX_TEXT) -> str:
    value = data.get(field, default)
    if not isinstance(value, str) or len(value) > limit:
        raise bad(key, f"'{field}' is not a string of at most {limit} characters")
    return value


def _match(data: dict, field: str, pattern: re.Pattern, key: str, what: str) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise bad(key, f"'{field}' is not a {what}: {str(value)[:80]!r}")
    return value


MAX_FILE_SIZE = 5 * 1024**4  # S3's largest object (5 TiB): no store holds a larger file


def _size(value, key: str, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad(key, f"bad size for {path!r}")
    if value > MAX_FILE_SIZE:  # a load would plan requests for every part of bytes that cannot exist
        raise bad(key, f"the size of {path!r}, {value} bytes, is more than any store holds (5 TiB)")
    return value


def dataset(data: dict, key: str, ds_id: str | None = None) -> dict:
    """A dataset record (dataset.json; a name claim holds the same fields) -> its checked fields."""
    out: dict[str, Any] = {
        "id": _match(data, "id", DATASET_ID, key, "dataset id"),
        "name": _match(data, "name", DATASET_NAME, key, "dataset name"),
        "description": _text(data, "description", key, default=""),
        "dtCreated": _text(data, "dtCreated", key, limit=40),
    }
    out["dtModified"] = _text(data, "dtModified", key, default=out["dtCreated"], limit=40)
    if ds_id is not None and out["id"] != ds_id:
        raise bad(key, f"it names dataset {out['id']!r}, but it is stored under {ds_id!r}")
    return out


def claim(data: dict, key: str, name: str) -> dict:
    """The claim of a dataset name -> {"id", "deleting", "record"}. Only the id is required; a claim written with
    the whole dataset record (as `create` writes it) also gives that record, checked, else "record" is None."""
    ds_id = _match(data, "id", DATASET_ID, key, "dataset id")
    if "name" in data and (not isinstance(data["name"], str) or data["name"].lower() != name.lower()):
        raise bad(key, f"it claims the name {str(data['name'])[:120]!r}, not {name!r}")
    deleting = data.get("deleting", False)
    if not isinstance(deleting, bool):
        raise bad(key, "'deleting' is not true or false")
    try:
        record = dataset(data, key, ds_id)
    except BadRecord:
        record = None
    return {"id": ds_id, "deleting": deleting, "record": record}


def tag(data: dict, key: str) -> str:
    """A tag record -> the version it points at."""
    return _match(data, "version", VERSION_ID, key, "version id")


def tag_name(key: str) -> str | None:
    """The tag name a tag record's key spells, or None if it is not a tag name."""
    name = key.rsplit("/", 1)[-1].removesuffix(".json")
    return name if key.endswith(".json") and TAG_NAME.fullmatch(name) and name != "latest" else None


def version_info(data: dict, key: str) -> dict:
    """version.json -> {"message", "dtCreated", "parent", "createdBy"}; a bad lineage field is dropped with a
    warning (engine/history.py), the rest must be well formed."""
    parent, created_by = check_lineage(data, key)
    return {
        "message": _text(data, "message", key, default=""),
        "dtCreated": _text(data, "dtCreated", key, limit=40),
        "parent": parent,
        "createdBy": created_by,
    }


def message(data: dict, key: str) -> str:
    """message.json (a message changed after commit) -> the message."""
    return _text(data, "message", key)


def _object_key(value, key: str, path: str, dataset_prefix: str) -> str:
    """An object key a record points at: it must lie under the dataset's own versions/."""
    if not isinstance(value, str) or not value.startswith(dataset_prefix + "versions/"):
        raise bad(key, f"{path!r} points outside this dataset ({str(value)[:120]!r})")
    rest = value[len(dataset_prefix + "versions/") :].split("/")
    if (
        len(rest) < 3
        or not VERSION_ID.fullmatch(rest[0])
        or rest[1] not in ("data", "uploads")
        or any(p in ("", ".", "..") for p in rest)
        or "\\" in value
        or "\x00" in value
    ):
        raise bad(key, f"{path!r} points at a malformed object key ({value[:120]!r})")
    return value


def file_entry(data, key: str, dataset_prefix: str, *, needs_key: bool = True, needs_hash: bool = True) -> FileEntry:
    """One file of a manifest, of a staged file's pointer or of an interrupted save's list, checked.

    `needs_key=False` accepts an entry without an object key (a save's list of what it will send);
    `needs_hash=False` one without size and SHA-256 yet (an upload by presigned URL: size 0 until it arrives)."""
    if not isinstance(data, dict):
        raise bad(key, "a file entry is not an object")
    try:
        path = check_file_path(data.get("path"))
    except BadInput as exc:
        if exc.reason == "reserved-path":  # .git/config, .gradient/...: say which file, not only "malformed"
            raise bad(key, exc.message.removeprefix("Invalid file path ").rstrip(".")) from exc
        raise bad(key, f"unsafe or malformed file path {str(data.get('path'))[:120]!r}") from exc
    target = data.get("key")
    if target is not None or needs_key:
        target = _object_key(target, key, path, dataset_prefix)
    sha = data.get("sha256")
    if sha is None and not needs_hash:
        return FileEntry(path, 0, None, target)
    if not isinstance(sha, str) or not SHA256.fullmatch(sha):
        raise bad(key, f"bad SHA-256 for {path!r}")
    size = _size(data.get("size"), key, path)
    if "blocks" not in data and "blockSize" not in data:
        return FileEntry(path, size, sha, target)
    # large files: the SHA-256 of each block, for verified ranged reads (engine/content/reader.py)
    block_size, blocks = data.get("blockSize"), data.get("blocks")
    if (
        not isinstance(block_size, int)
        or isinstance(block_size, bool)
        or block_size <= 0
        or not isinstance(blocks, list)
        or len(blocks) != -(-size // block_size)
        or not all(isinstance(b, str) and SHA256.fullmatch(b) for b in blocks)
    ):
        raise bad(key, f"bad blockSize or blocks for {path!r}")
    return FileEntry(path, size, sha, target, block_size, tuple(blocks))


def manifest(data: dict, key: str, ds_id: str, version: str, dataset_prefix: str) -> dict:
    """A manifest -> the same manifest, rebuilt from its checked fields only."""
    if data.get("format") != MANIFEST_FORMAT:
        raise bad(key, "unknown manifest format")
    if data.get("dataset") != ds_id or data.get("version") != version:
        raise bad(key, "it names another dataset or version")
    files = data.get("files")
    if not isinstance(files, list):
        raise bad(key, "no file list")
    entries = [file_entry(f, key, dataset_prefix) for f in files]
    if len({e.path for e in entries}) != len(entries):
        raise bad(key, "a path is listed twice")
    out: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "dataset": ds_id,
        "version": version,
        "message": _text(data, "message", key, default=""),
        "committedAt": _text(data, "committedAt", key, limit=40),
        "files": [manifest_file(e) for e in entries],
    }
    for extra in ("parent",):  # optional fields other parts of the engine write: kept only when well formed
        if isinstance(data.get(extra), str) and VERSION_ID.fullmatch(data[extra]):
            out[extra] = data[extra]
    if isinstance(data.get("createdBy"), dict):
        out["createdBy"] = {
            k: v
            for k, v in data["createdBy"].items()
            if isinstance(k, str) and isinstance(v, (str, bool)) and len(str(v)) <= 1000
        }
    return out


def manifest_entries(manifest: dict) -> list[FileEntry]:
    """The files of a manifest that `manifest()` checked."""
    return [
        FileEntry(f["path"], f["size"], f["sha256"], f["key"], f.get("blockSize"), tuple(f.get("blocks", ())))
        for f in manifest.get("files", [])
    ]


def manifest_file(f: FileEntry) -> dict:
    """One file of a manifest: path, size, SHA-256, object key, and for large files the block SHA-256s."""
    out = {"path": f.path, "size": f.size, "sha256": f.sha256, "key": f.key}
    if f.blocks:
        out.update(blockSize=f.block_size, blocks=list(f.blocks))
    return out


def pending(data: dict, key: str, dataset_prefix: str) -> list[FileEntry]:
    """pending.json of a save: what it uploads (no key yet) and which committed objects it reuses (with key)."""
    files = data.get("files")
    if not isinstance(files, list):
        raise bad(key, "no file list")
    out = []
    for f in files:
        if isinstance(f, dict) and "from" in f:  # reused from version `from`, same path: its data/<path>
            source = f["from"]
            if not isinstance(source, str) or not VERSION_ID.fullmatch(source) or not isinstance(f.get("path"), str):
                raise bad(key, f"bad 'from' in {str(f)[:120]!r}")
            f = {**f, "key": f"{dataset_prefix}versions/{source}/data/{f['path']}"}
        out.append(file_entry(f, key, dataset_prefix, needs_key=False))
    return out


def pointer(data: dict, key: str, dataset_prefix: str, version: str) -> tuple[str, FileEntry | None]:
    """refs/<path> of an uncommitted version -> (path, the file, or None if the file was deleted).

    A pointer names either a committed object of the dataset (a file identical to one committed before) or an
    upload of this same version (`versions/<version>/uploads/<id>`), which the commit verifies and copies."""
    if data.get("deleted") is True:
        path = data.get("path")
        try:
            return check_file_path(path), None
        except BadInput as exc:
            raise bad(key, f"unsafe or malformed file path {str(path)[:120]!r}") from exc
    entry = file_entry(data, key, dataset_prefix, needs_hash=False)
    assert entry.key is not None  # file_entry needs a key here
    own = f"{dataset_prefix}versions/{version}/uploads/"
    if "/uploads/" in entry.key and not (entry.key.startswith(own) and "/" not in entry.key[len(own) :]):
        raise bad(key, f"{entry.path!r} points at another version's upload ({entry.key[:120]!r})")
    if entry.sha256 is None and not entry.key.startswith(own):
        raise bad(key, f"no SHA-256 for {entry.path!r}")
    return entry.path, entry
