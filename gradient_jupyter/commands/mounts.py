"""`mount`, `unmount` and `cache`: read-only folders of versions, and the local content cache behind them."""

from __future__ import annotations

from ..engine.formatting import human_bytes
from ..output import Message
from ..progress import ProgressBars
from . import add_command, add_group
from .datasets import ref_arg


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
    p = add_command(groups, "unmount", "Remove a folder made by mount (only what the mount made).", unmount)
    p.add_argument("dir", metavar="DIR", help="the mounted folder")
    cache = add_group(
        groups, "cache", "The local content cache of verified file bytes (shared by gradient://, mount and load)."
    )
    add_command(cache, "info", "Where the cache is, its size and its limit.", cache_info)
    add_command(cache, "clear", "Remove every cached file (mounted files keep their bytes).", cache_clear)


def mount_message(result) -> Message:
    data = {
        "folder": str(result.folder),
        "datasetId": result.dataset.id,
        "version": result.version.version,
        "files": result.files,
        "size": result.size,
        "unchanged": result.unchanged,
    }
    if result.unchanged:
        return Message(f"Already mounted: {result.dataset.name} ({result.version.ref}) at {result.folder}.", data=data)
    how = (
        "linked from the cache"
        if result.linked == result.files
        else f"{result.linked} linked from the cache, {result.files - result.linked} copied"
    )
    return Message(
        f"Mounted {result.dataset.name} ({result.version.ref}) read-only at {result.folder}: "
        f"{result.files} files, {human_bytes(result.size)} ({how}).",
        data=data,
    )


def mount(ctx, args):
    from ..engine.mount import mount as do_mount

    with ProgressBars(ctx.progress) as bars:
        return mount_message(do_mount(ctx.engine, args.ref, args.dir, progress=bars))


def unmount(ctx, args):
    from ..engine.mount import unmount as do_unmount

    kept = do_unmount(args.dir)
    if kept:
        return Message(f"Unmounted {args.dir}; kept {len(kept)} file(s) the mount did not make: " + ", ".join(kept))
    return Message(f"Unmounted {args.dir}.")


def cache_info(ctx, args):
    info = ctx.engine.content_cache.info()
    return Message(
        f"Content cache {info['path']}: {info['entries']} entries, {human_bytes(info['bytes'])} of "
        f"{human_bytes(info['limitBytes'])} (c.GradientStorage.cache_size).",
        data=info,
    )


def cache_clear(ctx, args):
    info = ctx.engine.content_cache.clear()
    return Message(
        f"Cleared the content cache: removed {info['entries']} entries, {human_bytes(info['bytes'])}.", data=info
    )
