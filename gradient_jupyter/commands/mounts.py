"""`mount`, `unmount` and `cache`: read-only folders of versions, and the local content cache behind them."""

from __future__ import annotations

from ..engine.formatting import human_bytes
from ..output import Message, Text
from ..progress import ProgressBars
from . import add_command, add_group
from .args import ref_arg


def register(groups) -> None:
    p = add_command(
        groups,
        "mount",
        "Make a read-only folder of a version (default: ./datasets/<dataset name>); "
        "mounting another version there replaces it.",
        mount,
    )
    p.add_argument("ref", metavar="REF", type=ref_arg, help="DATASET[:VERSION|TAG|latest]")
    p.add_argument("dir", metavar="DIR", nargs="?", help="folder to mount at (default: ./datasets/<dataset name>)")
    p.add_argument(
        "--verify",
        action="store_true",
        help="check every mounted file's bytes against the version, and rebuild the mount if one was changed",
    )
    p = add_command(groups, "unmount", "Remove a folder made by mount (only what the mount made).", unmount)
    p.add_argument("dir", metavar="DIR", help="the mounted folder")
    cache = add_group(
        groups, "cache", "The local content cache of verified file bytes (shared by gradient://, mount and load)."
    )
    add_command(cache, "info", "Where the cache is, its size and its limit.", cache_info)
    add_command(cache, "clear", "Remove every cached file (mounted files are copies: they stay).", cache_clear)


def mount_message(result, verified: bool = False) -> Message:
    data = {
        "folder": str(result.folder),
        "datasetId": result.dataset.id,
        "version": result.version.version,
        "files": result.files,
        "size": result.size,
        "unchanged": result.unchanged,
        "adopted": result.adopted,
    }
    if result.unchanged:
        checked = "every file checked, " if verified else ""
        return Message(
            f"Already mounted: {result.dataset.name} ({result.version.ref}) at {result.folder} ({checked}as it was "
            "made).",
            data=data,
        )
    how = (
        "shared copy-on-write with the cache"
        if result.cloned == result.files
        else "copied from the cache"
        if not result.cloned
        else f"{result.cloned} shared copy-on-write with the cache, {result.files - result.cloned} copied"
    )
    lines = [
        f"Mounted {result.dataset.name} ({result.version.ref}) read-only at {result.folder}: "
        f"{result.files} files, {human_bytes(result.size)} ({how})."
    ]
    if result.adopted:
        lines.append(
            "It replaced a mount made by an earlier release (hard links into the content cache), checked first: "
            "every file was a link of a cache entry."
        )
    if result.repaired:
        lines.append(
            f"Rebuilt it: {len(result.repaired)} file(s) had been written since mounted: {_some(result.repaired)}."
        )
    if result.kept:
        lines.append(
            f"Kept {len(result.kept)} file(s) of the mount it replaced that the mount did not make, or that were "
            f"written since, in {result.kept_in}: {_some(result.kept)}."
        )
    data.update(repaired=result.repaired, kept=result.kept, keptIn=str(result.kept_in) if result.kept_in else None)
    return Message("\n".join(lines), data=data)


def _some(paths: list[str], shown: int = 10) -> str:
    return ", ".join(paths[:shown]) + (f" and {len(paths) - shown} more" if len(paths) > shown else "")


def mount(ctx, args):
    from ..engine.content.mount import mount as do_mount

    with ProgressBars(ctx.progress) as bars:
        return mount_message(do_mount(ctx.engine, args.ref, args.dir, verify=args.verify, progress=bars), args.verify)


def unmount(ctx, args):
    from ..engine.content.mount import unmount as do_unmount

    kept = do_unmount(ctx.engine, args.dir)
    if kept:
        return Message(f"Unmounted {args.dir}; kept {len(kept)} file(s) the mount did not make: " + ", ".join(kept))
    return Message(f"Unmounted {args.dir}.")


def cache_info(ctx, args):
    info = ctx.engine.content_cache.info()
    return Text(
        f"Content cache {info['path']}: {info['entries']} entries, {human_bytes(info['bytes'])} of "
        f"{human_bytes(info['limitBytes'])} (c.GradientStorage.cache_size).",
        data=info,
    )


def cache_clear(ctx, args):
    info = ctx.engine.content_cache.clear()
    return Message(
        f"Cleared the content cache: removed {info['entries']} entries, {human_bytes(info['bytes'])}.", data=info
    )
