"""A storage provider (a named S3-compatible bucket with credentials): its config's rules, and its JSON with the
secret masked."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import BadInput, Forbidden
from ..ids import check_bucket_name, check_endpoint, check_provider_name
from ..team import SECRET_FIELDS, resolve_secret, team_provider_id

MASK = "********"
MANAGED_NAME = "Gradient Managed"
CONFIG_FIELDS = ("bucket", "accessKey", "secretAccessKey", "endpoint", "region", "signatureVersion", "profile")
SIGNATURE_VERSIONS = ("v4", "s3v4", "v2", "s3")


@dataclass(frozen=True)
class Provider:
    """A storage provider. The secret lives in `config` but never leaves through repr, str or to_json."""

    id: str
    name: str
    config: dict = field(repr=False)
    is_team_default: bool = False
    is_gradient_managed: bool = False
    dt_created: str = ""
    dt_modified: str = ""
    type: str = "s3"
    source: str = "user"  # "team": from the team file (engine/team.py), read-only to users
    read_only: bool = False  # a team provider users may read but not write
    shadowed: bool = False  # a user provider whose name a team provider takes
    secrets: dict = field(default_factory=dict, repr=False)  # a team provider's secret references
    team_file: str = ""  # where a team provider comes from

    def __repr__(self) -> str:
        return f"Provider(id={self.id!r}, name={self.name!r}, bucket={self.bucket!r}, endpoint={self.endpoint!r})"

    __str__ = __repr__

    @property
    def bucket(self) -> str:
        return self.config.get("bucket") or ""

    @property
    def endpoint(self) -> str | None:
        return self.config.get("endpoint") or None

    @property
    def embedded(self) -> bool:
        return self.is_gradient_managed and not self.endpoint

    @property
    def editable(self) -> bool:
        return self.source == "user"

    def store_config(self) -> dict:
        """The config a store is made from: a team provider's secrets are read now, from where the team file
        says (so a rotated secret is used at once); a user provider's config as it is."""
        if not self.secrets:
            return self.config
        where = "Gradient Managed" if self.is_gradient_managed else f"provider {self.name!r}"
        return {**self.config, **{k: resolve_secret(ref, f"{where} {k}") for k, ref in self.secrets.items()}}

    def public_config(self) -> dict:
        cfg = {k: self.config.get(k) for k in CONFIG_FIELDS}
        for key in SECRET_FIELDS if self.secrets else ():  # an administrator's key: not shown either
            cfg[key] = MASK if key in self.secrets else None
        if cfg["secretAccessKey"]:
            cfg["secretAccessKey"] = MASK
        return cfg

    def to_json(self) -> dict:
        """The provider as the REST API shows it; the secret shows as ********."""
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "config": self.public_config(),
            "isTeamDefault": self.is_team_default,
            "isGradientManaged": self.is_gradient_managed,
            "dtCreated": self.dt_created,
            "dtModified": self.dt_modified,
            "source": self.source,
            "editable": self.editable,
            "readOnly": self.read_only,
            "shadowed": self.shadowed,
        }

    def check_writable(self, what: str = "write") -> None:
        """Refuse (403 `read-only-provider`) a write into a read-only team provider, before anything is sent."""
        if self.read_only:
            raise Forbidden(
                f"Storage provider {self.name!r} is read-only (the team file {self.team_file} says so): you can "
                f"load, read and mount its datasets, but not {what}. Save into another provider (--provider).",
                reason="read-only-provider",
            )


GIVEN_FIELDS = ("name", "bucket", "endpoint", "region", "signatureVersion", "accessKey", "secretAccessKey", "profile")


def given_provider(spec: dict, team_id: str) -> Provider:
    """A provider given in gradient://'s `storage_options={"provider": {...}}` (SPEC 9.1): the team file's provider
    fields (GIVEN_FIELDS); the keys may be literal or, as in the team file, `{"env": VAR}` / `{"file": PATH}`. Its
    id is the one the team file would give that name, so dataset records agree."""
    if not isinstance(spec, dict):
        raise BadInput(
            f"storage_options 'provider' must be a provider's name or an object with {', '.join(GIVEN_FIELDS)}."
        )
    unknown = sorted(set(spec) - set(GIVEN_FIELDS))
    if unknown:
        raise BadInput(
            f"Unknown provider field(s) {', '.join(unknown)} in storage_options: use {', '.join(GIVEN_FIELDS)}."
        )
    name = check_provider_name(spec.get("name"))
    secrets = {k: v for k, v in spec.items() if k in SECRET_FIELDS and isinstance(v, dict)}
    literal = {k: v for k, v in spec.items() if k != "name" and k not in secrets}
    if secrets:
        literal.update({k: "reference" for k in secrets})  # checked as if given; read when a store is made
    config = clean_config(literal)
    for key in secrets:
        config.pop(key, None)
    return Provider(id=team_provider_id(team_id, name), name=name, config=config, source="given", secrets=secrets)


def clean_config(config: dict, *, partial: bool = False) -> dict:
    """Validate a provider config (REST/CLI field names); returns only the known fields, stripped."""
    if not isinstance(config, dict):
        raise BadInput("'config' must be an object with bucket, accessKey, secretAccessKey, endpoint, region.")
    unknown = sorted(set(config) - set(CONFIG_FIELDS))
    if unknown:
        raise BadInput(f"Unknown config field(s): {', '.join(unknown)}. Known: {', '.join(CONFIG_FIELDS)}.")
    out: dict[str, str | None] = {}
    for key, value in config.items():
        if value is None or value == "" and key not in ("secretAccessKey", "accessKey"):
            out[key] = None
            continue
        if not isinstance(value, str):
            raise BadInput(f"Config field '{key}' must be a string.")
        out[key] = value.strip()
    if not partial or "bucket" in out:
        check_bucket_name(out.get("bucket"))
    if out.get("endpoint"):
        out["endpoint"] = check_endpoint(out["endpoint"])
    sig = out.get("signatureVersion")
    if sig and sig not in SIGNATURE_VERSIONS:
        raise BadInput(
            f"Unknown signatureVersion {sig!r}: use one of {', '.join(SIGNATURE_VERSIONS)}.",
            reason="invalid-signature-version",
        )
    _check_credentials(out, partial)
    return out


def _check_credentials(config: dict[str, str | None], partial: bool) -> None:
    """A key with its secret, or a profile, or neither (the environment's): never half of a pair, nor both."""
    if "accessKey" in config or "secretAccessKey" in config:
        key, secret = config.get("accessKey"), config.get("secretAccessKey")
        if key == "" or (key and secret is not None and not secret):
            raise BadInput(
                "The secret access key is empty: give the secret that belongs to the access key.", reason="empty-secret"
            )
        if secret and not key and not partial:
            raise BadInput("A secret access key needs its access key (accessKey).")
    if config.get("profile") and (config.get("accessKey") or config.get("secretAccessKey")):
        raise BadInput(
            "Give either an AWS profile or an access key with its secret, not both.", reason="profile-and-keys"
        )
