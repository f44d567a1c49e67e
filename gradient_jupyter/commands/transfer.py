"""`save` and `load`: a folder to a new committed version and back, with a progress bar and a summary."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..output import DryRunView, TransferView
from ..progress import ProgressBars
from . import add_command
from .args import FOLLOW_LINKS, ref_arg

if TYPE_CHECKING:
    from ..engine import Engine


def register(groups) -> None:
    p = add_command(groups, "save", "Save a folder as a new committed version of a dataset (created if needed).", save)
    p.add_argument("name", metavar="NAME", help="dataset name or id")
    p.add_argument("path", metavar="PATH", help="local folder to save")
    p.add_argument("-m", "--message", default="", help="version message")
    p.add_argument("--provider", help="storage provider id or name for a new dataset (default: the team default)")
    p.add_argument("--tag", help="tag the new version (refused if the tag names another version)")
    p.add_argument("--move-tag", action="store_true", help="move --tag to this version if it names another one")
    p.add_argument(
        "--exclude",
        nargs="+",
        action="extend",
        default=[],
        metavar="GLOB",
        help="leave out matching paths (.gitignore syntax), one or more, repeatable; .gradientignore is read too",
    )
    p.add_argument(
        "--follow-links",
        action="store_true",
        help=FOLLOW_LINKS,
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be added, changed and removed against the latest version; send nothing",
    )
    p = add_command(groups, "load", "Load a version into a folder; identical files already there are skipped.", load)
    p.add_argument("ref", metavar="REF", type=ref_arg, help="DATASET[:VERSION|TAG|latest]")
    p.add_argument("dest", metavar="DEST", nargs="?", help="local folder (default: ./<dataset name>)")
    p.add_argument("--include", action="append", default=[], metavar="GLOB", help="load only matching paths")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip matching paths")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace files of DEST changed since they were loaded (refused without it)",
    )


def run_save(engine: Engine, name: str, path, *, progress, dry_run: bool = False, **options):
    """Save `path` as a new version of dataset `name` (or, with `dry_run`, what would change), as the console
    script, the magic, the Python API and the panel all do it. `progress` is a context manager that is also the
    ProgressEvent callback (a ProgressBars, or the panel's bar): closed when the save ends, however it ends.
    `options` are engine/transfer/save.py `save`'s (message, provider, tag, move_tag, exclude,
    follow_links)."""
    from ..engine import transfer

    with progress as bars:
        if dry_run:
            diff = transfer.preview_save(
                engine,
                name,
                path,
                exclude=options.get("exclude", ()),
                follow_links=options.get("follow_links", False),
                progress=bars,
            )
            return DryRunView(diff, name)
        return TransferView(transfer.save(engine, name, path, progress=bars, **options), "Saved")


def run_load(engine: Engine, ref: str, dest, *, progress, **options) -> TransferView:
    """Load version `ref` into `dest`, as every front end does it (`progress` as for `run_save`; `options` are
    engine/transfer/load.py `load`'s: include, exclude, overwrite)."""
    from ..engine import transfer

    with progress as bars:
        return TransferView(transfer.load(engine, ref, dest, progress=bars, **options), "Loaded")


def save(ctx, args):
    return run_save(
        ctx.engine,
        args.name,
        args.path,
        progress=ProgressBars(ctx.progress),
        dry_run=args.dry_run,
        message=args.message,
        provider=args.provider,
        tag=args.tag,
        move_tag=args.move_tag,
        exclude=tuple(args.exclude),
        follow_links=args.follow_links,
    )


def load(ctx, args):
    return run_load(
        ctx.engine,
        args.ref,
        args.dest,
        progress=ProgressBars(ctx.progress),
        include=tuple(args.include),
        exclude=tuple(args.exclude),
        overwrite=args.overwrite,
    )
