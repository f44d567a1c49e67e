"""`datasets files` words: list, get, put and delete the files of a version (the Gradient CLI's grammar); the
tables of a version's folders, which the panel shows too."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine import BadInput, NotFound
from ..engine.formatting import human_bytes
from ..output import Message, Table
from ..progress import ProgressBars
from . import add_command
from .args import FOLLOW_LINKS, bool_arg, ref_arg, version_arg

if TYPE_CHECKING:
    from ..engine import Engine


def register_files(files) -> None:
    p = add_command(files, "list", "List the files of a version.", list_files)
    p.add_argument("--id", required=True, type=ref_arg, help="ref: DATASET[:VERSION|TAG|latest]")
    p.add_argument("--path", default="", help="folder to list (default: the top)")
    p.add_argument(
        "--recursive",
        nargs="?",
        const=True,
        default=False,
        type=bool_arg,
        metavar="true|false",
        help="list every file below the folder, not just its top level",
    )
    p = add_command(files, "get", "Download files of a version into a folder (verified).", get_files)
    p.add_argument("--id", required=True, type=ref_arg, help="ref: DATASET[:VERSION|TAG|latest]")
    p.add_argument(
        "--source-path",
        dest="source_paths",
        nargs="+",
        action="extend",
        default=[],
        metavar="P",
        help="files or folders of the version to get (default: all)",
    )
    p.add_argument("--target-path", required=True, help="local folder; files keep their paths in the version below it")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace local files changed since they were downloaded (refused without it)",
    )
    p = add_command(files, "put", "Upload local files or folders into an uncommitted version.", put_files)
    p.add_argument("--id", required=True, type=version_arg, help="DATASET:VERSION (uncommitted)")
    p.add_argument(
        "--source-path",
        dest="source_paths",
        nargs="+",
        action="extend",
        required=True,
        metavar="P",
        help="local files or folders (a folder named with a trailing / puts only its contents)",
    )
    p.add_argument("--follow-links", action="store_true", help=FOLLOW_LINKS)
    p.add_argument("--target-path", default="", help="folder in the version to put them in (default: the top)")
    p = add_command(files, "delete", "Delete files or folders from an uncommitted version.", delete_files)
    p.add_argument("--id", required=True, type=version_arg, help="DATASET:VERSION (uncommitted)")
    p.add_argument(
        "--path",
        dest="paths",
        nargs="+",
        action="extend",
        required=True,
        metavar="P",
        help="files or folders of the version to delete",
    )


# -- files ------------------------------------------------------------------------------------------------------------
def folder(path: str) -> str:
    """A path inside a version as a folder prefix: no leading slash, one trailing slash ('' for the top)."""
    path = "/".join(part for part in path.replace("\\", "/").split("/") if part)
    return path + "/" if path else ""


def select(entries, paths: list[str]) -> list:
    """The entries each path names (a file, or every file below a folder); NotFound for a path naming nothing."""
    chosen: dict[str, object] = {}
    for path in paths:
        prefix = folder(path)
        hits = [e for e in entries if e.path == prefix[:-1] or e.path.startswith(prefix)]
        if not hits:
            raise NotFound(
                f"No file or folder {path!r} in this version: see 'datasets files list'.", reason="no-such-path"
            )
        chosen.update((e.path, e) for e in hits)
    return list(chosen.values())


def list_files(ctx, args):
    d, v = ctx.engine.datasets.resolve(args.id)
    prefix = folder(args.path)
    entries = ctx.engine.datasets.list_files(d, v.version, prefix=prefix[:-1])  # --path may name a file
    entries = [e for e in entries if e.path.startswith(prefix) or e.path == prefix[:-1]]
    if args.path and not entries:
        raise NotFound(
            f"No file or folder {args.path!r} in {v.ref}: see 'datasets files list --id {args.id}'.",
            reason="no-such-path",
        )
    title = f"Files of {v.ref}" + (f" in {prefix}" if prefix else "")
    return Table(
        ["Name", "Size"],
        folder_rows(entries, prefix, recursive=args.recursive),
        title=title,
        data=[e.to_json() for e in entries],
    )


def folder_rows(entries, prefix: str, *, recursive: bool = False) -> list[list[str]]:
    """[path, size] of the files in folder `prefix` (see `folder`), sorted; unless `recursive`, each sub-folder
    is one row `path/` with its total size and file count (the console's listing and the panel's browser)."""
    rows: list[list[str]] = []
    folders: dict[str, tuple[int, int]] = {}
    for e in entries:
        if not (e.path.startswith(prefix) or e.path == prefix[:-1]):
            continue
        rest = e.path[len(prefix) :]
        if recursive or e.path == prefix[:-1] or "/" not in rest:
            rows.append([e.path, human_bytes(e.size)])
        else:
            sub = prefix + rest.split("/", 1)[0] + "/"
            count, size = folders.get(sub, (0, 0))
            folders[sub] = (count + 1, size + e.size)
    for sub, (count, size) in folders.items():
        rows.append([sub, f"{human_bytes(size)} in {count} file{'s' if count > 1 else ''}"])
    return sorted(rows)


def get_files(ctx, args):
    from ..engine import transfer
    from ..output import TransferView

    d, v = ctx.engine.datasets.resolve(args.id)
    include = ()
    if args.source_paths:
        entries = ctx.engine.datasets.list_files(d, v.version)
        include = tuple(glob.escape(e.path) for e in select(entries, args.source_paths))
    with ProgressBars(ctx.progress) as bars:
        summary = transfer.load(
            ctx.engine,
            f"{d.id}:{v.version}",
            args.target_path,
            include=include,
            overwrite=args.overwrite,
            progress=bars,
        )
    return TransferView(summary, "Downloaded")


def local_files(
    engine: Engine, sources: list[str], target: str, *, follow_links: bool = False
) -> list[tuple[Path, str]]:
    """(local file, path in the version) for each source: a file goes to TARGET/name, a folder to TARGET/folder/...,
    a folder written with a trailing slash puts its contents in TARGET/. Checked before anything is sent. A folder's
    files are those `save` would version (engine/transfer/local.py `scan_folder`): `.git/`, `.ipynb_checkpoints/`,
    `__pycache__/`, `.gradient/`, the data home and what the folder's `.gradientignore` names stay out, and the
    data home itself, or a file in it or a link into it, is refused (`save_folder`), and so are links leading out of
    a folder unless `follow_links`."""
    from ..engine.transfer import save_folder, scan_folder

    base = folder(target)
    pairs = []
    for source in sources:
        local = Path(source).expanduser()
        if local.is_file():
            real, home = local.resolve(), Path(engine.home).resolve()
            if home in real.parents:
                raise BadInput(
                    f"{source!r} is in gradient-jupyter's data home (provider registry, secrets, caches): it "
                    "cannot be put into a dataset.",
                    reason="data-home",
                )
            pairs.append((local, base + local.name))
        elif local.is_dir():
            under = base if source.endswith(("/", os.sep)) else base + local.resolve().name + "/"
            pairs += [
                (file, under + rel)
                for rel, file in scan_folder(save_folder(engine, local), home=engine.home, follow_links=follow_links)
            ]
        else:
            raise BadInput(f"Source path not found: {source!r} is not a file or folder.", reason="no-source-path")
    if not pairs:
        raise BadInput(
            f"No files to put: {', '.join(map(repr, sources))} holds no files (after leaving out .git, "
            ".ipynb_checkpoints, __pycache__, .gradient and what .gradientignore names).",
            reason="no-files",
        )
    return pairs


def put_pairs(ctx, d, v, pairs) -> tuple[int, int]:
    """Upload (local file, path in the version) pairs into version `v` of dataset `d` with one progress bar."""
    total = sum(p.stat().st_size for p, _ in pairs)
    bar = ctx.progress(total=total, unit="B", desc="Uploading") if ctx.progress else None
    try:
        for local, path in pairs:
            ctx.engine.datasets.put_file(d, v.version, path, local)
            if bar is not None:
                bar.update(local.stat().st_size)
    finally:
        if bar is not None:
            bar.close()
    return len(pairs), total


def put_files(ctx, args):
    name, version = args.id
    pairs = local_files(ctx.engine, args.source_paths, args.target_path, follow_links=args.follow_links)
    d = ctx.engine.datasets.get(name)
    v = ctx.engine.datasets.get_version(d, version)
    ctx.engine.datasets.check_put_quota(d, [local for local, _ in pairs])
    count, size = put_pairs(ctx, d, v, pairs)
    return Message(
        f"Put {count} files ({human_bytes(size)}) into {v.ref}",
        data=[{"path": path, "source": str(local)} for local, path in pairs],
    )


def delete_files(ctx, args):
    name, version = args.id
    d = ctx.engine.datasets.get(name)
    v = ctx.engine.datasets.get_version(d, version)
    doomed = select(ctx.engine.datasets.list_files(d, v.version), args.paths)
    for e in doomed:
        ctx.engine.datasets.delete_file(d, v.version, e.path)
    return Message(f"Deleted {len(doomed)} files from {v.ref}", data=[e.to_json() for e in doomed])
