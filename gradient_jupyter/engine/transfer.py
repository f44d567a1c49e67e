"""save, load and open: folders to verified dataset versions and back, in parallel."""

from __future__ import annotations

import contextlib
import fnmatch
import itertools
import json
import os
import stat
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .datasets import holds, latest_committed, manifest_entries, skipped, verified_chunks, verified_stream
from .errors import (
    BadInput,
    Conflict,
    GradientError,
    IntegrityError,
    Interrupted,
    LocalChanges,
    NotFound,
    StoreError,
    TagInUse,
)
from .history import Diff, created_by, diff_files
from .ids import check_dataset_name, check_file_path, check_tag_name, reserved_name
from .models import Dataset, FileEntry, ProgressEvent, TransferSummary, Version
from .reading import block_hashes
from .records import BadRecord, read_json_file
from .stores import CHUNK, file_chunks
from .stores.contract import file_state, settled

ProgressCallback = Callable[[ProgressEvent], None]
O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class Stopped(Exception):
    """Raised in a transfer's threads once it has stopped (Ctrl-C, or an error elsewhere): they end at their next
    chunk or part, and report no more progress."""


class _Progress:
    """Thread-safe counters that report to the front end's callback; once `stop` is set, adding raises Stopped."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        phase: str,
        files_total: int,
        bytes_total: int,
        *,
        files_done: int = 0,
        bytes_done: int = 0,
        stop: threading.Event | None = None,
    ):
        self.callback, self.phase, self.stop = callback, phase, stop
        self.files_total, self.bytes_total = files_total, bytes_total
        self.files, self.bytes = files_done, bytes_done
        self._lock = threading.Lock()
        self._emit()

    def _emit(self):
        if self.callback:
            self.callback(ProgressEvent(self.phase, self.files, self.files_total, self.bytes, self.bytes_total))

    def add(self, files: int = 0, nbytes: int = 0):
        if self.stop is not None and self.stop.is_set():
            raise Stopped()
        with self._lock:
            self.files += files
            self.bytes += nbytes
            self._emit()


def _run_batched(
    engine, fn, items: list, size: Callable[[Any], int], workers: int, batch_bytes: int = 64 * CHUNK
) -> list:
    """engine.map for local reads (hashing), with items grouped so that each task reads about `batch_bytes`.

    Small files cost more Python than hashing, and threads fighting over the GIL for them are slower than one
    thread (2,000 files of 4-64 KiB: 0.15 s in one thread, 0.21 s in 2, 0.57 s in 32 threads a file); large files
    are hashed outside the GIL, so they still use every core."""
    batches, batch, total = [], [], 0
    for item in items:
        batch.append(item)
        total += size(item)
        if total >= batch_bytes:
            batches.append(batch)
            batch, total = [], 0
    if batch:
        batches.append(batch)
    return [r for done in engine.map(lambda b: [fn(i) for i in b], batches, workers) for r in done]


ALWAYS_LEFT_OUT = (".git", ".ipynb_checkpoints", "__pycache__", ".gradient")
IGNORE_FILE = ".gradientignore"


def save_folder(engine, folder) -> Path:
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
    spec = ignore_spec(folder, exclude)
    root, home_real = os.path.realpath(folder), os.path.realpath(home)
    found: list[tuple[str, Path]] = []
    outside: list[tuple[str, str]] = []  # (path, where it leads) of links out of folder
    homeward: list[tuple[str, str]] = []

    def walk(local: str, prefix: str, real: str, above: tuple[str, ...]) -> None:
        try:
            listing = sorted(os.scandir(local), key=lambda d: d.name)
        except OSError as exc:
            raise BadInput(f"Cannot read folder {local!r}: {exc.strerror}.", reason="unreadable") from exc
        for d in listing:
            if reserved_name(d.name):  # .git (or .GIT on a file system that folds case), as folder, file or link
                continue
            rel = prefix + d.name
            if d.is_symlink():
                target = os.path.realpath(d.path)
                is_dir = os.path.isdir(target)
                if not is_dir and not os.path.isfile(target) or spec.match_file(rel + "/" if is_dir else rel):
                    continue
                if _within(target, home_real):
                    homeward.append((rel, target))
                    continue
                if not _within(target, root):
                    outside.append((rel, target))
                    if not follow_links:
                        continue
                if is_dir:
                    if not any(_within(a, target) for a in above):  # else a loop
                        walk(d.path, rel + "/", target, (*above, target))
                    continue
            elif d.is_dir(follow_symlinks=False):
                mine = os.path.join(real, d.name)
                if d.name not in ALWAYS_LEFT_OUT and not spec.match_file(rel + "/") and not _within(mine, home_real):
                    walk(d.path, rel + "/", mine, (*above, mine))
                continue
            elif not d.is_file(follow_symlinks=False) or spec.match_file(rel):
                continue
            if d.name.startswith(".gradient-") and d.name.endswith(".part"):
                continue
            try:
                check_file_path(rel)
            except BadInput as exc:
                raise BadInput(
                    f"Cannot save {d.path!r}: its name has characters a dataset path cannot hold "
                    "(backslash or NUL). Rename it first.",
                    reason="invalid-path",
                ) from exc
            found.append((rel, Path(d.path)))

    walk(str(folder), "", root, (root,))
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
    return sorted(found)


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _links(links: list[tuple[str, str]], shown: int = 10) -> str:
    """'2 links (a -> /x, b -> /y)': the links a save refuses, the first `shown` of them named."""
    named = ", ".join(f"{rel} -> {target}" for rel, target in links[:shown])
    more = f", and {len(links) - shown} more" if len(links) > shown else ""
    return f"{len(links)} link{'s' if len(links) != 1 else ''} ({named}{more})"


def save(
    engine,
    name: str,
    folder,
    *,
    message: str = "",
    provider=None,
    tag: str | None = None,
    move_tag: bool = False,
    exclude: Iterable[str] = (),
    follow_links: bool = False,
    progress: ProgressCallback | None = None,
) -> TransferSummary:
    """Save `folder` as a new committed version of dataset `name` (created if needed); only new bytes are sent.

    When the files are exactly those of the latest committed version, nothing is committed and that version is the
    answer (`summary.unchanged`). `tag` must be free or name the answered version, unless `move_tag` (TagInUse).
    Links leading out of `folder` are refused unless `follow_links` (`scan_folder`)."""
    started = time.monotonic()
    check_dataset_name(name)
    folder = save_folder(engine, folder)
    if tag is not None:
        check_tag_name(tag)
    if provider:  # refused before a file is read; a dataset found elsewhere is checked once found, below
        engine.registry.get(provider).check_writable("save into it")
    files = scan_folder(folder, exclude, home=engine.home, follow_links=follow_links)
    if not files:
        raise BadInput(
            f"{str(folder)!r} holds no files to save (after leaving out .git, .ipynb_checkpoints, "
            "__pycache__, .gradient and what .gradientignore or --exclude name).",
            reason="no-files",
        )
    ds, warnings = _dataset_for_save(engine, name, provider, lambda: sum(local.stat().st_size for _, local in files))
    engine.datasets.writable(ds, "save into it")
    store = engine.store(ds.storage_provider_id)
    workers = engine.settings.max_concurrency
    unhashed, cached = _hashed_as_sent(engine, files)

    def what_the_store_has():  # asked while the files are hashed: a few round trips that need not wait
        manifests, tags = engine.map(
            lambda read: read(),
            [lambda: engine.datasets.manifests(ds), lambda: engine.datasets.list_tags(ds) if tag else []],
        )
        return (
            engine.datasets.committed_index(ds, manifests),
            _arrived(engine, ds, manifests),
            manifests,
            {t.name: t.version for t in tags},
        )

    # All at once: hash the files, ask the store what it has (never sent again, or copied from an interrupted
    # save) and git where the folder comes from (when it is in a work tree).
    asked, origin, entries = engine.map(
        lambda step: step(),
        [
            what_the_store_has,
            lambda: created_by(folder),
            lambda: _hash_files(engine, [f for f in files if f[0] not in unhashed], progress, workers, cached),
        ],
    )
    known, (arrived, over), manifests, tags = asked
    # A file whose size no object of the store has is new whatever its bytes: it is hashed as it is sent. One of a
    # size the store holds may be there already: hashed first, like the others.
    held = {size for _, size in itertools.chain(known, arrived)}
    maybe_held = [(rel, local) for rel, (local, st) in unhashed.items() if st.st_size in held]
    if maybe_held:
        entries = sorted(entries + _hash_files(engine, maybe_held, progress, workers, cached), key=lambda e: e.path)
        unhashed = {rel: found for rel, found in unhashed.items() if found[1].st_size not in held}
    latest = latest_committed(manifests)
    same = not unhashed and latest is not None and _same_files(entries, manifest_entries(manifests[latest]))
    if tag and tags.get(tag) not in (None, latest if same else None) and not move_tag:
        raise TagInUse(
            f"Tag {tag!r} already names version {ds.id}:{tags[tag]}: give --move-tag (Python: "
            "move_tag=True) to move it, or choose another tag. Nothing was saved.",
            tag=tag,
            version=tags[tag],
        )
    if same:
        if tag and tags.get(tag) != latest:
            engine.datasets.set_tag(ds, tag, latest)
        return TransferSummary(
            dataset=ds,
            version=engine.datasets.get_version(ds, latest),
            files=len(entries),
            bytes_skipped=sum(e.size for e in entries),
            files_skipped=len(entries),
            seconds=time.monotonic() - started,
            unchanged=True,
            warnings=warnings,
        )
    version_key = lambda v, e: engine.datasets.data_key(ds.id, v, e.path)  # noqa: E731

    new_bytes = sum(e.size for e in entries if (e.sha256, e.size) not in known and (e.sha256, e.size) not in arrived)
    store.check_quota(new_bytes + sum(st.st_size for _, st in unhashed.values()), f"{engine.team_id}/")

    # pending.json names the objects this save reuses (committed, or left by an interrupted save), so a delete of
    # their versions keeps them...
    reused = {**arrived, **known}
    pending = [FileEntry(e.path, e.size, e.sha256, reused.get((e.sha256, e.size))) for e in entries]
    version = engine.datasets.create_version(
        ds, message=message, pending=pending, manifests=manifests, created_by=origin
    )
    # ...if it runs after this point; one that ran before shows here, and those files are sent instead.
    wanted = {reused[(e.sha256, e.size)] for e in entries if (e.sha256, e.size) in reused}
    alive = engine.datasets.still_referenced(ds, manifests, wanted & set(known.values()))
    left = sorted(wanted - set(known.values()))
    alive |= {k for k, there in zip(left, engine.map(store.head, left), strict=True) if there is not None}
    known = {k: key for k, key in known.items() if key in alive}
    arrived = {k: key for k, key in arrived.items() if key in alive}
    to_send, resumed, final = plan_uploads(entries, known, arrived, lambda e: version_key(version.version, e))
    locals_ = dict(files)
    stop = threading.Event()  # set when the save stops (Ctrl-C, an error): uploads still running end at their next part
    sending = _Progress(
        progress,
        "upload",
        len(to_send) + len(unhashed),
        sum(e.size for e in to_send) + sum(st.st_size for _, st in unhashed.values()),
        stop=stop,
    )
    sent_new: list[FileEntry] = []
    noting = threading.Lock()

    def send(e: FileEntry):
        key = version_key(version.version, e)
        store.put_file(key, locals_[e.path], size=e.size, sha256=e.sha256, progress=lambda n: sending.add(0, n))
        sending.add(1, 0)

    def send_new(rel: str):
        local, st = unhashed[rel]
        key = version_key(version.version, FileEntry(rel, st.st_size))
        block_size = engine.settings.block_size if st.st_size >= engine.settings.block_threshold else None
        sha, size, blocks = store.put_new_file(
            key, local, state=file_state(st), block_size=block_size, progress=lambda n: sending.add(0, n)
        )
        engine.hash_cache.remember(local, st, sha, size, block_size, blocks)
        with noting:
            sent_new.append(FileEntry(rel, size, sha, key, block_size, tuple(blocks)))
            if size >= engine.settings.multipart_threshold:  # a re-run after a crash reuses it instead of sending
                # it again (`_arrived`); a smaller file costs one request either way, and a rewrite of pending.json
                # per small file would cost more than it saves
                engine.datasets.write_pending(ds, version.version, pending + _large(engine, sent_new))
        sending.add(1, 0)

    try:
        engine.map(
            lambda job: job[0](job[1]),
            [(send_new, rel) for rel in unhashed] + [(send, e) for e in to_send],
            workers,
            stop,
        )
    except BaseException as exc:
        stop.set()
        if not isinstance(exc, KeyboardInterrupt):
            raise
        with contextlib.suppress(GradientError), noting:  # the next save of the dataset removes this draft
            engine.datasets.write_pending(ds, version.version, pending + _large(engine, sent_new), interrupted=True)
        raise Interrupted(
            f"the save stopped and committed nothing. Draft version {ds.id}:{version.version} holds what arrived: "
            f"save again to go on (it reuses those bytes and removes the draft), or delete it (datasets versions "
            f"delete --id {ds.id}:{version.version})."
        ) from exc
    finally:
        engine.hash_cache.flush()
    final = sorted(final + sent_new, key=lambda e: e.path)
    committed = engine.datasets.write_manifest(ds, version.version, final, message=message, uncommitted=version)
    for draft in over:  # drafts of saves that ended without a commit: what this one could reuse, it points at
        with contextlib.suppress(GradientError):
            engine.datasets.delete_version(ds, draft)
    if tag:
        engine.datasets.set_tag(ds, tag, version.version)
        committed = engine.datasets.get_version(ds, version.version)
    return TransferSummary(
        dataset=ds,
        version=committed,
        files=len(final),
        bytes_sent=sum(e.size for e in to_send + sent_new),
        bytes_resumed=sum(e.size for e in resumed),
        bytes_skipped=sum(e.size for e in entries) - sum(e.size for e in to_send + resumed),
        files_skipped=len(entries) - len(to_send) - len(resumed),
        requests=len(to_send) + len(sent_new),
        seconds=time.monotonic() - started,
        warnings=warnings,
    )


def _large(engine, sent: list[FileEntry]) -> list[FileEntry]:
    """The files of `sent` a re-run reuses rather than sending again (see `send_new`), as pending.json names them."""
    return [replace(e, key=None) for e in sent if e.size >= engine.settings.multipart_threshold]


def plan_uploads(
    entries: list[FileEntry], known: dict, arrived: dict, key_of: Callable[[FileEntry], str]
) -> tuple[list[FileEntry], list[FileEntry], list[FileEntry]]:
    """(to send, resumed, the manifest's entries) of a save, by (sha256, size): a file the dataset already holds
    (`known`: committed objects) is neither sent nor copied and points at that object; so does one an interrupted
    save uploaded (`arrived`, its bytes proven): it is resumed, without a second copy in the store; anything else
    is sent. New bytes go to `key_of(entry)`."""

    def holds(e: FileEntry, where: dict) -> bool:
        return (e.sha256, e.size) in where

    to_send = [e for e in entries if not holds(e, known) and not holds(e, arrived)]
    resumed = [e for e in entries if not holds(e, known) and holds(e, arrived)]
    final = [
        replace(e, key=known.get((e.sha256, e.size)) or arrived.get((e.sha256, e.size)) or key_of(e)) for e in entries
    ]
    return to_send, resumed, final


def preview_save(
    engine,
    name: str,
    folder,
    *,
    exclude: Iterable[str] = (),
    follow_links: bool = False,
    progress: ProgressCallback | None = None,
) -> Diff:
    """`save --dry-run`: what saving `folder` as `name` would add, change and remove against the dataset's latest
    committed version (everything is added for a new dataset). Reads the folder and the store, sends nothing."""
    check_dataset_name(name)
    folder = save_folder(engine, folder)
    files = scan_folder(folder, exclude, home=engine.home, follow_links=follow_links)
    entries = _hash_files(engine, files, progress, engine.settings.max_concurrency)
    ds, unsearched = engine.datasets.find(name)
    home = engine.datasets.remembered_provider(name)
    for p, exc in unsearched:
        if p.id == home:  # the dataset was seen there, as in `save`
            raise exc
    if ds is None:  # a new dataset, as `save` would make it: a provider that cannot be searched is passed over
        return diff_files([], entries, after_ref=str(folder))
    manifests = engine.datasets.manifests(ds)
    latest = latest_committed(manifests)
    before = manifest_entries(manifests[latest]) if latest else []
    return diff_files(before, entries, before_ref=f"{ds.id}:{latest}" if latest else None, after_ref=str(folder))


def _same_files(entries: list[FileEntry], committed: list[FileEntry]) -> bool:
    return {(e.path, e.size, e.sha256) for e in entries} == {(e.path, e.size, e.sha256) for e in committed}


def _hashed_as_sent(
    engine, files: list[tuple[str, Path]]
) -> tuple[dict[str, tuple[Path, os.stat_result]], dict[str, tuple[str, int]]]:
    """(path -> (local path, stat) of the files `save` may hash as it sends them (`Store.put_new_file`) instead of
    reading them twice: those the hash cache does not know, last modified long enough ago for any change during the
    save to show in their stat, largest first as they take longest to send; what the hash cache knows of the others,
    as `HashCache.known` answers, for `_hash_files`). Only a settled file can be in the hash cache."""
    stats = [(rel, local, local.stat()) for rel, local in files]
    settled_ = [found for found in stats if settled(found[2])]
    cached = engine.hash_cache.lookup({os.path.abspath(local): st for _, local, st in settled_}) if settled_ else {}
    new = [found for found in settled_ if os.path.abspath(found[1]) not in cached]
    return {rel: (local, st) for rel, local, st in sorted(new, key=lambda found: -found[2].st_size)}, cached


def _hash_files(
    engine, files: list[tuple[str, Path]], progress, workers: int, cached: dict[str, tuple[str, int]] | None = None
) -> list[FileEntry]:
    """FileEntry (path, size, SHA-256) of each file, sorted; files the hash cache knows unchanged are not read
    (`cached`: what it answered for them already, if it was asked)."""
    sizes = {local: local.stat().st_size for _, local in files}
    block_size, threshold = engine.settings.block_size, engine.settings.block_threshold  # see reading.py
    hashing = _Progress(progress, "hash", len(files), sum(sizes.values()))

    def hash_one(item):
        rel, local = item
        sha, size = engine.hash_cache.fresh(local, block_size=block_size if sizes[local] >= threshold else None)
        hashing.add(1, size)
        return FileEntry(rel, size, sha)

    if cached is None:
        cached = engine.hash_cache.known(local for _, local in files)
    try:
        entries = _run_batched(
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


def _with_blocks(engine, e: FileEntry, local: Path, block_size: int) -> FileEntry:
    """The entry with its block SHA-256s: computed with the file's hash, or now for a file hashed before blocks."""
    blocks = engine.hash_cache.blocks(e.sha256, block_size)
    if blocks is None:
        sha, _, blocks = block_hashes(local, block_size)
        if sha != e.sha256:
            raise BadInput(f"{str(local)!r} changed while it was being saved: save again.", reason="changed")
    return replace(e, block_size=block_size, blocks=tuple(blocks))


def _dataset_for_save(engine, name: str, provider, needed: Callable[[], int]) -> tuple[Dataset, list[str]]:
    """The dataset a save adds a version to, created if needed, and warnings worth showing. A provider that cannot
    be reached blocks nothing: a new name is checked where the dataset will live (`provider`, else the team
    default); the others are asked only so that a dataset of that name elsewhere is not split in two.
    `needed`: the bytes of the files to save, checked against the quota before a new dataset is made."""
    if not provider:
        found, unsearched = engine.datasets.find(name)
        if found is not None:
            return found, []
        home = engine.datasets.remembered_provider(name)
        for p, exc in unsearched:
            if p.id == home:  # the dataset was seen there: saving it elsewhere would split it in two
                raise exc
        ds = _create_for_save(engine, name, None, needed)
        where = engine.registry.get(ds.storage_provider_id).name
        return ds, [
            f"Storage provider {p.name!r} could not be searched ({exc.message}); if a dataset {name!r} "
            f"lives there, this save made another one of that name in {where!r}."
            for p, exc in unsearched
        ]
    target = engine.registry.get(provider)
    try:
        return engine.datasets.get(name, provider=target.id), []
    except NotFound:
        pass
    elsewhere, _ = engine.datasets.find(name)  # providers that do not answer are passed over
    if elsewhere is not None and elsewhere.storage_provider_id != target.id:
        where = engine.registry.get(elsewhere.storage_provider_id).name
        raise BadInput(
            f"Dataset {elsewhere.name!r} lives in storage provider {where!r}, not {target.name!r}: "
            "save without --provider, or choose another dataset name.",
            reason="wrong-provider",
        )
    return _create_for_save(engine, name, target.id, needed), []


def _create_for_save(engine, name: str, provider, needed: Callable[[], int]) -> Dataset:
    # A new dataset holds no file yet, so all its bytes will be sent: a save the quota refuses is refused before
    # the dataset is made, and leaves nothing behind.
    store = engine.store(provider or engine.registry.default().id)
    if store.quota is not None:
        store.check_quota(needed(), f"{engine.team_id}/")
    try:
        return engine.datasets.create(name, provider=provider, others_searched=True)  # _dataset_for_save did
    except Conflict:  # another writer created it a moment ago: use theirs
        return engine.datasets.get(name, provider=provider or engine.registry.default().id)


def _arrived(engine, ds: Dataset, manifests: dict[str, dict | None]) -> tuple[dict[tuple[str, int], str], list[str]]:
    """((sha256, size) -> key of objects that interrupted saves of this dataset uploaded completely, the drafts of
    saves that are over: interrupted or killed, `save_state`).

    An object counts only if its bytes are proven (`holds`: the store's own checksum of what was written, else its
    bytes hashed): anyone who can write the bucket could have replaced a leftover with other bytes of the same size,
    and metadata (`x-amz-meta-sha256`) says whatever they wrote into it."""
    datasets = engine.datasets
    store = engine.store(ds.storage_provider_id)
    candidates: dict[tuple[str, int], str] = {}
    over = []
    for version in (v for v, manifest in manifests.items() if manifest is None):
        try:
            state = datasets.save_state(ds, version)
        except BadRecord as exc:  # a forged list of leftovers: reuse none of them
            skipped(exc)
            continue
        if not state:
            continue
        pending, ended = state
        if ended:
            over.append(version)
        present = {o.key: o.size for o in store.list(datasets.data_key(ds.id, version, ""))}
        for f in pending:
            key = datasets.data_key(ds.id, version, f.path)
            if f.key is None and present.get(key) == f.size:
                candidates.setdefault((f.sha256, f.size), key)
    items = list(candidates.items())
    found = engine.map(lambda item: holds(store, item[1], *item[0]), items, engine.settings.max_concurrency)
    return {want: key for (want, key), ok in zip(items, found, strict=True) if ok}, over


def _matches(path: str, include: Iterable[str], exclude: Iterable[str]) -> bool:
    include, exclude = list(include or ()), list(exclude or ())
    if include and not any(fnmatch.fnmatchcase(path, g) for g in include):
        return False
    return not any(fnmatch.fnmatchcase(path, g) for g in exclude)


def same_name_groups(paths: Iterable[str], *, case_insensitive: bool, normalizing: bool) -> list[list[str]]:
    """Groups of paths that would name one file on a file system that ignores case and/or Unicode normalization
    (NFC and NFD spellings of 'é' are one name on macOS). Empty when every path keeps its own file."""

    def key(path: str) -> str:
        if normalizing:
            path = unicodedata.normalize("NFC", path)
        return path.casefold() if case_insensitive else path

    groups: dict[str, list[str]] = {}
    for path in paths:
        groups.setdefault(key(path), []).append(path)
    return [sorted(g) for g in groups.values() if len(g) > 1]


def folder_folds(folder: Path) -> tuple[bool, bool]:
    """(ignores case, ignores Unicode normalization) for the file system holding `folder` (or its nearest existing
    parent), found by creating one probe file there and asking for it under another spelling."""
    base = folder
    while not base.is_dir() and base != base.parent:
        base = base.parent
    fd, probe = tempfile.mkstemp(dir=base, prefix=".gradient-probe-\u00e9a-")
    os.close(fd)
    try:
        head, name = os.path.split(probe)
        other_case = os.path.join(head, name.replace("a-", "A-", 1))
        other_form = os.path.join(head, unicodedata.normalize("NFD", name))
        return os.path.exists(other_case), os.path.exists(other_form)
    finally:
        os.unlink(probe)


def _check_same_names(dest: Path, paths: list[str]) -> None:
    """Refuse a load whose paths would overwrite each other on this file system (case- or normalization-blind)."""
    if not same_name_groups(paths, case_insensitive=True, normalizing=True):
        return  # no two paths could ever meet: no need to ask the file system
    case_insensitive, normalizing = folder_folds(dest)
    clashes = same_name_groups(paths, case_insensitive=case_insensitive, normalizing=normalizing)
    if clashes:
        how = " and ".join(w for w, on in (("case", case_insensitive), ("Unicode normalization", normalizing)) if on)
        shown = "; ".join(" = ".join(repr(p) for p in g) for g in clashes[:5])
        raise BadInput(
            f"Cannot load into {str(dest)!r}: its file system ignores {how}, so these paths of the "
            f"version would be one file and overwrite each other: {shown}. Load them apart with "
            "--include/--exclude, or into a folder on a file system that tells them apart.",
            reason="same-name",
        )


class _Targets(Mapping[str, Path]):
    """path in the version -> `dest / path`, each Path made when first asked for: a load that finds every file in
    place never makes thousands of them."""

    def __init__(self, dest: Path, paths: list[str]):
        self.dest, self._paths = dest, dict.fromkeys(paths)

    def __getitem__(self, path: str) -> Path:
        made = self._paths[path]
        if made is None:
            made = self._paths[path] = self.dest / path
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


def _targets(dest: Path, paths: Iterable[str], files: dict[str, os.stat_result] | None = None) -> Mapping[str, Path]:
    """Where each manifest path lands. Hostile paths (absolute, '..', backslash, NUL, or escaping dest through a
    link) are refused. Plain strings and one lstat per file: this runs for every file of every load. `files`, if
    given, receives the stat of each target that is a regular file already (through a link: the file it names),
    so that a load need not ask again."""
    real_dest = os.path.realpath(dest)
    inside = real_dest.rstrip(os.sep) + os.sep
    folders: dict[str, str] = {}  # folder of the manifest ("" is dest) -> where it really is
    out = []
    for path in paths:
        try:
            check_file_path(path)
        except BadInput as exc:
            raise BadInput(
                f"Refusing manifest path {path!r}: it is absolute, contains '..', a backslash or NUL (so it could "
                "write outside the destination), or names .git or .gradient. The manifest was forged or damaged.",
                reason="hostile-path",
            ) from exc
        folder, _, name = path.rpartition("/")
        real = os.path.join(folders.get(folder) or _real_folder(dest, folder, folders, path), name)
        try:
            st: os.stat_result | None = os.lstat(real)
        except OSError:
            st = None
        mode = st.st_mode if st else 0
        if stat.S_ISLNK(mode):
            real = os.path.realpath(real)
            try:
                st = os.stat(real)
            except OSError:
                st = None
        if stat.S_ISDIR(mode) or stat.S_ISLNK(mode) and os.path.isdir(real):
            raise BadInput(f"Cannot load {path!r}: {str(dest / path)!r} is a folder.", reason="not-a-file")
        if real != real_dest and not real.startswith(inside):
            raise BadInput(
                f"Refusing manifest path {path!r}: it would land outside {str(dest)!r}.", reason="hostile-path"
            )
        if files is not None and st is not None and stat.S_ISREG(st.st_mode):
            files[path] = st
        out.append(path)
    return _Targets(dest, out)


def _real_folder(dest: Path, folder: str, folders: dict[str, str], path: str) -> str:
    """The real location of a folder of the manifest (below dest), each folder checked once."""
    if folder not in folders:
        parent, _, name = folder.rpartition("/")
        real = os.path.join(_real_folder(dest, parent, folders, path), name) if folder else os.path.realpath(dest)
        if os.path.islink(real):
            real = os.path.realpath(real)
        if os.path.lexists(real) and not os.path.isdir(real):
            raise BadInput(
                f"Cannot load {path!r}: {str(dest / folder)!r} exists and is not a folder. Move it away "
                "or load into another folder.",
                reason="not-a-folder",
            )
        folders[folder] = real
    return folders[folder]


RECORD = ".gradient/loaded.json"  # inside DEST: what loads wrote there, path -> [SHA-256, size]


def read_record(dest: Path) -> dict[str, tuple[str, int]]:
    """What earlier loads wrote into `dest` (empty if nothing, or if the record is not ours to trust)."""
    try:
        files = (read_json_file(dest / RECORD) or {}).get("files")
    except OSError:
        return {}
    except BadRecord as exc:  # not ours: every file there counts as a local change
        skipped(exc)
        return {}
    if not isinstance(files, dict):
        return {}
    return {
        p: (v[0], v[1])
        for p, v in files.items()
        if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], int)
    }


def write_record(dest: Path, entries: list[FileEntry]) -> None:
    """Remember that `dest` now holds these entries' bytes (merged with what earlier loads wrote); a record that
    says so already is left as it is."""
    recorded = read_record(dest)
    if all(recorded.get(e.path) == (e.sha256, e.size) for e in entries):
        return
    files = {p: list(v) for p, v in recorded.items()}
    files.update({e.path: [e.sha256, e.size] for e in entries})
    folder = dest / ".gradient"
    folder.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".loaded-", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps({"format": "gradient-jupyter/loaded@1", "files": files}))
    os.replace(tmp, dest / RECORD)


def _local_state(engine, target: Path, entry: FileEntry, recorded: tuple[str, int] | None) -> tuple[bool, bool]:
    """(same, changed) for one file of DEST that the hash cache does not know: it already holds the entry's bytes;
    it holds bytes that neither the version nor the last load there wrote (a local change, which load never
    overwrites silently)."""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return False, False
    if not stat.S_ISREG(st.st_mode):
        return False, True
    if st.st_size != entry.size and (recorded is None or recorded[1] != st.st_size):
        return False, True  # neither size matches: no need to read it
    return _state(entry, recorded, engine.hash_cache.fresh(target, st))


def _state(entry: FileEntry, recorded: tuple[str, int] | None, held: tuple[str, int]) -> tuple[bool, bool]:
    """(same, changed) of a file of DEST holding bytes with SHA-256 and size `held`."""
    same = held == (entry.sha256, entry.size)
    return same, not same and held != recorded


def _remove_leftover_parts(folders: Iterable[Path]) -> None:
    """Temporary files a killed load left behind (their process is gone): the next load into DEST that writes files
    removes them. A killed load leaves them only beside files it had not put in place yet, which the next load of
    that version writes; a load that writes nothing does not read every folder of DEST for them."""
    for folder in folders:
        try:
            names = [d.name for d in os.scandir(folder) if d.is_file(follow_symlinks=False)]
        except OSError:
            continue
        for name in names:
            if not (name.startswith(".gradient-") and name.endswith(".part")):
                continue
            pid = name.split("-")[1]
            if pid.isdigit() and _alive(int(pid)):
                continue  # another load is writing it right now
            try:
                os.unlink(folder / name)
            except OSError:
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class LoadPlan:
    """What a load does, decided before anything is written (`plan_load`)."""

    dataset: Dataset
    version: Version
    dest: Path
    entries: list[FileEntry]  # the version's files the load covers (after --include/--exclude)
    targets: Mapping[str, Path]  # path in the version -> where it lands under dest
    todo: list[FileEntry]  # the entries dest does not already hold


def plan_load(
    engine,
    ref: str,
    dest=None,
    *,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> LoadPlan:
    """Resolve `ref`, check every target path, and compare dest with the version (hashing what is there): what is
    already identical is skipped, and a local change refuses the load (LocalChanges) unless `overwrite`. Writes
    nothing but the removal of what an earlier, killed load left behind. A file the hash cache knows unchanged is
    checked with the one stat `_targets` makes of it."""
    manifests: dict[str, dict] = {}
    ds, version = engine.datasets.resolve(ref, manifests=manifests)
    if not version.is_committed:
        raise Conflict(f"Version {version.ref} is not committed yet: commit it, then load it.", reason="not-committed")
    manifest = manifests.get(version.version) or engine.datasets.manifest(ds, version.version) or {}
    entries = [e for e in manifest_entries(manifest) if _matches(e.path, include, exclude)]
    if dest is None:  # ds.name was checked (engine/records.py): one plain folder name, never a path
        check_dataset_name(ds.name)
        dest = Path.cwd() / ds.name
    dest = Path(dest).expanduser().absolute()
    paths = [e.path for e in entries]
    found: dict[str, os.stat_result] = {}
    targets = _targets(dest, paths, found)
    _check_same_names(dest, paths)
    recorded = read_record(dest)
    # The hash cache's keys are absolute paths: dest's, then a checked path (no '.', '..' or empty parts).
    root = os.path.abspath(dest) + os.sep
    cached = engine.hash_cache.lookup({root + path: st for path, st in found.items()})
    states: dict[str, tuple[bool, bool]] = {}
    for e in entries:  # what the hash cache knows needs no thread and no read
        if (known := cached.get(root + e.path)) is not None:
            states[e.path] = _state(e, recorded.get(e.path), known)
    unknown = [e for e in entries if e.path not in states]
    checking = _Progress(
        progress,
        "verify",
        len(entries),
        sum(e.size for e in entries),
        files_done=len(states),
        bytes_done=sum(e.size for e in entries) - sum(e.size for e in unknown),
    )

    def check(e: FileEntry):
        state = _local_state(engine, targets[e.path], e, recorded.get(e.path))
        checking.add(1, e.size)
        return state

    try:
        states.update(
            zip(
                (e.path for e in unknown),
                _run_batched(engine, check, unknown, lambda e: e.size, engine.settings.max_concurrency),
                strict=True,
            )
        )
    finally:
        engine.hash_cache.flush()
    todo = [e for e in entries if not states[e.path][0]]
    changed = [e.path for e in entries if states[e.path][1]]
    if todo:  # only a load with files to write can meet what a killed one left (see _remove_leftover_parts)
        _remove_leftover_parts({targets[e.path].parent for e in entries})
    if changed and not overwrite:
        shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
        raise LocalChanges(
            f"{str(dest)!r} holds local changes that loading {version.ref} would overwrite: {shown}. "
            "Nothing was written. Load with --overwrite (Python: overwrite=True) to replace them, or "
            "load into another folder.",
            changed,
            str(dest),
        )
    return LoadPlan(ds, version, dest, entries, targets, todo)


def load(
    engine,
    ref: str,
    dest=None,
    *,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> TransferSummary:
    """Load a committed version into `dest` (default ./<dataset name>), verifying every byte.

    All or nothing: files are written under temporary names and renamed only once every file is verified. A file of
    DEST that differs from the version and from what an earlier load wrote there is a local change: the load is
    refused before writing anything (LocalChanges), unless `overwrite`. Files the version does not have stay."""
    started = time.monotonic()
    plan = plan_load(engine, ref, dest, include=include, exclude=exclude, overwrite=overwrite, progress=progress)
    _fetch_into_place(engine, plan, progress)
    if plan.entries:
        write_record(plan.dest, plan.entries)
    todo, entries = plan.todo, plan.entries
    return TransferSummary(
        dataset=plan.dataset,
        version=plan.version,
        files=len(entries),
        bytes_sent=sum(e.size for e in todo),
        bytes_skipped=sum(e.size for e in entries) - sum(e.size for e in todo),
        files_skipped=len(entries) - len(todo),
        requests=len(todo),
        seconds=time.monotonic() - started,
        destination=str(plan.dest),
    )


def _fetch_into_place(engine, plan: LoadPlan, progress: ProgressCallback | None) -> None:
    """Fetch every file of `plan.todo` verified into a temporary file beside its target, then rename them all; on
    any failure remove every temporary file and every folder this made, so dest keeps no partial file.

    A file whose bytes are on this machine already (a content-cache entry, or a file an earlier load wrote) is copied
    from there, checked like a download; what this load wrote is noted in the content cache as such a copy instead of
    being written a second time into the cache (engine/cache.py)."""
    ds, version, targets, todo = plan.dataset, plan.version, plan.targets, plan.todo
    if not todo:
        return
    store = engine.store(ds.storage_provider_id)
    cache = engine.content_cache
    created_dirs = _missing_dirs(plan.dest, [targets[e.path] for e in todo])
    for folder in sorted({targets[e.path].parent for e in todo}):
        folder.mkdir(parents=True, exist_ok=True)
    copies = cache.copies_of({e.sha256 for e in todo})
    parts: list[str | None] = [None] * len(todo)  # one slot per file, each written by its own thread only
    pid = os.getpid()
    receiving = _Progress(progress, "download", len(todo), sum(e.size for e in todo))
    what = f"Loading {ds.name}:{version.version}"
    part_size, in_ranges = engine.settings.part_size, engine.settings.multipart_threshold

    def fetch(item: tuple[int, FileEntry]) -> None:
        i, e = item
        target = targets[e.path]
        # Our own name, not mkstemp's random one (it costs more than the write of a small file); O_EXCL all the same.
        part = parts[i] = f"{target.parent}{os.sep}.gradient-{pid}-{i}.part"
        # 0o666 less the umask, as cp or `aws s3 cp` would make it: loaded files are the user's files
        fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_EXCL | O_CLOEXEC, 0o666)  # RDWR: ranges are read back
        try:
            if _from_this_machine(cache, copies, e, str(target), fd, what):
                receiving.add(1, e.size)
            elif store.parallel_ranges and e.size >= in_ranges:
                # One HEAD first: a forged size would otherwise have a request planned for every part of it.
                _check_size(store, e, what)
                ranges = _fetch_ranges(store, e, fd, part_size, receiving, what)
                try:
                    with contextlib.closing(ranges):
                        for _ in verified_chunks(ranges, e, what):
                            pass
                except IntegrityError:
                    raise
                except (StoreError, NotFound) as exc:  # the object is gone, or shorter than its manifest says?
                    _check_size(store, e, what, exc)
                    raise
                receiving.add(1, 0)
            elif e.size <= CHUNK:  # most files: one chunk, one progress report
                for chunk in verified_stream(store, e, what):
                    _write_all(fd, chunk)
                receiving.add(1, e.size)
            else:
                for chunk in verified_stream(store, e, what):
                    _write_all(fd, chunk)
                    receiving.add(0, len(chunk))
                receiving.add(1, 0)
        finally:
            os.close(fd)

    try:
        engine.map(fetch, list(enumerate(todo)), engine.settings.max_concurrency)
        for i, e in enumerate(todo):
            os.replace(parts[i], targets[e.path])  # type: ignore[arg-type]  # every slot is filled once map returns
            parts[i] = None
    except BaseException:
        for part in parts:
            if part is None:
                continue
            try:
                os.unlink(part)
            except FileNotFoundError:
                pass
        for folder in sorted(created_dirs, key=lambda p: len(p.parts), reverse=True):
            try:
                folder.rmdir()
            except OSError:
                pass
        raise
    cache.remember_copies((e.sha256, e.size, str(targets[e.path])) for e in todo)


def _from_this_machine(cache, copies: dict, e: FileEntry, target: str, fd: int, what: str) -> bool:
    """Copy `e`'s bytes into the empty file `fd` from this machine, if it has them: a content-cache entry, or a file
    an earlier load wrote (checked like a download; an entry that does not match is discarded)."""
    entry = cache.get(e.sha256, e.size)
    if entry is not None:
        if _copy_verified(entry, fd, e, what):
            return True
        cache.discard(e.sha256)  # not what its name says: never serve it again
    copy = copies.get(e.sha256)
    return copy is not None and copy[0] == e.size and copy[1] != target and _copy_verified(copy[1], fd, e, what)


def _copy_verified(src, fd: int, e: FileEntry, what: str) -> bool:
    """Copy a local file that should hold `e`'s bytes into the empty file `fd`, checked as it goes; False (and
    `fd` empty again) if it does not hold them, or is gone."""
    try:
        for chunk in verified_chunks(file_chunks(src), e, what):
            _write_all(fd, chunk)
        return True
    except (IntegrityError, OSError):
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        return False


def _write_all(fd: int, data, offset: int | None = None) -> None:
    """Write `data` (any bytes-like object) to `fd`, at `offset` or where the file is, in pieces of at most CHUNK:
    on this machine's Linux 6.18 ext4, writes of 4-8 MiB into the page cache now and then cost 4-8x the CPU of the
    same bytes in 1 MiB writes (0.5-1.2 s instead of 0.14 s for 512 MiB). A write may take less than asked."""
    view, done = memoryview(data), 0
    while done < len(view):
        piece = view[done : done + CHUNK]
        done += os.write(fd, piece) if offset is None else os.pwrite(fd, piece, offset + done)


def _check_size(store, e: FileEntry, what: str, cause: Exception | None = None) -> None:
    """Raise IntegrityError naming the file if its object does not have the manifest's size (else return)."""
    info = store.head(e.key)
    if info is None or info.size != e.size:
        raise IntegrityError(
            f"{what}: {e.path!r} in the store does not match its manifest (expected {e.size} bytes, the store holds "
            f"{'nothing' if info is None else info.size}): it was changed or deleted behind our back."
        ) from cause


def _fetch_ranges(store, e: FileEntry, fd: int, part_size: int, receiving: _Progress, what: str) -> Generator[bytes]:
    """Download a large object as parallel byte ranges streamed into place, and yield the file's bytes in order as
    each range lands (read back from the page cache), for the caller to verify while the later ranges download. A
    range of another length than asked is refused (IntegrityError), so the bytes verified are the bytes asked for.

    Measured against holding each range in memory to hash it without the read back (benchmarks/README.md): no
    less CPU, three times the memory, and slower, since a file's ranges then wait on its slowest one."""

    def one(start: int):
        offset, end = start, min(start + part_size, e.size)
        for chunk in store.stream_range(e.key, start, end):
            offset += len(chunk)
            if offset > end:
                break
            _write_all(fd, chunk, offset - len(chunk))
        if offset != end:
            raise IntegrityError(
                f"{what}: {e.path!r} in the store does not match its manifest (bytes {start}-{end} asked, "
                f"{'more' if offset > end else offset - start} bytes answered; the manifest says {e.size} bytes): "
                "it was changed behind our back."
            )
        receiving.add(0, end - start)

    starts = range(0, e.size, part_size)
    ranges = [store.part_pool.submit(one, start) for start in starts]
    try:
        for start, fetched in zip(starts, ranges, strict=True):
            fetched.result()
            offset, end = start, min(start + part_size, e.size)
            while offset < end and (chunk := os.pread(fd, min(CHUNK, end - offset), offset)):
                yield chunk
                offset += len(chunk)
    finally:  # on any failure: no range may still write into fd once the caller closes it
        for fetched in ranges:
            fetched.cancel()
        wait(ranges)


def _missing_dirs(dest: Path, targets: list[Path]) -> set[Path]:
    missing = set()
    for t in targets:
        p = t.parent
        while not p.exists() and p not in missing:
            missing.add(p)
            if p == dest or p.parent == p:
                break
            p = p.parent
    if not dest.exists():
        missing.add(dest)
    return missing


class VersionReader:
    """One committed version, readable file by file without downloading the rest; every read is verified."""

    def __init__(self, engine, ds: Dataset, version: Version):
        self.engine, self.dataset, self.version = engine, ds, version
        manifest = engine.datasets.manifest(ds, version.version) or {}
        self._entries = {e.path: e for e in manifest_entries(manifest)}

    @property
    def files(self) -> dict[str, int]:
        """path -> size of every file of the version."""
        return {p: e.size for p, e in sorted(self._entries.items())}

    def _entry(self, path: str) -> FileEntry:
        if path not in self._entries:
            raise NotFound(f"{self.version.ref} has no file {path!r}.", reason="unknown-file")
        return self._entries[path]

    def read_bytes(self, path: str) -> bytes:
        """The whole file, verified against the manifest (through the content cache, engine/cache.py)."""
        e = self._entry(path)
        return self.engine.reader(self.dataset, self.version.version, e).read(0, e.size)

    def open(self, path: str):
        """A binary file object of one verified file: its entry in the content cache, opened read-only."""
        return open(self.engine.reader(self.dataset, self.version.version, self._entry(path)).local_file(), "rb")

    def __repr__(self) -> str:
        return f"<VersionReader {self.version!r}>"

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<tr><td>{html.escape(p)}</td><td>{s}</td></tr>" for p, s in self.files.items())
        return (
            f"<b>{html.escape(self.dataset.name)} {html.escape(self.version.ref)}</b>"
            f"<table><tr><th>path</th><th>size</th></tr>{rows}</table>"
        )


def open_version(engine, ref: str) -> VersionReader:
    ds, version = engine.datasets.resolve(ref)
    if not version.is_committed:
        raise Conflict(f"Version {version.ref} is not committed yet.", reason="not-committed")
    return VersionReader(engine, ds, version)
