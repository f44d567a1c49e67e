"""The embedded Gradient Managed store: a folder in the data home laid out like a bucket."""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from pathlib import Path

from ..errors import BadInput, Conflict, IntegrityError, NotFound
from .contract import CHUNK, ObjectInfo, Store, changed, check_range, hashed_reads, is_create_only


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
        create_only = is_create_only(mode)
        if sha256 and hashlib.sha256(data).hexdigest() != sha256:
            raise IntegrityError(f"Upload of {key!r} refused: the bytes do not match their SHA-256.")
        with self._tmp_file() as f:
            f.write(data)
        self._publish(f.name, target, create_only)

    def put_file(self, key, path, *, size, sha256, mode="overwrite", progress=None):
        create_only = is_create_only(mode)
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
            raise changed(key, path)
        self._publish(f.name, target, create_only)

    def put_new_file(self, key, path, *, state, block_size=None, progress=None):
        found: dict = {}
        with self._tmp_file() as f:
            try:
                for chunk in hashed_reads(key, path, state, block_size or CHUNK, block_size, progress, found):
                    f.write(chunk)
            except BaseException:
                os.unlink(f.name)
                raise
        self._publish(f.name, self._path(key), False)
        return found["sha256"], found["size"], found["blocks"]

    def _open(self, key):
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFound(f"Object {key!r} does not exist in the store.", reason="no-such-key") from exc

    def stream(self, key, chunk_size=CHUNK):
        return self._read_file(self._open(key), chunk_size)

    def get_range(self, key, start, end):
        check_range(start, end)
        with self._open(key) as f:
            return os.pread(f.fileno(), end - start, start) if end > start else b""

    def stream_range(self, key, start, end, chunk_size=CHUNK):
        check_range(start, end)
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
