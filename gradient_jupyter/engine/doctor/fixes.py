"""How to fix what a check found, in words: the command to run, the setting to change, the IAM statement or CORS
rules to add, worded for the console or for a person at the panel's form (`Form`)."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .rules import merge_cors_rules, policy

if TYPE_CHECKING:
    from ..core import Engine
    from ..providers import Provider

CORS_NEEDED_FOR = (
    "CORS matters only to a web page that reads or writes the bucket itself with presigned URLs "
    "(the Gradient web console, your own web app); save, load, the magic, the panel and the console "
    "script never need it."
)
STORE_CORS_HINT = (
    "Some stores keep CORS outside the S3 API: MinIO sets it server-wide (MINIO_API_CORS_ALLOW_ORIGIN), "
    "Cloudflare R2 in the bucket's settings in its dashboard. A proxy in front of the store can also "
    "drop the CORS headers."
)


@dataclass(frozen=True)
class Form:
    """Fixes worded for a person at a form (the panel) instead of the console: the label of each setting's field
    (by its config name) and the buttons and field that change a provider, apply the CORS rules and give origins."""

    labels: dict[str, str]
    edit: str
    check: str
    apply_cors: str
    origins: str


class Fixes:
    """The fixes for one provider's findings (its id, bucket and endpoint in the commands), for the console or a
    form."""

    def __init__(self, engine: Engine, provider: Provider, registered: bool, form: Form | None, origins: list[str]):
        self.engine, self.provider, self.registered = engine, provider, registered
        self.form, self.origins = form, origins

    def update(self, field: str, value: str) -> str:
        """How to change one setting of the provider: the command, or for a provider not added yet, the field."""
        if self.form is not None:
            label = self.form.labels.get(field, field)
            if self.registered:
                return f'press "{self.form.edit}" and correct {label}'
            return f"correct {label} in the form"
        if self.registered:
            return f"`storageProviders update s3 --id {self.provider.id} --{field} {value}`"
        return f"correct {field} before adding the provider"

    def fix_for(self, cid: str, reason: str) -> str:
        p, update = self.provider, self.update
        if reason == "access-denied":
            sid = {"list": "ListBucket", "generated-urls": "GenerateUrls"}.get(cid, "ReadWriteObjects")
            statement = next(s for s in policy(self.engine, p)["Statement"] if s["Sid"] == sid)
            whole = f" (all of it: `storageProviders policy --id {p.id}`)" if self.registered and not self.form else ""
            return (
                f"Allow it in the IAM policy of the user whose access key this provider uses, with the statement "
                f"{sid!r} of the least-privilege policy{whole}:\n" + json.dumps(statement, indent=2)
            )
        access_key = p.config.get("accessKey") or "KEY"
        if self.form is not None:
            secret = update("secretAccessKey", "")
        elif self.registered:
            secret = f"{update('accessKey', access_key)} asks for the secret with a hidden prompt"
        else:
            secret = "correct secretAccessKey before adding the provider"
        return {
            "unreachable": "Check the endpoint URL (scheme, host and port) and that the store is running and "
            f"reachable from this machine; to change it, {update('endpoint', 'URL')}.",
            "dns": f"Correct the host name in the endpoint URL: {update('endpoint', 'URL')}.",
            "timeout": "Check the endpoint URL and the network (a firewall that drops packets looks like this); for "
            "a slow store raise c.GradientStorage.store_timeout.",
            "invalid-credentials": f"Give an access key this store knows: {update('accessKey', 'KEY')}"
            + (
                " (it then asks for the secret with a hidden prompt)."
                if self.registered and not self.form
                else ", and its secret."
            ),
            "signature-mismatch": f"Give the secret that belongs to the access key: {secret}. If the secret is "
            f"right, try signature version v4: {update('signatureVersion', 'v4')}.",
            "no-credentials": f"Give the provider credentials: {update('accessKey', 'KEY')} (and its secret) or "
            f"{update('profile', 'NAME')}.",
            "wrong-region": f"Set the bucket's region: {update('region', 'REGION')}.",
            "no-such-bucket": f"Check the bucket name ({update('bucket', 'NAME')}) and region, or create the bucket: "
            f"`aws s3api create-bucket --bucket {p.bucket}{self.cli_where()}`.",
            "not-s3": "Give the store's base URL as the endpoint, without the bucket name or a path (e.g. "
            f"http://127.0.0.1:9000): {update('endpoint', 'URL')}.",
            "no-conditional-writes": "Use a store that honours create-only writes (If-None-Match: *), such as AWS S3, "
            "a recent MinIO or Cloudflare R2; without them concurrent commits are not safe.",
            "integrity": "Check the endpoint URL and any proxy in between.",
        }.get(reason, "")

    def cors_fix(self, existing: list[dict] | None, *, admin_only: bool = False) -> str:
        """The exact fix: our own --fix, or the rules and the command an administrator runs."""
        rules = merge_cors_rules(existing or [], self.origins)
        command = (
            f"aws s3api put-bucket-cors --bucket {self.provider.bucket}{self.cli_where()} "
            f"--cors-configuration {shlex.quote(json.dumps({'CORSRules': rules}))}"
        )
        lines = (
            []
            if admin_only
            else [
                "Apply the recommended rules, keeping the bucket's own"
                + (": " if self.registered else ", once the provider is added: ")
                + self.apply_cors_how(),
                "Or, where these credentials may not change CORS rules, an administrator sets them:",
            ]
        )
        if admin_only:
            lines.append("An administrator sets these CORS rules:")
        if existing is None:
            lines.append(
                f"(first look at the rules the bucket has, `aws s3api get-bucket-cors --bucket "
                f"{self.provider.bucket}{self.cli_where()}`, and keep them in the list)"
            )
        lines += [
            command,
            "or pastes this JSON in the bucket's CORS settings:",
            "[\n  " + ",\n  ".join(json.dumps(r) for r in rules) + "\n]",
        ]
        passing = [o for o in self.origins if o not in self.engine.settings.cors_origins]
        if passing:
            # A Jupyter server's port changes from one `jupyter lab` to the next: a rule pinned to today's port fails
            # again tomorrow. The origins that matter are the pages that reach the bucket from a browser.
            lines.append(
                f"The origins {', '.join(passing)} are only those given or running now (a Jupyter "
                "server's port changes from one start to the next). Name the browser origins that really "
                "reach the bucket once, e.g. `c.GradientStorage.cors_origins = "
                '["https://console.paperspace.com"]` in jupyter_server_config.py: every check and '
                + (f'"{self.form.apply_cors}"' if self.form else "--fix")
                + " then covers them."
            )
        return "\n".join(lines)

    def apply_cors_how(self) -> str:
        if self.form is None:
            return (
                f"`storageProviders check --id {self.provider.id if self.registered else 'ID'} "
                + " ".join(f"--origin {o}" for o in self.origins)
                + " --fix` (or the panel's Apply CORS fix button)."
            )
        if self.registered:
            return f'press "{self.form.apply_cors}".'
        return f'choose it, press "{self.form.check}", then "{self.form.apply_cors}".'

    def no_origin(self, head: str = "Not checked: no browser origin given") -> str:
        if self.form is None:
            where = "(e.g. --origin http://127.0.0.1:8888)"
        else:
            where = f"in the {self.form.origins} field (e.g. http://127.0.0.1:8888)"
        return f"{head}. Give the address you open Jupyter at {where}, or set c.GradientStorage.cors_origins."

    def cli_where(self) -> str:
        out = f" --endpoint-url {self.provider.endpoint}" if self.provider.endpoint else ""
        region = self.provider.config.get("region")
        return out + (f" --region {region}" if region else "")
