"""What the doctor recommends for a bucket: the least-privilege IAM policy and the CORS rules browsers need."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from ..errors import BadInput
from ..ids import check_origin
from ..providers import Provider

if TYPE_CHECKING:
    from ..core import Engine

CORS_RULE_ID = "gradient-jupyter"
CORS_METHODS = ("GET", "PUT")


def policy(engine: Engine, provider: Provider | str, *, team_only: bool = False) -> dict:
    """The least-privilege IAM policy for the provider's bucket; `team_only` narrows it to this team's folder."""
    provider = engine.registry.get(provider) if isinstance(provider, str) else provider
    if provider.embedded:
        raise BadInput(
            "Gradient Managed is embedded in this installation: it has no bucket and needs no IAM policy.",
            reason="embedded-store",
        )
    return seed_policy(
        provider.bucket, team_id=engine.team_id if team_only else None, region=provider.config.get("region")
    )


def seed_policy(bucket: str, *, team_id: str | None = None, region: str | None = None) -> dict:
    """The seed document's policy: sts:GetFederationToken, s3:ListBucket on the bucket, s3:* on its objects."""
    bucket_arn = f"arn:{_partition(region)}:s3:::{bucket}"
    listing: dict[str, object] = {
        "Sid": "ListBucket",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": bucket_arn,
    }
    if team_id:
        listing["Condition"] = {"StringLike": {"s3:prefix": [team_id, f"{team_id}/*"]}}
    objects = f"{bucket_arn}/{team_id}/*" if team_id else f"{bucket_arn}/*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "GenerateUrls", "Effect": "Allow", "Action": "sts:GetFederationToken", "Resource": "*"},
            listing,
            {"Sid": "ReadWriteObjects", "Effect": "Allow", "Action": "s3:*", "Resource": objects},
        ],
    }


def _partition(region: str | None) -> str:
    region = region or ""
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


def cors_rules(origins) -> list[dict]:
    """The CORS rules gradient-jupyter recommends: GET and PUT from the given browser origins."""
    return [
        {
            "ID": CORS_RULE_ID,
            "AllowedHeaders": ["*"],
            "AllowedMethods": list(CORS_METHODS),
            "AllowedOrigins": [check_origin(o) for o in origins],
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": 3000,
        }
    ]


def merge_cors_rules(existing: list[dict], origins) -> list[dict]:
    """The bucket's rules plus what `origins` still lack; existing rules are kept as they are (ours may grow)."""
    rules = json.loads(json.dumps(existing))
    missing = [o for o, gaps in cors_gaps(rules, origins).items() if gaps]
    if not missing:
        return rules
    ours = next((r for r in rules if r.get("ID") == CORS_RULE_ID), None)
    if ours is None:
        return rules + cors_rules(missing)
    ours["AllowedOrigins"] = list(dict.fromkeys([*ours.get("AllowedOrigins", []), *missing]))
    ours["AllowedMethods"] = list(dict.fromkeys([*ours.get("AllowedMethods", []), *CORS_METHODS]))
    return rules


def cors_gaps(rules: list[dict], origins) -> dict[str, list[str]]:
    """For each origin, the methods of GET and PUT that no rule allows from it."""
    gaps = {}
    for origin in origins:
        allowed = set()
        for rule in rules:
            if any(_origin_matches(pattern, origin) for pattern in rule.get("AllowedOrigins", [])):
                allowed |= {m.upper() for m in rule.get("AllowedMethods", [])}
        gaps[origin] = [m for m in CORS_METHODS if m not in allowed]
    return gaps


def _origin_matches(pattern: str, origin: str) -> bool:
    # S3 allows one '*' wildcard in an AllowedOrigin.
    regex = ".*".join(re.escape(part) for part in pattern.lower().split("*"))
    return re.fullmatch(regex, origin.lower()) is not None


def resolve_origins(engine: Engine, origins) -> list[str]:
    """The origins to check: those given plus c.GradientStorage.cors_origins, validated, without duplicates."""
    if origins is None:
        origins = []
    if not isinstance(origins, (list, tuple)) or not all(isinstance(o, str) for o in origins):
        raise BadInput(
            "'origins' must be a list of browser origins such as [\"http://127.0.0.1:8888\"].", reason="invalid-origin"
        )
    return list(dict.fromkeys(check_origin(o) for o in [*origins, *engine.settings.cors_origins]))
