"""load: a committed version into a folder, planned before anything is written (`plan_load`), then fetched verified
(fetch.py) and renamed into place all at once."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import (
    LocalChanges,
)
from ..history import path_filter
from ..ids import check_dataset_name
from ..models import Dataset, FileEntry, TransferSummary, Version
from .destination import (
    check_same_names,
    local_state,
    read_record,
    recorded_state,
    remove_leftover_parts,
    target_paths,
    write_record,
)
from .fetch import fetch_into_place
from .progress import ProgressCallback, TransferProgress, run_batched

if TYPE_CHECKING:
    from ..core import Engine


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
    engine: Engine,
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
    checked with the one stat `target_paths` makes of it."""
    ds, version, entries = engine.datasets.committed_entries(ref, "load")
    wanted = path_filter(include, exclude)
    entries = [e for e in entries if wanted(e.path)]
    if dest is None:  # ds.name was checked (engine/records.py): one plain folder name, never a path
        check_dataset_name(ds.name)
        dest = Path.cwd() / ds.name
    dest = Path(dest).expanduser().absolute()
    paths = [e.path for e in entries]
    found: dict[str, os.stat_result] = {}
    targets = target_paths(dest, paths, found)
    check_same_names(dest, paths)
    states = _states(engine, dest, entries, targets, found, progress)
    todo = [e for e in entries if not states[e.path][0]]
    changed = [e.path for e in entries if states[e.path][1]]
    if todo:  # only a load with files to write can meet what a killed one left (see remove_leftover_parts)
        remove_leftover_parts({targets[e.path].parent for e in entries})
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


def _states(
    engine: Engine,
    dest: Path,
    entries: list[FileEntry],
    targets: Mapping[str, Path],
    found: dict[str, os.stat_result],
    progress: ProgressCallback | None,
) -> dict[str, tuple[bool, bool]]:
    """path -> (DEST holds the version's bytes there, DEST holds a local change there), for each entry: through the
    hash cache where it knows the file (`found`: the stat `target_paths` made), else read in batches."""
    recorded = read_record(dest)
    # The hash cache's keys are absolute paths: dest's, then a checked path (no '.', '..' or empty parts).
    root = os.path.abspath(dest) + os.sep
    cached = engine.hash_cache.lookup({root + path: st for path, st in found.items()})
    states: dict[str, tuple[bool, bool]] = {}
    for e in entries:  # what the hash cache knows needs no thread and no read
        if (known := cached.get(root + e.path)) is not None:
            states[e.path] = recorded_state(e, recorded.get(e.path), known)
    unknown = [e for e in entries if e.path not in states]
    checking = TransferProgress(
        progress,
        "verify",
        len(entries),
        sum(e.size for e in entries),
        files_done=len(states),
        bytes_done=sum(e.size for e in entries) - sum(e.size for e in unknown),
    )

    def check(e: FileEntry):
        state = local_state(engine, targets[e.path], e, recorded.get(e.path))
        checking.add(1, e.size)
        return state

    try:
        states.update(
            zip(
                (e.path for e in unknown),
                run_batched(engine, check, unknown, lambda e: e.size, engine.settings.max_concurrency),
                strict=True,
            )
        )
    finally:
        engine.hash_cache.flush()
    return states


def load(
    engine: Engine,
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
    fetch_into_place(engine, plan, progress)
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
