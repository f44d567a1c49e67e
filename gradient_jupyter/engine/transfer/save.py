"""save, load and open: folders to verified dataset versions and back, in parallel."""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..datasets import holds, latest_committed, manifest_entries, skipped
from ..errors import (
    BadInput,
    Conflict,
    GradientError,
    Interrupted,
    NotFound,
    TagInUse,
)
from ..hashing import file_state
from ..history import Diff, created_by, diff_files
from ..ids import check_dataset_name, check_tag_name
from ..models import Dataset, FileEntry, TransferSummary
from ..records import BadRecord
from .local import hash_files, hashed_as_sent, save_folder, scan_folder
from .progress import ProgressCallback, TransferProgress

if TYPE_CHECKING:
    from ..core import Engine


def save(
    engine: Engine,
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
    ds, warnings = dataset_for_save(engine, name, provider, lambda: sum(local.stat().st_size for _, local in files))
    engine.datasets.writable(ds, "save into it")
    store = engine.store(ds.storage_provider_id)
    seen = _look(engine, ds, folder, files, tag, progress)
    entries, unhashed, known, arrived = seen.entries, seen.unhashed, seen.known, seen.arrived
    unchanged = _unchanged(engine, ds, seen, tag, move_tag)
    if unchanged is not None:
        return replace(unchanged, seconds=time.monotonic() - started, warnings=warnings)
    version_key = lambda v, e: engine.datasets.data_key(ds.id, v, e.path)  # noqa: E731

    new_bytes = sum(e.size for e in entries if (e.sha256, e.size) not in known and (e.sha256, e.size) not in arrived)
    store.check_quota(new_bytes + sum(st.st_size for _, st in unhashed.values()), f"{engine.team_id}/")

    version, pending, known, arrived = _begin(engine, ds, store, seen, message)
    to_send, resumed, final = plan_uploads(entries, known, arrived, lambda e: version_key(version.version, e))
    sent_new = _send(engine, ds, store, version, to_send, seen.unhashed, dict(files), pending, progress)
    final = sorted(final + sent_new, key=lambda e: e.path)
    committed = engine.datasets.write_manifest(ds, version.version, final, message=message, uncommitted=version)
    for draft in seen.over:  # drafts of saves that ended without a commit: what this one could reuse, it points at
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


@dataclass
class _Seen:
    """What a save found before deciding anything: the folder's entries (those hashed), the files it hashes as it
    sends them, what the dataset holds (committed objects, an interrupted save's, its drafts), its manifests and tags,
    and where the folder came from."""

    entries: list[FileEntry]
    unhashed: dict[str, tuple[Path, os.stat_result]]
    known: dict  # (sha256, size) -> the object holding those bytes
    arrived: dict  # the same, for what an interrupted save left, its bytes proven
    over: list[str]
    manifests: dict  # version -> its manifest (None: a draft), as datasets' `manifests` read them
    tags: dict[str, str]
    origin: dict


def _look(engine: Engine, ds: Dataset, folder: Path, files: list[tuple[str, Path]], tag, progress) -> _Seen:
    """Hash the files and, at the same time, ask the store what the dataset has (never sent again, or reused from an
    interrupted save) and git where the folder comes from (docs/architecture.md, "A save", step 3)."""
    workers = engine.settings.max_concurrency
    unhashed, cached = hashed_as_sent(engine, files)

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
            lambda: hash_files(engine, [f for f in files if f[0] not in unhashed], progress, workers, cached),
        ],
    )
    known, (arrived, over), manifests, tags = asked
    # A file whose size no object of the store has is new whatever its bytes: it is hashed as it is sent. One of a
    # size the store holds may be there already: hashed first, like the others.
    held = {size for _, size in itertools.chain(known, arrived)}
    maybe_held = [(rel, local) for rel, (local, st) in unhashed.items() if st.st_size in held]
    if maybe_held:
        entries = sorted(entries + hash_files(engine, maybe_held, progress, workers, cached), key=lambda e: e.path)
        unhashed = {rel: found for rel, found in unhashed.items() if found[1].st_size not in held}
    return _Seen(entries, unhashed, known, arrived, over, manifests, tags, origin)


def _unchanged(engine: Engine, ds: Dataset, seen: _Seen, tag: str | None, move_tag: bool) -> TransferSummary | None:
    """The answer when the files are exactly the latest committed version's (that version, tagged if asked), else
    None; a tag naming another version is refused here unless `move_tag` (TagInUse), before anything is sent."""
    entries, unhashed, manifests, tags = seen.entries, seen.unhashed, seen.manifests, seen.tags
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
        assert latest is not None  # same files as the latest version: there is one
        if tag and tags.get(tag) != latest:
            engine.datasets.set_tag(ds, tag, latest)
        return TransferSummary(
            dataset=ds,
            version=engine.datasets.get_version(ds, latest),
            files=len(entries),
            bytes_skipped=sum(e.size for e in entries),
            files_skipped=len(entries),
            unchanged=True,
        )
    return None


def _begin(engine: Engine, ds: Dataset, store, seen: _Seen, message: str):
    """The new uncommitted version, with pending.json naming the objects the save reuses, and (known, arrived) cut
    to those still there once it is written: (version, pending, known, arrived)."""
    entries, known, arrived, manifests = seen.entries, seen.known, seen.arrived, seen.manifests
    # pending.json names the objects this save reuses (committed, or left by an interrupted save), so a delete of
    # their versions keeps them...
    reused = {**arrived, **known}
    pending = [FileEntry(e.path, e.size, e.sha256, reused.get((e.sha256, e.size))) for e in entries]
    version = engine.datasets.create_version(
        ds, message=message, pending=pending, manifests=manifests, created_by=seen.origin
    )
    # ...if it runs after this point; one that ran before shows here, and those files are sent instead.
    wanted = {reused[(e.sha256, e.size)] for e in entries if (e.sha256, e.size) in reused}
    alive = engine.datasets.still_referenced(ds, manifests, wanted & set(known.values()))
    left = sorted(wanted - set(known.values()))
    alive |= {k for k, there in zip(left, engine.map(store.head, left), strict=True) if there is not None}
    known = {k: key for k, key in known.items() if key in alive}
    arrived = {k: key for k, key in arrived.items() if key in alive}
    return version, pending, known, arrived


def _send(
    engine: Engine,
    ds: Dataset,
    store,
    version,
    to_send: list[FileEntry],
    unhashed: dict[str, tuple[Path, os.stat_result]],
    locals_: dict[str, Path],
    pending: list[FileEntry],
    progress: ProgressCallback | None,
) -> list[FileEntry]:
    """Upload what the dataset lacks into `version` (step 5 of "A save", docs/architecture.md), all at once; returns
    the entries of the files hashed as they were sent. Ctrl-C stops the uploads and leaves a draft (Interrupted)."""
    workers = engine.settings.max_concurrency
    version_key = lambda v, e: engine.datasets.data_key(ds.id, v, e.path)  # noqa: E731
    stop = threading.Event()  # set when the save stops (Ctrl-C, an error): uploads still running end at their next part
    sending = TransferProgress(
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
        assert e.sha256 is not None  # hashed before it is sent
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
        with noting:
            raise _interrupted(engine, ds, version.version, pending + _large(engine, sent_new)) from exc
    finally:
        engine.hash_cache.flush()
    return sent_new


def _interrupted(engine: Engine, ds: Dataset, version: str, pending: list[FileEntry]) -> Interrupted:
    """The error of a save stopped by Ctrl-C, once its draft is marked so (the next save of the dataset removes it)."""
    with contextlib.suppress(GradientError):
        engine.datasets.write_pending(ds, version, pending, interrupted=True)
    return Interrupted(
        f"the save stopped and committed nothing. Draft version {ds.id}:{version} holds what arrived: "
        f"save again to go on (it reuses those bytes and removes the draft), or delete it (datasets versions "
        f"delete --id {ds.id}:{version})."
    )


def _large(engine: Engine, sent: list[FileEntry]) -> list[FileEntry]:
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
    engine: Engine,
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
    entries = hash_files(engine, files, progress, engine.settings.max_concurrency)
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


def dataset_for_save(engine: Engine, name: str, provider, needed: Callable[[], int]) -> tuple[Dataset, list[str]]:
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


def _create_for_save(engine: Engine, name: str, provider, needed: Callable[[], int]) -> Dataset:
    # A new dataset holds no file yet, so all its bytes will be sent: a save the quota refuses is refused before
    # the dataset is made, and leaves nothing behind.
    store = engine.store(provider or engine.registry.default().id)
    if store.quota is not None:
        store.check_quota(needed(), f"{engine.team_id}/")
    try:
        return engine.datasets.create(name, provider=provider, others_searched=True)  # dataset_for_save did
    except Conflict:  # another writer created it a moment ago: use theirs
        return engine.datasets.get(name, provider=provider or engine.registry.default().id)


def _arrived(
    engine: Engine, ds: Dataset, manifests: dict[str, dict | None]
) -> tuple[dict[tuple[str, int], str], list[str]]:
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
            if f.key is None and f.sha256 and present.get(key) == f.size:
                candidates.setdefault((f.sha256, f.size), key)
    items = list(candidates.items())
    found = engine.map(lambda item: holds(store, item[1], *item[0]), items, engine.settings.max_concurrency)
    return {want: key for (want, key), ok in zip(items, found, strict=True) if ok}, over
