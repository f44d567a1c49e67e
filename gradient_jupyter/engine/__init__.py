"""The engine: providers, stores, datasets and the bucket doctor. Imports nothing from Jupyter.

The errors are imported with the package; the rest on first use (PEP 562 `__getattr__`), so that a command which
needs only part of the engine, such as `gradient-jupyter load`, does not pay for importing all of it."""

from typing import TYPE_CHECKING

from .errors import (
    BadInput,
    Conflict,
    Forbidden,
    GradientError,
    Immutable,
    IntegrityError,
    Interrupted,
    LocalChanges,
    NotFound,
    QuotaExceeded,
    StoreError,
    TagInUse,
)

if TYPE_CHECKING:
    from .core import Engine
    from .providers import MASK, Provider, ProviderRegistry
    from .settings import GradientStorage
    from .stores import LocalStore, S3Store, Store

_LAZY = {
    "Engine": "core",
    "GradientStorage": "settings",
    "Provider": "providers",
    "ProviderRegistry": "providers",
    "MASK": "providers",
    "Store": "stores",
    "LocalStore": "stores",
    "S3Store": "stores",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)


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
    "Forbidden",
    "Immutable",
    "QuotaExceeded",
    "StoreError",
    "IntegrityError",
    "Interrupted",
    "TagInUse",
    "LocalChanges",
]
