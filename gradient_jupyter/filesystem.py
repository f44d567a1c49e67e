"""`gradient://`: committed dataset versions as a read-only fsspec filesystem, for every fsspec-aware library.

    pd.read_csv("gradient://mnist:v1/train.csv")
    duckdb.register_filesystem(fsspec.filesystem("gradient"))

URLs are `gradient://<ref>/<path in the version>` (a ref is `<dataset>[:<version | tag | latest>]`); `gradient://`
lists datasets and `gradient://<ref>/` a version's top folder. Registered through the `fsspec.specs` entry point,
so no import is needed. Like huggingface_hub's HfFileSystem, a ref is resolved once per filesystem instance and
then served from its manifest (`invalidate_cache()` forgets it). Every byte returned is verified (engine/reading.py)
and kept in the content cache. The instance holds no secret: pickled to a Dask worker, it re-opens the provider
registry of the worker's data home.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from dataclasses import dataclass, field
from datetime import datetime

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from .engine import BadInput, Conflict, NotFound
from .engine.models import Dataset, FileEntry, Version

READ_ONLY = (
    "gradient:// is read-only: a committed version never changes. To add or change files, save a folder "
    "as a new version: gradient_jupyter.save(NAME, FOLDER) or `%gradient_storage save NAME FOLDER`."
)


@contextlib.contextmanager
def _as_os_errors(path: str):
    """The engine's errors as the built-in ones fsspec callers expect (exists(), pandas...), cause kept."""
    try:
        yield
    except (NotFound, Conflict) as exc:
        raise FileNotFoundError(f"gradient://{path}: {exc.message}") from exc
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


class GradientFileSystem(AbstractFileSystem):
    """Read-only fsspec filesystem of committed dataset versions (see the module docstring)."""

    protocol = "gradient"
    root_marker = ""

    def __init__(self, *args, **storage_options):
        super().__init__(*args, **storage_options)
        self._resolved: dict[tuple[str, str], _Resolved] = {}
        self._heard: weakref.WeakSet = weakref.WeakSet()  # engines whose change events clear `_resolved`
        self._lock = threading.Lock()

    @staticmethod
    def _engine():
        from .api import default_engine

        return default_engine()

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
            manifests: dict[str, dict] = {}
            ds, version = engine.datasets.resolve(ref, manifests=manifests)
            if not version.is_committed:
                raise Conflict(
                    f"Version {version.ref} is not committed yet, so it has no manifest to read: "
                    f"commit it (datasets versions commit --id {version.ref}) or read a committed one.",
                    reason="not-committed",
                )
            manifest = manifests.get(version.version) or engine.datasets.manifest(ds, version.version) or {}
            from .engine.datasets import manifest_entries

            found = _Resolved(ds, version, {e.path: e for e in manifest_entries(manifest)})
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
        if mode != "rb":
            raise PermissionError(READ_ONLY)
        reader = self._reader(path)
        # Reads in aligned blocks of the manifest's block size, the last two kept in memory: each fetch is then one
        # verified block of the content cache (engine/reading.py), read without joining pieces.
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

    # -- writing: never ----------------------------------------------------------------------------------------------
    def _read_only(self, *args, **kwargs):
        raise PermissionError(READ_ONLY)

    mkdir = makedirs = rmdir = rm_file = _rm = rm = cp_file = mv = put_file = pipe_file = touch = _read_only


class GradientFile(AbstractBufferedFile):
    """A read-only file of a version: ranges come verified from engine/reading.py's FileReader."""

    def __init__(self, fs, path, reader, **kwargs):
        self.reader = reader
        super().__init__(fs, path, mode="rb", size=reader.size, **kwargs)

    def _fetch_range(self, start, end):
        return self.reader.read(start, end)
