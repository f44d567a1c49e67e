"""`save` and `load`: a folder to a new committed version and back, with a progress bar and a summary."""

from __future__ import annotations

from ..output import DryRunView, TransferView
from ..progress import ProgressBars
from . import add_command
from .datasets import ref_arg


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
        action="append",
        default=[],
        metavar="GLOB",
        help="leave out matching paths (.gitignore syntax), repeatable; .gradientignore is read too",
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


def save(ctx, args):
    from ..engine import transfer

    if args.dry_run:
        with ProgressBars(ctx.progress) as bars:
            diff = transfer.preview_save(ctx.engine, args.name, args.path, exclude=tuple(args.exclude), progress=bars)
        return DryRunView(diff, args.name)
    with ProgressBars(ctx.progress) as bars:
        summary = transfer.save(
            ctx.engine,
            args.name,
            args.path,
            message=args.message,
            provider=args.provider,
            tag=args.tag,
            move_tag=args.move_tag,
            exclude=tuple(args.exclude),
            progress=bars,
        )
    return TransferView(summary, "Saved")


def load(ctx, args):
    from ..engine import transfer

    with ProgressBars(ctx.progress) as bars:
        summary = transfer.load(
            ctx.engine,
            args.ref,
            args.dest,
            include=tuple(args.include),
            exclude=tuple(args.exclude),
            overwrite=args.overwrite,
            progress=bars,
        )
    return TransferView(summary, "Loaded")
