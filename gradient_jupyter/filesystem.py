"""`gradient://`: dataset versions as an fsspec filesystem, for every fsspec-aware library: committed versions read
(verified), uncommitted ones written (a transaction's, SPEC 9.1).

    pd.read_csv("gradient://mnist:v1/train.csv")
    duckdb.register_filesystem(fsspec.filesystem("gradient"))

URLs are `gradient://<ref>/<path in the version>` (a ref is `<dataset>[:<version | tag | latest>]`); `gradient://`
lists datasets and `gradient://<ref>/` a version's top folder. Registered through the `fsspec.specs` entry point,
so no import is needed. Like huggingface_hub's HfFileSystem, a ref is resolved once per filesystem instance and
then served from its manifest (`invalidate_cache()` forgets it). Every byte returned is verified
(engine/content/reader.py) and kept in the content cache.

Pickled (to a Dask worker, a spawned process), an instance is a reference: the team id and the storage_options it was
made with, never a secret of the data home. The worker serves it with its own configuration: the team file, its own
data home's providers, or the provider given as `storage_options={"provider": {...}}` (api.py `engine_for`).
Writes go only into an uncommitted version, `gradient://<datasetId>:<version>/<path>` (`transaction().url`): each
file is spooled to the data home while it is hashed, then sent once by datasets/files.py `put_file`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem, make_instance

from .engine import BadInput, Conflict, Immutable, NotFound
from .engine.hashing import StreamHashes
from .engine.ids import VERSION_ID, parse_ref
from .engine.models import Dataset, FileEntry, Version

READ_ONLY = (
    "gradient:// is read-only but for uncommitted versions: a committed version never changes. To add or change "
    "files, save a folder as a new version (gradient_jupyter.save(NAME, FOLDER) or `%gradient_storage save NAME "
    "FOLDER`), or write them from any process into a transaction: `with gradient_jupyter.transaction(NAME) as tx:` "
    'then under tx.url (README.md, "Cluster").'
)


@contextlib.contextmanager
def _as_os_errors(path: str):
    """The engine's errors as the built-in ones fsspec callers expect (exists(), pandas...), cause kept."""
    try:
        yield
    except (NotFound, Conflict) as exc:
        hint = ""
        if exc.reason == "unknown-dataset":  # on a worker, most often: it lacks the provider (README.md, "Cluster")
            hint = (
                " This process looks in the providers of its team file and data home; a worker without them reads "
                "with storage_options={'provider': {...}} (README.md, \"Cluster\")."
            )
        raise FileNotFoundError(f"gradient://{path}: {exc.message}{hint}") from exc
    except BadInput as exc:
        raise ValueError(f"gradient://{path}: {exc.message}") from exc


@dataclass
class _Resolved:
    """One ref resolved: the version and its manifest as a tree."""

    dataset: Dataset
    version: Version
    files: dict[str, FileEntry]
    children: dict[str, list[str]] = field(default_factory=dict)  # folder ("" = top) -> child paths

    def __post_init__(self):
        kids: dict[str, set[str]] = {"": set()}
        for path in self.files:
            parts = path.split("/")
            for depth in range(len(parts)):
                kids.setdefault("/".join(parts[:depth]), set()).add("/".join(parts[: depth + 1]))
        self.children = {folder: sorted(paths) for folder, paths in kids.items()}


_instances: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # by id: fsspec hashes by a later token


def _after_fork() -> None:
    for fs in list(_instances.values()):  # a parent's thread may have held one at the fork
        fs._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork)


class GradientFileSystem(AbstractFileSystem):
    """fsspec filesystem of dataset versions: committed ones read, uncommitted ones written (module docstring)."""

    protocol = "gradient"
    root_marker = ""

    def __init__(self, *args, team: str | None = None, provider=None, **storage_options):
        """`team`: the team id whose datasets to serve (default: this data home's or the team file's);
        `provider`: a provider name, or a provider given whole (engine/providers.py `given_provider`)."""
        super().__init__(*args, **storage_options)
        self.team, self.provider = team, provider
        self._resolved: dict[tuple[str, str], _Resolved] = {}
        self._heard: weakref.WeakSet = weakref.WeakSet()  # engines whose change events clear `_resolved`
        self._lock = threading.Lock()
        _instances[id(self)] = self

    def _engine(self):
        from .api import engine_for

        return engine_for(self.team, self.provider)

    def __reduce__(self):
        """A reference (SPEC 9.1): the team id and the storage_options given, never a secret of the data home."""
        options = {**self.storage_options, "team": self.team or self._engine().team_id}
        return make_instance, (type(self), self.storage_args, options)

    @classmethod
    def _strip_protocol(cls, path):
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = str(path)
        if path.startswith("gradient://"):
            path = path[len("gradient://") :]
        return path.strip("/")

    def unstrip_protocol(self, name: str) -> str:
        return "gradient://" + name

    # -- resolving -------------------------------------------------------------------------------------------------
    def _resolve(self, ref: str) -> _Resolved:
        engine = self._engine()
        key = (str(engine.home), ref)
        with self._lock:
            found = self._resolved.get(key)
        if found is None:
            ds, version, entries = engine.datasets.committed_entries(ref, "read")
            found = _Resolved(ds, version, {e.path: e for e in entries})
            with self._lock:
                if engine not in self._heard:  # first use of this engine: hear its saves
                    self._heard.add(engine)
                    engine.on_change(self._changed)
                self._resolved[key] = found
        return found

    def _changed(self, what: str) -> None:
        """A save, commit, tag or delete in this process: `latest` and tags may name another version now."""
        if what == "datasets":
            with self._lock:
                self._resolved.clear()

    def invalidate_cache(self, path=None):
        """Forget resolved refs (all, or the ref of `path`): the next access resolves `latest` and tags again."""
        with self._lock:
            if path is None:
                self._resolved.clear()
            else:
                ref = self._strip_protocol(path).split("/", 1)[0]
                for key in [k for k in self._resolved if k[1] == ref]:
                    del self._resolved[key]
        super().invalidate_cache(path)

    def _split(self, path: str) -> tuple[str, str]:
        ref, _, inner = self._strip_protocol(path).partition("/")
        return ref, inner

    def _entry(self, path: str) -> tuple[_Resolved, FileEntry]:
        ref, inner = self._split(path)
        with _as_os_errors(path):
            resolved = self._resolve(ref)
        if inner in resolved.files:
            return resolved, resolved.files[inner]
        if not inner or inner in resolved.children:
            raise IsADirectoryError(
                f"gradient://{self._strip_protocol(path)} is a folder of "
                f"{resolved.dataset.name}:{resolved.version.version}: open one of its files "
                "(ls or glob lists them)."
            )
        raise FileNotFoundError(
            f"gradient://{self._strip_protocol(path)}: version {resolved.dataset.name}:"
            f"{resolved.version.version} has no file {inner!r}."
        )

    # -- listing -----------------------------------------------------------------------------------------------------
    def _file_info(self, ref: str, e: FileEntry) -> dict:
        return {"name": f"{ref}/{e.path}", "size": e.size, "type": "file", "sha256": e.sha256}

    def info(self, path, **kwargs):
        path = self._strip_protocol(path)
        if not path:
            return {"name": "", "size": 0, "type": "directory"}
        ref, inner = self._split(path)
        with _as_os_errors(path):
            resolved = self._resolve(ref)
        if inner in resolved.files:
            return self._file_info(ref, resolved.files[inner])
        if not inner or inner in resolved.children:
            return {"name": path, "size": 0, "type": "directory"}
        raise FileNotFoundError(
            f"gradient://{path}: version {resolved.dataset.name}:{resolved.version.version} "
            f"has no file or folder {inner!r}."
        )

    def ls(self, path, detail=True, **kwargs):
        path = self._strip_protocol(path)
        if not path:
            with _as_os_errors(path):
                found = [{"name": d.name, "size": 0, "type": "directory"} for d in self._engine().datasets.list()]
        else:
            ref, inner = self._split(path)
            info = self.info(path)
            if info["type"] == "file":
                found = [info]
            else:
                resolved = self._resolve(ref)
                found = [
                    self._file_info(ref, resolved.files[c])
                    if c in resolved.files
                    else {"name": f"{ref}/{c}", "size": 0, "type": "directory"}
                    for c in resolved.children.get(inner, [])
                ]
        return found if detail else [f["name"] for f in found]

    def modified(self, path):
        """When the version was committed: its files never change after that."""
        ref, _ = self._split(path)
        self.info(path)
        with _as_os_errors(path):
            version = self._resolve(ref).version
        committed = version.dt_committed or version.dt_created  # _resolve serves committed versions only
        return datetime.fromisoformat(committed.replace("Z", "+00:00"))

    created = modified

    def ukey(self, path):
        return self._entry(path)[1].sha256

    def checksum(self, path):
        return int(self.ukey(path)[:16], 16)

    # -- reading -----------------------------------------------------------------------------------------------------
    def _reader(self, path: str):
        resolved, entry = self._entry(path)
        return self._engine().reader(resolved.dataset, resolved.version.version, entry)

    def _open(self, path, mode="rb", block_size=None, autocommit=True, cache_options=None, **kwargs):
        if mode in ("wb", "xb"):
            return GradientWriteFile(self, self._strip_protocol(path), self._draft(path), block_size=block_size)
        if mode != "rb":
            raise PermissionError(READ_ONLY)
        reader = self._reader(path)
        # Reads in aligned blocks of the manifest's block size, the last two kept in memory: each fetch is then one
        # verified block of the content cache (engine/content/reader.py), read without joining pieces.
        block = reader.entry.block_size or 8 * 1024**2
        cache_type = kwargs.get("cache_type") or "blockcache"
        if cache_options is None:
            cache_options = {"maxblocks": 2} if cache_type == "blockcache" else {}
        return GradientFile(
            self,
            self._strip_protocol(path),
            reader,
            block_size=block_size or block,
            cache_type=cache_type,
            cache_options=cache_options,
        )

    def cat_file(self, path, start=None, end=None, **kwargs):
        reader = self._reader(path)
        start = 0 if start is None else start + reader.size if start < 0 else start
        end = reader.size if end is None else end + reader.size if end < 0 else end
        return reader.read(start, end)

    def cat_ranges(self, paths, starts, ends, max_gap=None, on_error="return", **kwargs):
        """fsspec's cat_ranges, the ranges fetched at once on the engine's threads: Dask's and fsspec's Parquet
        readers ask for a file's column chunks together (s3fs fetches them concurrently too); blocks two ranges
        share are fetched once (engine/content/cache.py)."""
        if max_gap is not None:
            raise NotImplementedError("max_gap is not supported: the content cache fetches whole blocks")
        if not isinstance(paths, list):
            raise TypeError("paths must be a list")
        starts = starts if isinstance(starts, list) else [starts] * len(paths)
        ends = ends if isinstance(ends, list) else [ends] * len(paths)
        if len(starts) != len(paths) or len(ends) != len(paths):
            raise ValueError("paths, starts and ends must have the same length")

        def one(item):
            try:
                return self.cat_file(*item)
            except Exception as exc:  # as fsspec's own cat_ranges: the error in its place, or raised
                if on_error == "return":
                    return exc
                raise

        return self._engine().map(one, list(zip(paths, starts, ends, strict=True)))

    # -- writing: into an uncommitted version only ---------------------------------------------------------------------
    def _draft(self, path: str) -> _Draft:
        """Where a write of `path` goes: a file of an uncommitted version; PermissionError for anything else."""
        ref, inner = self._split(path)
        engine = self._engine()
        with _as_os_errors(path):
            name, selector = parse_ref(ref)
            if not VERSION_ID.fullmatch(selector):
                raise PermissionError(READ_ONLY)
            ds = engine.datasets.get(name)
            try:
                engine.datasets.draft(ds, selector)
            except Immutable as exc:
                raise PermissionError(f"gradient://{self._strip_protocol(path)}: {READ_ONLY}") from exc
        return _Draft(engine, ds, selector, inner)

    def _put(self, path: str, source, hashed=None) -> None:
        draft = self._draft(path)
        if not draft.path:
            raise IsADirectoryError(f"gradient://{self._strip_protocol(path)} is a version's top folder: name a file.")
        try:
            with _as_os_errors(path):
                draft.engine.datasets.put_file(draft.dataset, draft.version, draft.path, source, hashed=hashed)
        except Immutable as exc:
            raise PermissionError(f"gradient://{self._strip_protocol(path)}: {exc.message} {READ_ONLY}") from exc

    def pipe_file(self, path, value, mode="overwrite", **kwargs):
        self._put(path, bytes(value))

    def put_file(self, lpath, rpath, callback=None, mode="overwrite", **kwargs):
        if os.path.isdir(lpath):
            self.makedirs(rpath, exist_ok=True)
            return
        self._put(rpath, os.fspath(lpath))

    def makedirs(self, path, exist_ok=False):
        """Folders of a version exist through their files: nothing to make in an uncommitted version."""
        self._draft(path)

    def mkdir(self, path, create_parents=True, **kwargs):
        self._draft(path)

    def rm_file(self, path):
        draft = self._draft(path)
        with _as_os_errors(path):
            draft.engine.datasets.delete_file(draft.dataset, draft.version, draft.path)

    def _read_only(self, *args, **kwargs):
        raise PermissionError(READ_ONLY)

    rmdir = _rm = rm = cp_file = mv = touch = _read_only


@dataclass
class _Draft:
    """A path in an uncommitted version, as a write sees it."""

    engine: Any
    dataset: Dataset
    version: str
    path: str


class GradientWriteFile(AbstractBufferedFile):
    """A file being written into an uncommitted version: spooled to the data home and hashed as it is written, then
    sent once (datasets/files.py `put_file`) when it is closed. A `with` block that raises sends nothing."""

    def __init__(self, fs, path, draft: _Draft, block_size=None):
        if not draft.path:
            raise IsADirectoryError(f"gradient://{path} is a version's top folder: name a file.")
        self.draft = draft
        self._spool: Any = None
        self._hashes: Any = None
        super().__init__(fs, path, mode="wb", block_size=block_size or 8 * 1024**2)

    def _initiate_upload(self):
        folder = self.draft.engine.home / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        self._spool = tempfile.NamedTemporaryFile(dir=folder, prefix="write-", delete=False)
        settings = self.draft.engine.settings  # large files get block SHA-256s, as save gives them
        self._hashes = StreamHashes(self._spool.name, settings.block_size, settings.block_threshold)

    def _upload_chunk(self, final=False):
        data = self.buffer.getbuffer()
        self._spool.write(data)
        self._spool.flush()
        self._hashes.update(data)
        if final:
            self._spool.close()
            sha, size, blocks = self._hashes.result()
            try:
                self.draft.engine.datasets.put_file(
                    self.draft.dataset,
                    self.draft.version,
                    self.draft.path,
                    self._spool.name,
                    hashed=(sha, size),
                    blocks=blocks,
                )
            except Immutable as exc:
                raise PermissionError(f"gradient://{self.path}: {exc.message} {READ_ONLY}") from exc
            finally:
                os.unlink(self._spool.name)
        return True

    def __exit__(self, exc_type, *args):
        if exc_type is not None and not self.closed:  # type: ignore[has-type]  # half a file is never sent
            self.closed = True
            if self._spool is not None:
                self._spool.close()
                os.unlink(self._spool.name)
            return None
        return super().__exit__(exc_type, *args)


class GradientFile(AbstractBufferedFile):
    """A read-only file of a version: ranges come verified from engine/content/reader.py's FileReader."""

    def __init__(self, fs, path, reader, **kwargs):
        self.reader = reader
        super().__init__(fs, path, mode="rb", size=reader.size, **kwargs)

    def _fetch_range(self, start, end):
        return self.reader.read(start, end)
