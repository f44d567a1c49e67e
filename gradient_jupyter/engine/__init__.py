"""The engine: providers, stores, datasets and the bucket doctor. Imports nothing from Jupyter."""

from .core import Engine
from .errors import (
    BadInput,
    Conflict,
    GradientError,
    Immutable,
    IntegrityError,
    LocalChanges,
    NotFound,
    QuotaExceeded,
    StoreError,
    TagInUse,
)
from .providers import MASK, Provider, ProviderRegistry
from .settings import GradientStorage
from .stores import LocalStore, S3Store, Store

__all__ = [
    "Engine",
    "GradientStorage",
    "Provider",
    "ProviderRegistry",
    "Store",
    "LocalStore",
    "S3Store",
    "MASK",
    "GradientError",
    "BadInput",
    "NotFound",
    "Conflict",
    "Immutable",
    "QuotaExceeded",
    "StoreError",
    "IntegrityError",
    "TagInUse",
    "LocalChanges",
]
