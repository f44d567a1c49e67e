"""`datasets` words: datasets, their versions, tags and files (the Gradient CLI's grammar)."""

from __future__ import annotations

import contextlib
import json
import os
from typing import TYPE_CHECKING

from ..engine import BadInput, GradientError
from ..engine.formatting import human_bytes, human_time
from ..engine.history import created_by, shown, who
from ..output import DiffView, Message, Table, Text, details, printable
from . import add_command, add_group
from .args import FOLLOW_LINKS, committed_arg, dataset_arg, ref_arg, tag_ref_arg, version_arg
from .dataset_files import local_files, put_pairs, register_files

if TYPE_CHECKING:
    from ..engine import Engine


def register(groups) -> None:
    ds = add_group(groups, "datasets", "Manage versioned datasets: datasets, versions, tags and files.")
    add_command(ds, "list", "List datasets.", list_datasets)
    p = add_command(ds, "details", "Show one dataset.", show_dataset)
    p.add_argument("--id", required=True, type=dataset_arg, help="dataset name or id")
    p = add_command(ds, "create", "Create a dataset.", create_dataset)
    p.add_argument("--name", required=True, help="dataset name: letters, digits, '.', '_', '-'")
    p.add_argument("--storageProviderId", help="storage provider id or name (default: the team's default provider)")
    p.add_argument("--description", default="", help="description")
    p = add_command(ds, "update", "Update a dataset's name or description.", update_dataset)
    p.add_argument("--id", required=True, type=dataset_arg, help="dataset name or id")
    p.add_argument("--name", help="new name")
    p.add_argument("--description", help="new description")
    p = add_command(ds, "delete", "Delete a dataset with all its versions and files.", delete_dataset)
    p.add_argument("--id", required=True, type=dataset_arg, help="dataset name or id")
    _register_versions(add_group(ds, "versions", "Manage versions of a dataset."))
    _register_tags(add_group(ds, "tags", "Manage tags: named pointers to committed versions."))
    register_files(add_group(ds, "files", "Manage the files of a version."))


def _register_versions(versions) -> None:
    p = add_command(versions, "list", "List versions of a dataset, newest first.", list_versions)
    p.add_argument("--id", required=True, type=dataset_arg, help="dataset name or id")
    p.add_argument(
        "--isCommitted",
        type=committed_arg,
        default=True,
        metavar="{true,false,all}",
        help="committed versions (true, the default), uncommitted ones (false) or all",
    )
    p = add_command(
        versions, "log", "Show a dataset's history, newest first: one line per committed version.", version_log
    )
    p.add_argument("--id", required=True, type=dataset_arg, help="dataset name or id")
    p = add_command(
        versions, "diff", "Show what changed from one version to another (from the manifests only).", diff_versions
    )
    p.add_argument(
        "--id",
        required=True,
        type=ref_arg,
        metavar="REF",
        help="ref: DATASET[:VERSION|TAG|latest]; without --to, what changed in it since its parent",
    )
    p.add_argument(
        "--to", type=ref_arg, metavar="REF", help="ref of a version of the same dataset: what changed from --id to it"
    )
    p.add_argument("--include", action="append", default=[], metavar="GLOB", help="compare only matching paths")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="leave matching paths out")
    p = add_command(versions, "details", "Show one version.", show_version)
    p.add_argument("--id", required=True, type=ref_arg, help="ref: DATASET[:VERSION|TAG|latest]")
    p = add_command(
        versions, "create", "Create a version; with --source-path, upload those files and commit it.", create_version
    )
    p.add_argument("--id", required=True, type=dataset_arg, help="dataset name or id")
    p.add_argument("--message", default="", help="version message")
    p.add_argument(
        "--source-path",
        dest="source_paths",
        nargs="+",
        action="extend",
        default=[],
        metavar="P",
        help="files or folders to put into the version (setting this commits the version)",
    )
    p.add_argument("--follow-links", action="store_true", help=FOLLOW_LINKS)
    p = add_command(versions, "update", "Change a version's message.", update_version)
    p.add_argument("--id", required=True, type=version_arg, help="DATASET:VERSION")
    p.add_argument("--message", required=True, help="new message")
    p = add_command(versions, "commit", "Commit a version: its files never change again.", commit_version)
    p.add_argument("--id", required=True, type=version_arg, help="DATASET:VERSION")
    p = add_command(versions, "delete", "Delete a version (files other versions use are kept).", delete_version)
    p.add_argument("--id", required=True, type=version_arg, help="DATASET:VERSION")


def _register_tags(tags) -> None:
    p = add_command(tags, "list", "List a dataset's tags.", list_tags)
    p.add_argument("--id", required=True, type=dataset_arg, help="dataset name or id")
    p = add_command(tags, "set", "Point a tag at a committed version (moves it if it exists).", set_tag)
    p.add_argument("--id", required=True, type=version_arg, help="DATASET:VERSION")
    p.add_argument("--name", required=True, help="tag name: lowercase letters, digits, '.', '_', '-'")
    p = add_command(tags, "delete", "Delete a tag (the version stays).", delete_tag)
    p.add_argument("--id", required=True, type=tag_ref_arg, help="DATASET:TAG")


# -- datasets ---------------------------------------------------------------------------------------------------------
def datasets_table(datasets, providers, empty: str = "(none)", drafts: dict | None = None) -> Table:
    """The datasets as the console and the panel show them, with their providers' names; with `drafts` (dataset id
    -> its `Datasets.drafts`, None if they could not be read), how many drafts each has and the bytes they hold, in
    a column shown only when some dataset has one."""
    names = {p.id: p.name for p in providers}
    rows = [[d.name, d.id, names.get(d.storage_provider_id, d.storage_provider_id), d.description] for d in datasets]
    columns = ["Name", "ID", "Storage provider", "Description"]
    if drafts is not None and any(found != [] for found in drafts.values()):
        columns.insert(3, "Drafts")
        for d, row in zip(datasets, rows, strict=True):
            row.insert(3, drafts_words(drafts.get(d.id)))
    return Table(
        columns,
        rows,
        title="Datasets",
        data=[d.to_json() for d in datasets],
        empty=empty,
    )


def drafts_words(drafts) -> str:
    """'1 (670.0 MiB)': a dataset's drafts and the bytes they hold; '' for none, '?' if they could not be read."""
    if drafts is None:
        return "?"
    return f"{len(drafts)} ({human_bytes(sum(d.held_bytes for d in drafts))})" if drafts else ""


def all_drafts(engine: Engine, datasets) -> dict:
    """Dataset id -> its drafts (None where they could not be read), read in parallel."""

    def one(d):
        try:
            return engine.datasets.drafts(d)
        except GradientError:
            return None

    return dict(zip((d.id for d in datasets), engine.map(one, datasets), strict=True))


def list_datasets(ctx, args):
    skipped: list = []
    found = ctx.engine.datasets.list(skipped)
    for warning in skipped:  # the datasets of a provider that did not answer are missing: say so, why, what to do
        ctx.warn(printable(f"{warning} {warning.what_to_do(ctx.prog)}"))
    drafts = all_drafts(ctx.engine, found)
    if any(drafts.values()):
        ctx.warn(
            "Drafts are uncommitted versions (an interrupted save leaves one; the next save reuses its bytes and "
            f"removes it): list them with {ctx.prog} datasets versions list --id NAME --isCommitted false, delete "
            f"one with {ctx.prog} datasets versions delete --id NAME:VERSION."
        )
    return datasets_table(found, ctx.engine.registry.list(), drafts=drafts)


def _provider_names(ctx) -> dict:
    return {p.id: p.name for p in ctx.engine.registry.list()}


def show_dataset(ctx, args):
    d = ctx.engine.datasets.get(args.id)
    provider = _provider_names(ctx).get(d.storage_provider_id, "")
    fields = {
        "name": d.name,
        "id": d.id,
        "description": d.description,
        "storageProvider": f"{provider} ({d.storage_provider_id})" if provider else d.storage_provider_id,
        "dtCreated": d.dt_created,
        "dtModified": d.dt_modified,
    }
    return details(f"Dataset {d.name}", fields, data=d.to_json())


def create_dataset(ctx, args):
    d = ctx.engine.datasets.create(args.name, provider=args.storageProviderId, description=args.description)
    return Message(f"Created dataset: {d.id}", data=d.to_json())


def update_dataset(ctx, args):
    if args.name is None and args.description is None:
        raise BadInput("Nothing to update: give --name or --description.", reason="nothing-to-update")
    d = ctx.engine.datasets.update(args.id, name=args.name, description=args.description)
    return Message(f"Updated dataset: {d.id}", data=d.to_json())


def delete_dataset(ctx, args):
    d = ctx.engine.datasets.get(args.id)
    ctx.engine.datasets.delete(d)
    return Message(f"Deleted dataset: {d.id}", data=d.to_json())


# -- versions ---------------------------------------------------------------------------------------------------------
def version_row(v) -> list:
    return [
        v.version,
        v.ref,
        v.message,
        ", ".join(v.tags),
        "yes" if v.is_committed else "no",
        v.file_count,
        human_bytes(v.size),
        human_time(v.dt_committed or v.dt_created),
        who(v.created_by),
    ]


VERSION_COLUMNS = ["Version", "ID", "Message", "Tags", "Committed", "Files", "Size", "Date", "By"]


def versions_table(d, versions, committed: bool | None = True) -> Table:
    """A dataset's versions as the console and the panel show them, newest first."""
    title = f"Versions of {d.name}" + {True: "", False: " (uncommitted)", None: " (all)"}[committed]
    return Table(
        VERSION_COLUMNS,
        [version_row(v) for v in versions],
        title=title,
        data=[v.to_json() for v in versions],
        empty="(no committed version yet)" if committed else "(none)",
    )


def list_versions(ctx, args):
    d = ctx.engine.datasets.get(args.id)
    return versions_table(d, ctx.engine.datasets.list_versions(d, committed=args.isCommitted), args.isCommitted)


def show_version(ctx, args):
    d, v = ctx.engine.datasets.resolve(args.id)
    fields = {
        "id": v.ref,
        "dataset": d.name,
        "message": v.message,
        "committed": str(v.is_committed).lower(),
        "tags": ", ".join(v.tags),
        "files": v.file_count,
        "size": human_bytes(v.size),
        "dtCreated": v.dt_created,
        "dtCommitted": v.dt_committed or "",
        "parent": f"{d.id}:{v.parent}" if v.parent else "",
        **created_by_fields(v.created_by),
    }
    return details(f"Version {v.ref}", fields, data=v.to_json())


def created_by_fields(by: dict | None) -> dict:
    """A version's createdBy as detail rows (checked when read: engine/history.py `check_lineage`)."""
    by = by or {}
    git = by.get("gitCommit", "")
    if git and by.get("dirty"):
        git += " (dirty)"
    return {"createdBy": who(by), "tool": by.get("tool", ""), "notebook": by.get("notebook", ""), "gitCommit": git}


def version_log(ctx, args):
    d = ctx.engine.datasets.get(args.id)
    found = ctx.engine.datasets.list_versions(d, committed=True)
    lines = []
    for v in found:
        tags = f" ({', '.join(v.tags)})" if v.tags else ""
        by = who(v.created_by)
        lines.append(
            f"{v.ref}{tags}  {shown(v.dt_committed or v.dt_created)}  {by or '-'}  "
            f"{shown(json.dumps(v.message, ensure_ascii=False))}  {v.file_count} files, "
            f"{human_bytes(v.size)}"
        )
    text = "\n".join([f"History of {d.name}"] + (lines or ["(no committed version yet)"]))
    return Text(text, data=[v.to_json() for v in found])


def diff_versions(ctx, args):
    from ..engine import history

    return DiffView(history.diff(ctx.engine, args.id, args.to, include=args.include, exclude=args.exclude))


def create_version(ctx, args):
    pairs = local_files(ctx.engine, args.source_paths, "", follow_links=args.follow_links) if args.source_paths else []
    datasets = ctx.engine.datasets
    d = datasets.get(args.id)
    datasets.check_put_quota(d, [local for local, _ in pairs])
    folders = [p for p in args.source_paths if os.path.isdir(p)]
    # one folder put in whole is what `save` versions: record its git commit the same way
    origin = created_by(folders[0]) if len(folders) == 1 and len(args.source_paths) == 1 else None
    v = datasets.create_version(d, message=args.message, created_by=origin)
    lines = [f"Created dataset version: {v.ref}"]
    if pairs:
        try:
            count, size = put_pairs(ctx, d, v, pairs)
            v = datasets.commit(d, v.version)
        except BaseException:
            # A half-filled version is of no use to anyone: leave things as they were.
            with contextlib.suppress(GradientError):
                datasets.delete_version(d, v.version)
            raise
        lines += [f"Put {count} files ({human_bytes(size)})", f"Committed dataset version: {v.ref}"]
    return Message("\n".join(lines), data=v.to_json())


def update_version(ctx, args):
    name, version = args.id
    v = ctx.engine.datasets.update_version(name, version, message=args.message)
    return Message(f"Updated dataset version: {v.ref}", data=v.to_json())


def commit_version(ctx, args):
    name, version = args.id
    before = ctx.engine.datasets.get_version(name, version)
    v = ctx.engine.datasets.commit(name, version)
    text = "Dataset version already committed" if before.is_committed else f"Committed dataset version: {v.ref}"
    return Message(text, data=v.to_json())


def delete_version(ctx, args):
    name, version = args.id
    v = ctx.engine.datasets.get_version(name, version)
    ctx.engine.datasets.delete_version(name, version)
    return Message(f"Deleted dataset version: {v.ref}", data=v.to_json())


# -- tags -------------------------------------------------------------------------------------------------------------
def list_tags(ctx, args):
    d = ctx.engine.datasets.get(args.id)
    found = ctx.engine.datasets.list_tags(d)
    return Table(
        ["Name", "ID"],
        [[t.name, f"{d.id}:{t.version}"] for t in found],
        title=f"Tags of {d.name}",
        data=[t.to_json() for t in found],
    )


def set_tag(ctx, args):
    name, version = args.id
    d = ctx.engine.datasets.get(name)
    t = ctx.engine.datasets.set_tag(d, args.name, version)
    return Message(f"Set dataset tag: {d.id}:{t.name} -> {t.version}", data=t.to_json())


def delete_tag(ctx, args):
    name, tag = args.id
    d = ctx.engine.datasets.get(name)
    ctx.engine.datasets.delete_tag(d, tag)
    return Message(f"Deleted dataset tag: {d.id}:{tag}")
