"""Storage providers: named S3-compatible buckets with credentials (README "Storage providers from a shell").

model.py: a Provider, its config's rules (`clean_config`, `given_provider`) and its JSON with the secret masked;
team_providers.py: the team file's providers as Providers, joined with the user's in every listing; registry.py:
the ProviderRegistry, kept in SQLite in the data home.
"""

from __future__ import annotations

from .model import (
    CONFIG_FIELDS,
    GIVEN_FIELDS,
    MANAGED_NAME,
    MASK,
    SIGNATURE_VERSIONS,
    Provider,
    clean_config,
    given_provider,
)
from .registry import ProviderRegistry, now_iso, private_dir

__all__ = [
    "CONFIG_FIELDS",
    "GIVEN_FIELDS",
    "MANAGED_NAME",
    "MASK",
    "SIGNATURE_VERSIONS",
    "Provider",
    "ProviderRegistry",
    "clean_config",
    "given_provider",
    "now_iso",
    "private_dir",
]
