"""The Python API for notebooks and scripts: save a folder as a version, load a ref, open a version's files."""

from __future__ import annotations

import contextlib
import json
import os
import threading

from .progress import ProgressBars, auto_bar

_lock = threading.Lock()
_engine = None
_engine_home = None


def _after_fork() -> None:
    global _lock
    _lock = threading.Lock()  # another thread of the parent may have held it at the fork


os.register_at_fork(after_in_child=_after_fork)


def default_engine():
    """The process's Engine, made on first use and reused (a new one if GRADIENT_JUPYTER_HOME changes)."""
    global _engine, _engine_home
    from .engine import Engine

    home = os.environ.get("GRADIENT_JUPYTER_HOME")
    with _lock:
        if _engine is None or home != _engine_home:
            _engine, _engine_home = Engine(), home
        return _engine


_others: dict[tuple, object] = {}


def engine_for(team: str | None = None, provider=None):
    """The engine serving a gradient:// reference (SPEC 9.1): this process's own when the reference names its team
    (or none) and no provider of its own; else one, made once, over the same data home for team `team`, with the
    provider `provider` (storage_options' {"provider": {...}}: engine/providers.py GIVEN_FIELDS) kept in memory."""
    engine = default_engine()
    given = isinstance(provider, dict)
    if (not team or team == engine.team_id) and not given:
        return engine
    from .engine import Engine
    from .engine.ids import check_team_id
    from .engine.providers import given_provider

    team = check_team_id(team) if team else engine.team_id
    key = (os.environ.get("GRADIENT_JUPYTER_HOME"), team, json.dumps(provider, sort_keys=True) if given else None)
    with _lock:
        if key not in _others:
            _others[key] = Engine(team_id=team, providers=(given_provider(provider, team),) if given else ())
        return _others[key]


@contextlib.contextmanager
def transaction(name: str, *, message: str = "", tag: str | None = None, provider: str | None = None):
    """Write a new version of dataset `name` (created if needed, in `provider` or the team default) from any
    number of processes, committed once (README.md, "Cluster").

        with gradient_jupyter.transaction("events", message="daily", tag="2026-12-06") as tx:
            ddf.to_parquet(tx.url + "table/", storage_options=tx.storage_options)

    `tx.url` is `gradient://<datasetId>:<version>/`; every process writes files under it with fsspec (`open(url,
    "wb")`, `pipe`, `put`), passing `tx.storage_options` (the team and provider, no secret). On a clean exit the
    version is committed once and tagged `tag`; on an exception it is deleted (and the dataset, if the transaction
    made it) and nothing is committed. `tx.commit()` commits before the end; `tx.committed` is then the version."""
    from .engine.transactions import begin

    tx = begin(default_engine(), name, message=message, tag=tag, provider=provider)
    try:
        yield tx
    except BaseException:
        if tx.committed is None:
            tx.abort()
        raise
    tx.commit()


def save(
    name: str,
    path,
    *,
    message: str = "",
    provider: str | None = None,
    tag: str | None = None,
    move_tag: bool = False,
    exclude=(),
    follow_links: bool = False,
    dry_run: bool = False,
    progress: bool = True,
):
    """Save the folder `path` as a new committed version of dataset `name` (created if needed); returns the version.

    Only files that changed since the dataset's earlier versions are sent. `provider` (id or name) is where a new
    dataset lives (default: the team default); `tag` names the new version, and is refused (TagInUse) if it names
    another version unless `move_tag=True`. `.git`, `.ipynb_checkpoints`, `__pycache__` and `.gradient` are left
    out, and so is what `.gradientignore` (gitignore syntax) or `exclude` (patterns, one string or several) name.
    Links leading out of `path` are refused (BadInput naming them) unless `follow_links=True`; nothing of the data
    home is ever saved. If the files are exactly those of the latest version, nothing is committed and the result
    is that version with `unchanged` true. `dry_run=True` sends nothing and returns what would be added, changed
    and removed against the latest version (`.added`, `.removed`, `.modified`, `.renamed`). Shows a progress bar
    unless `progress=False`. The result shows the ref `<datasetId>:<version>`, its files, size and tags.
    """
    from .commands.transfer import run_save

    return run_save(
        default_engine(),
        name,
        path if path is None else os.fspath(path),
        progress=ProgressBars(auto_bar if progress else None),
        dry_run=dry_run,
        message=message,
        provider=provider,
        tag=tag,
        move_tag=move_tag,
        exclude=(exclude,) if isinstance(exclude, str) else tuple(exclude),
        follow_links=follow_links,
    )


def load(ref: str, dest=None, *, include=(), exclude=(), overwrite: bool = False, progress: bool = True):
    """Load the version `ref` (`name[:version|tag|latest]`) into the folder `dest` (default `./<dataset name>`).

    Every file is verified against the version's SHA-256 while it streams; files already present and identical
    are skipped. `include`/`exclude` are glob patterns (one string or several) choosing a subset of the files.
    Files of `dest` changed since a load wrote them (or that no load wrote) are never replaced silently: the load
    is refused before writing anything (LocalChanges, listing them in `.paths`) unless `overwrite=True`.
    """
    from .commands.transfer import run_load

    return run_load(
        default_engine(),
        ref,
        None if dest is None else os.fspath(dest),
        progress=ProgressBars(auto_bar if progress else None),
        include=(include,) if isinstance(include, str) else tuple(include),
        exclude=(exclude,) if isinstance(exclude, str) else tuple(exclude),
        overwrite=overwrite,
    )


def open(ref: str):  # noqa: A001 - the public name the README gives it
    """Open the version `ref` for reading without copying it: `.files`, `.read_bytes(path)`, `.open(path)`.

    Bytes read are verified against the version's SHA-256; a mismatch raises IntegrityError.
    """
    from .engine.content.reader import open_version
    from .output import OpenVersion

    return OpenVersion(open_version(default_engine(), ref))


def mount(ref: str, dir=None, *, verify: bool = False, progress: bool = True):  # noqa: A002 - the word users know
    """Make `dir` (default `./datasets/<dataset name>`) a read-only folder of the version `ref`, like Gradient's
    `/datasets/<name>`: files are verified into the content cache and copied from it (reflinks where the file system
    has them). Mounting another version at `dir` replaces it at once; mounting the same one again rebuilds it only if
    a file was written since, and `verify=True` also checks every file's bytes. Shows a progress bar unless
    `progress=False`."""
    from .commands.mounts import mount_message
    from .engine.content.mount import mount as do_mount

    with ProgressBars(auto_bar if progress else None) as bars:
        result = do_mount(default_engine(), ref, None if dir is None else os.fspath(dir), verify=verify, progress=bars)
    return mount_message(result, verify)


def unmount(dir):  # noqa: A002
    """Remove a folder made by `mount` (only what the mount made, as it made it; anything else in it is kept and
    named)."""
    from .engine.content.mount import unmount as do_unmount

    return do_unmount(default_engine(), os.fspath(dir))


def diff(a: str, b: str | None = None, *, include=(), exclude=()):
    """What changed from version `a` to version `b` of one dataset; without `b`, what changed in `a` since its
    parent. Read from the two manifests only (no file bytes).

    The result shows one line per change in a notebook and has plain attributes: `added`, `removed` (file entries
    with `path`, `size`, `sha256`), `modified` (`path`, `before`, `after`), `renamed` (`from_path`, `to_path`,
    `size`), `unchanged`, `bytes_added`, `bytes_removed`, and `to_json()`. `include`/`exclude` are glob patterns
    (one string or several) choosing the paths compared.
    """
    from .engine import history
    from .output import DiffView

    return DiffView(history.diff(default_engine(), a, b, include=include, exclude=exclude))
