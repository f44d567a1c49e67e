"""The local side of a save: the folder a save may version, what it leaves out (.gradientignore, --exclude), links,
and the files' SHA-256s, through the hash cache (engine/hashcache.py)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import (
    BadInput,
)
from ..hashing import block_hashes, settled
from ..ids import check_file_path, reserved_name
from ..models import FileEntry
from .progress import TransferProgress, run_batched

if TYPE_CHECKING:
    from ..core import Engine

ALWAYS_LEFT_OUT = (".git", ".ipynb_checkpoints", "__pycache__", ".gradient")


IGNORE_FILE = ".gradientignore"


def save_folder(engine: Engine, folder) -> Path:
    """The folder `save` may version: refuses an empty PATH, a missing one, a file, and the data home itself."""
    if folder is None or not str(folder).strip():
        raise BadInput(
            "Give the folder to save: an empty PATH would save the whole working directory.", reason="no-path"
        )
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise BadInput(
            f"{str(folder)!r} is not a folder (it does not exist): give the folder to save.", reason="not-a-folder"
        )
    if not folder.is_dir():
        raise BadInput(f"{str(folder)!r} is not a folder: give the folder to save.", reason="not-a-folder")
    real, home = folder.resolve(), Path(engine.home).resolve()
    if real == home or home in real.parents:
        raise BadInput(
            f"{str(folder)!r} is gradient-jupyter's data home (provider registry, caches, Gradient "
            "Managed's store): it cannot be saved as a dataset.",
            reason="data-home",
        )
    return folder


def ignore_spec(folder: Path, exclude: Iterable[str] = ()):
    """What `save` leaves out besides ALWAYS_LEFT_OUT: `.gradientignore` at the folder's top (gitignore syntax,
    matched by pathspec) and the `--exclude` patterns (same syntax)."""
    import pathspec

    lines = []
    ignore = folder / IGNORE_FILE
    if ignore.is_file():
        try:
            lines += ignore.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"Cannot read {str(ignore)!r}: {exc}.", reason="bad-ignore-file") from exc
    lines += [g for g in exclude or () if g]
    return pathspec.GitIgnoreSpec.from_lines(lines)


def scan_folder(
    folder: Path, exclude: Iterable[str] = (), *, home: Path, follow_links: bool = False
) -> list[tuple[str, Path]]:
    """(dataset path, local path) of every file below `folder` that save versions, sorted: what `save`, `files put`
    of a folder and `versions create --source-path` send. Left out: the folders of ALWAYS_LEFT_OUT, what
    `.gradientignore` or `exclude` names, the data home `home`, and what is neither a file nor a folder (sockets,
    links to nothing).

    Links (README "save"): one to a file or folder inside `folder` is followed (its path holds what it points to);
    a folder link that leads back to a folder above it is not (it would never end: those files are saved under
    their own paths). Links leading out of `folder` are refused, all of them named, unless `follow_links`; a link
    into the data home is refused always (the provider registry holds secrets)."""
    if not folder.is_dir():
        raise BadInput(f"{str(folder)!r} is not a folder: give the folder to save.", reason="not-a-folder")
    scan = _Scan(folder, exclude, home, follow_links)
    scan.walk(str(folder), "", scan.root, (scan.root,))
    homeward, outside = scan.homeward, scan.outside
    if homeward:
        raise BadInput(
            f"{_links(homeward)} in {str(folder)!r} lead into gradient-jupyter's data home (provider registry, "
            "secrets, keys), which is never saved: remove them, or leave them out with --exclude or "
            ".gradientignore. Nothing was sent.",
            reason="data-home",
        )
    if outside and not follow_links:
        raise BadInput(
            f"{_links(outside)} in {str(folder)!r} lead outside it: give --follow-links (Python: "
            "follow_links=True) to save what they point to as part of the dataset, or leave them out with "
            "--exclude or .gradientignore. Nothing was sent.",
            reason="links-outside",
        )
    return sorted(scan.found)


class _Scan:
    """One walk of `scan_folder`: the files it found, and the links that lead out of the folder or into the data home
    (refused by `scan_folder` once the walk has named them all)."""

    def __init__(self, folder: Path, exclude: Iterable[str], home: Path, follow_links: bool):
        self.spec = ignore_spec(folder, exclude)
        self.root, self.home = os.path.realpath(folder), os.path.realpath(home)
        self.follow_links = follow_links
        self.found: list[tuple[str, Path]] = []
        self.outside: list[tuple[str, str]] = []  # (path, where it leads) of links out of the folder
        self.homeward: list[tuple[str, str]] = []  # the same, of links into the data home

    def walk(self, local: str, prefix: str, real: str, above: tuple[str, ...]) -> None:
        try:
            listing = sorted(os.scandir(local), key=lambda d: d.name)
        except OSError as exc:
            raise BadInput(f"Cannot read folder {local!r}: {exc.strerror}.", reason="unreadable") from exc
        for d in listing:
            if reserved_name(d.name):  # .git (or .GIT on a file system that folds case), as folder, file or link
                continue
            rel = prefix + d.name
            if d.is_symlink():
                self.link(d, rel, above)
            elif d.is_dir(follow_symlinks=False):
                mine = os.path.join(real, d.name)
                if (
                    d.name not in ALWAYS_LEFT_OUT
                    and not self.spec.match_file(rel + "/")
                    and not _within(mine, self.home)
                ):
                    self.walk(d.path, rel + "/", mine, (*above, mine))
            elif d.is_file(follow_symlinks=False) and not self.spec.match_file(rel):
                self.file(d, rel)

    def link(self, d: os.DirEntry, rel: str, above: tuple[str, ...]) -> None:
        target = os.path.realpath(d.path)
        is_dir = os.path.isdir(target)
        if not is_dir and not os.path.isfile(target) or self.spec.match_file(rel + "/" if is_dir else rel):
            return
        if _within(target, self.home):
            self.homeward.append((rel, target))
            return
        if not _within(target, self.root):
            self.outside.append((rel, target))
            if not self.follow_links:
                return
        if not is_dir:
            self.file(d, rel)
        elif not any(_within(a, target) for a in above):  # else a loop
            self.walk(d.path, rel + "/", target, (*above, target))

    def file(self, d: os.DirEntry, rel: str) -> None:
        if d.name.startswith(".gradient-") and d.name.endswith(".part"):
            return
        try:
            check_file_path(rel)
        except BadInput as exc:
            raise BadInput(
                f"Cannot save {d.path!r}: its name has characters a dataset path cannot hold "
                "(backslash or NUL). Rename it first.",
                reason="invalid-path",
            ) from exc
        self.found.append((rel, Path(d.path)))


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _links(links: list[tuple[str, str]], shown: int = 10) -> str:
    """'2 links (a -> /x, b -> /y)': the links a save refuses, the first `shown` of them named."""
    named = ", ".join(f"{rel} -> {target}" for rel, target in links[:shown])
    more = f", and {len(links) - shown} more" if len(links) > shown else ""
    return f"{len(links)} link{'s' if len(links) != 1 else ''} ({named}{more})"


def hashed_as_sent(
    engine: Engine, files: list[tuple[str, Path]]
) -> tuple[dict[str, tuple[Path, os.stat_result]], dict[str, tuple[str, int]]]:
    """(path -> (local path, stat) of the files `save` may hash as it sends them (`Store.put_new_file`) instead of
    reading them twice: those the hash cache does not know, last modified long enough ago for any change during the
    save to show in their stat, largest first as they take longest to send; what the hash cache knows of the others,
    as `HashCache.known` answers, for `hash_files`). Only a settled file can be in the hash cache."""
    stats = [(rel, local, local.stat()) for rel, local in files]
    settled_ = [found for found in stats if settled(found[2])]
    cached = engine.hash_cache.lookup({os.path.abspath(local): st for _, local, st in settled_}) if settled_ else {}
    new = [found for found in settled_ if os.path.abspath(found[1]) not in cached]
    return {rel: (local, st) for rel, local, st in sorted(new, key=lambda found: -found[2].st_size)}, cached


def hash_files(
    engine: Engine,
    files: list[tuple[str, Path]],
    progress,
    workers: int,
    cached: dict[str, tuple[str, int]] | None = None,
) -> list[FileEntry]:
    """FileEntry (path, size, SHA-256) of each file, sorted; files the hash cache knows unchanged are not read
    (`cached`: what it answered for them already, if it was asked)."""
    sizes = {local: local.stat().st_size for _, local in files}
    block_size, threshold = engine.settings.block_size, engine.settings.block_threshold  # see reading.py
    hashing = TransferProgress(progress, "hash", len(files), sum(sizes.values()))

    def hash_one(item):
        rel, local = item
        sha, size = engine.hash_cache.fresh(local, block_size=block_size if sizes[local] >= threshold else None)
        hashing.add(1, size)
        return FileEntry(rel, size, sha)

    if cached is None:
        cached = engine.hash_cache.known(local for _, local in files)
    try:
        entries = run_batched(
            engine, hash_one, [f for f in files if os.path.abspath(f[1]) not in cached], lambda f: sizes[f[1]], workers
        )
    finally:
        engine.hash_cache.flush()
    for rel, local in files:
        if os.path.abspath(local) in cached:
            sha, size = cached[os.path.abspath(local)]
            entries.append(FileEntry(rel, size, sha))
            hashing.add(1, size)
    where = dict(files)
    return sorted(
        (_with_blocks(engine, e, where[e.path], block_size) if e.size >= threshold else e for e in entries),
        key=lambda e: e.path,
    )


def _with_blocks(engine: Engine, e: FileEntry, local: Path, block_size: int) -> FileEntry:
    """The entry with its block SHA-256s: computed with the file's hash, or now for a file hashed before blocks."""
    assert e.sha256 is not None  # hashed above
    blocks = engine.hash_cache.blocks(e.sha256, block_size)
    if blocks is None:
        sha, _, blocks = block_hashes(local, block_size, engine.parts)
        if sha != e.sha256:
            raise BadInput(f"{str(local)!r} changed while it was being saved: save again.", reason="changed")
    return replace(e, block_size=block_size, blocks=tuple(blocks))
