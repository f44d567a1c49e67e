"""`storageProviders` words: list, details, create s3, update s3, delete, check, policy."""

from __future__ import annotations

import json

from ..engine import BadInput
from ..engine.formatting import human_bytes
from ..engine.ids import check_origin
from ..engine.providers import Provider
from ..output import Message, ReportView, Table, Text, details
from . import add_command, add_group

S3_OPTIONS = (
    ("--bucket", "bucket name"),
    ("--accessKey", "access key ID"),
    ("--secretAccessKey", "secret access key (omit it to be asked with a hidden prompt)"),
    ("--endpoint", "endpoint URL of an S3-compatible store, e.g. http://127.0.0.1:9000"),
    ("--region", "region, e.g. us-east-1"),
    ("--signatureVersion", "signature version (v4)"),
    ("--profile", "AWS profile name instead of keys"),
)


def register(groups) -> None:
    sp = add_group(groups, "storageProviders", "Manage storage providers (S3-compatible buckets).")
    add_command(sp, "list", "List storage providers.", list_providers)
    p = add_command(sp, "details", "Show one storage provider.", show_provider)
    p.add_argument("--id", required=True, help="provider id or name")
    p = add_command(sp, "delete", "Delete a storage provider (its bucket is not touched).", delete_provider)
    p.add_argument("--id", required=True, help="provider id or name")
    p.add_argument("--force", action="store_true", help="delete even while datasets use it")

    p = add_command(
        sp,
        "check",
        "Check a provider's bucket setup: credentials, permissions, conditional writes, CORS.",
        check_provider,
    )
    p.add_argument("--id", required=True, help="provider id or name")
    p.add_argument(
        "--origin",
        nargs="+",
        action="extend",
        metavar="URL",
        help="browser origins to check CORS for, one or more, repeatable (default: the running Jupyter servers' "
        "origins; c.GradientStorage.cors_origins are always added)",
    )
    p.add_argument(
        "--fix",
        action="store_true",
        help="first merge the recommended CORS rules into the bucket's own (never drops a rule)",
    )
    p = add_command(sp, "policy", "Print the least-privilege IAM policy for a provider's bucket.", show_policy)
    p.add_argument("--id", required=True, help="provider id or name")
    p.add_argument("--team-only", action="store_true", help="narrow the policy to this team's folder")

    create = add_group(sp, "create", "Create a storage provider.")
    p = add_command(create, "s3", "Create an S3-compatible storage provider.", create_provider)
    p.add_argument("--name", required=True, help="provider name")
    _s3_options(p, bucket_required=True)
    update = add_group(sp, "update", "Update a storage provider.")
    p = add_command(
        update, "s3", "Update an S3-compatible storage provider (only the options given change).", update_provider
    )
    p.add_argument("--id", required=True, help="provider id or name")
    p.add_argument("--name", help="new name")
    _s3_options(p, bucket_required=False)


def _s3_options(p, *, bucket_required: bool) -> None:
    for flag, text in S3_OPTIONS:
        p.add_argument(flag, help=text, required=bucket_required and flag == "--bucket")
    p.add_argument("--isTeamDefault", action="store_true", help="make it the team's default provider")


def _config(ctx, args, *, creating: bool) -> dict:
    config = {flag[2:]: getattr(args, flag[2:]) for flag, _ in S3_OPTIONS if getattr(args, flag[2:]) is not None}
    if config.get("accessKey") and "secretAccessKey" not in config:
        try:
            config["secretAccessKey"] = ctx.prompt_secret(f"Secret access key for {config['accessKey']}: ")
        except EOFError:  # no terminal and nothing on standard input, or a notebook run that takes no input
            raise BadInput(
                "No secret access key was given, and it cannot be asked for here (no terminal, or a notebook "
                "run without input): give --secretAccessKey, or in a shell send the secret on standard input.",
                reason="missing-secret",
            ) from None
        if not config["secretAccessKey"]:
            raise BadInput(
                "The secret access key is empty: give the secret that belongs to the access key.", reason="empty-secret"
            )
    elif "secretAccessKey" in config and ctx.in_notebook:
        ctx.warn(
            "Warning: the secret access key is now in this notebook's text. Omit --secretAccessKey to be "
            "asked for it with a hidden prompt, and clear this cell."
        )
    if creating and "secretAccessKey" in config and "accessKey" not in config:
        raise BadInput("--secretAccessKey needs --accessKey.")
    return config


def provider_fields(p: Provider) -> dict:
    c = p.public_config()
    return {
        "id": p.id,
        "name": p.name,
        "type": p.type,
        "bucket": c["bucket"],
        "endpoint": c["endpoint"] or "",
        "region": c["region"] or "",
        "accessKey": c["accessKey"] or "",
        "secretAccessKey": c["secretAccessKey"] or "",
        "signatureVersion": c["signatureVersion"] or "",
        "profile": c["profile"] or "",
        "isTeamDefault": p.is_team_default,
        "isGradientManaged": p.is_gradient_managed,
        "source": source_words(p),
        "dtCreated": p.dt_created,
        "dtModified": p.dt_modified,
    }


def providers_table(providers: list[Provider], usage: dict | None = None) -> Table:
    """The providers as the console and the panel show them; with `usage` (Engine.utilization), the bytes each one
    holds and the state of its bucket, next to the name (an unreachable one's reason in the last column)."""
    columns = ["Name", "ID", "Bucket", "Endpoint", "Default"]  # Gradient Managed says what it is by its name
    rows = [
        [
            p.name,
            p.id,
            p.bucket,
            p.endpoint or ("embedded" if p.embedded else "AWS"),
            "yes" if p.is_team_default else "",
        ]
        for p in providers
    ]
    if any(p.source == "team" or p.shadowed for p in providers):  # a team install: say whose each one is
        columns.append("Source")
        for p, row in zip(providers, rows, strict=True):
            row.append(source_words(p))
    if usage is not None:
        columns[2:2] = ["Used", "State"]
        columns.append("Problem")
        used = {row["id"]: row for row in usage["storageProviders"]}
        for p, row in zip(providers, rows, strict=True):
            u = used.get(p.id)
            if u is None:
                state = ["", "checking...", ""]
            elif u.get("error"):
                state = ["", "unreachable", u["error"]]
            else:
                state = [human_bytes(u.get("usedBytes") or 0), "ok", ""]
            row[2:2] = state[:2]
            row.append(state[2])
    return Table(columns, rows, title="Storage providers", data=[p.to_json() for p in providers])


def source_words(p: Provider) -> str:
    """Whose a provider is, in a word or two: "team", "team, read-only", "user", "user, shadowed"."""
    extra = ", read-only" if p.read_only else ", shadowed" if p.shadowed else ""
    return p.source + extra


def list_providers(ctx, args):
    for warning in ctx.engine.registry.warnings():  # a broken team file, shadowed names
        ctx.warn(warning)
    return providers_table(ctx.engine.registry.list())


def show_provider(ctx, args):
    p = ctx.engine.registry.get(args.id)
    return details(f"Storage provider {p.id}", provider_fields(p), data=p.to_json())


def create_provider(ctx, args):
    config = _config(ctx, args, creating=True)
    p = ctx.engine.registry.create(args.name, config, is_team_default=args.isTeamDefault)
    if warning := ctx.engine.registry.bucket_warning(p):
        ctx.warn(warning)
    return Message(f"Created storage provider: {p.id}", data=p.to_json())


def update_provider(ctx, args):
    config = _config(ctx, args, creating=False)
    p = ctx.engine.registry.update(
        args.id, name=args.name, config=config or None, is_team_default=True if args.isTeamDefault else None
    )
    if config.get("bucket") or config.get("endpoint"):
        if warning := ctx.engine.registry.bucket_warning(p):
            ctx.warn(warning)
    return Message(f"Updated storage provider: {p.id}", data=p.to_json())


def delete_provider(ctx, args):
    p = ctx.engine.delete_provider(args.id, force=args.force)
    return Message(f"Deleted storage provider: {p.id}", data=p.to_json())


def check_provider(ctx, args):
    from ..engine import doctor  # here, not at the top: every other command (load, save) starts without it

    origins = args.origin or jupyter_server_origins()
    if args.fix:
        return ReportView(doctor.apply_cors(ctx.engine, args.id, origins))
    return ReportView(doctor.check(ctx.engine, args.id, origins=origins))


def show_policy(ctx, args):
    from ..engine import doctor

    document = doctor.policy(ctx.engine, args.id, team_only=args.team_only)
    return Text(json.dumps(document, indent=2), data=document)


def jupyter_server_origins() -> list[str]:
    """Origins of the Jupyter servers running on this machine (Jupyter's own list of them): what a browser uses."""
    from jupyter_server.serverapp import list_running_servers

    origins = []
    for info in list_running_servers():
        try:
            origins.append(check_origin(info["url"]))
        except (KeyError, TypeError, BadInput):
            continue  # a foreign or damaged runtime file is no origin
    return sorted(set(origins))
