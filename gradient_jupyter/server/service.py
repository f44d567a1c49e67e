"""Requests turned into engine calls, once for both server APIs (the REST API in handlers.py and Gradient's compat
API in compat/). A handler parses the body against the fields named here (`GradientHandler.json_body`), runs
one of these functions on the extension's threads, and renders the engine's answer in its own envelope.

Everything here runs off the event loop and may block on a store.
"""

from __future__ import annotations

from ..engine import BadInput, Engine, Immutable, history
from ..engine.models import Dataset, Tag, Version
from ..engine.providers import Provider

PROVIDER_FIELDS = {"name": str, "type": str, "config": dict, "isTeamDefault": bool}
PROVIDER_REQUIRED = ("name", "config")
DATASET_FIELDS = {"name": str, "storageProviderId": str, "description": str}
DATASET_UPDATE_FIELDS = {"name": str, "description": str}
VERSION_FIELDS = {"message": str}
TAG_FIELDS = {"version": str}


# -- storage providers ---------------------------------------------------------------------------------------------
def list_providers(engine: Engine) -> tuple[list[Provider], list[str]]:
    """The providers and the warnings every listing shows with them (a broken team file, shadowed names)."""
    return engine.registry.list(), engine.registry.warnings()


def create_provider(engine: Engine, body: dict) -> tuple[Provider, str | None]:
    """A new provider, and a warning about its bucket when one is worth showing (not an error: it is saved)."""
    provider = engine.registry.create(
        body["name"], body["config"], is_team_default=body.get("isTeamDefault", False), type=body.get("type", "s3")
    )
    return provider, engine.registry.bucket_warning(provider)


def update_provider(engine: Engine, provider_id: str, body: dict) -> Provider:
    if body.get("type", "s3") != "s3":
        raise BadInput(f"Unknown storage provider type {body['type']!r}: the only type is 's3'.")
    return engine.registry.update(
        provider_id, name=body.get("name"), config=body.get("config"), is_team_default=body.get("isTeamDefault")
    )


def delete_provider(engine: Engine, provider_id: str, *, force: bool) -> None:
    engine.delete_provider(provider_id, force=force)


# -- datasets ------------------------------------------------------------------------------------------------------
def create_dataset(engine: Engine, body: dict) -> Dataset:
    return engine.datasets.create(
        body["name"], provider=body.get("storageProviderId"), description=body.get("description", "")
    )


def update_dataset(engine: Engine, dataset: str, body: dict) -> Dataset:
    return engine.datasets.update(dataset, name=body.get("name"), description=body.get("description"))


def delete_dataset(engine: Engine, dataset: str) -> None:
    engine.datasets.delete(dataset)


# -- versions ------------------------------------------------------------------------------------------------------
def create_version(engine: Engine, dataset: str, body: dict, api: str, user: str | None) -> Version:
    """A new uncommitted version; its `createdBy` names the person who asked (`user`: jupyter_server's identity of
    the request, the hub user under JupyterHub) and the API it came through (`tool`: "... (REST API)")."""
    by = history.created_by()
    by["tool"] = f"{by['tool']} ({api})"
    if user:
        by["user"] = user
    return engine.datasets.create_version(dataset, message=body.get("message", ""), created_by=by)


def update_version(
    engine: Engine, dataset: str, version: str, *, message: str | None = None, commit: bool | None = None
) -> Version:
    """Change the message and/or commit (committing a committed version answers it unchanged; a committed version
    cannot be uncommitted)."""
    datasets = engine.datasets
    ds = datasets.get(dataset)
    current = datasets.get_version(ds, version)
    if commit is False and current.is_committed:
        raise Immutable(f"Version {current.ref} is committed and cannot be uncommitted: create a new version.")
    if message is not None:
        current = datasets.update_version(ds, version, message=message)
    if commit:
        current = datasets.commit(ds, version)
    return current


def delete_version(engine: Engine, dataset: str, version: str) -> None:
    engine.datasets.delete_version(dataset, version)


# -- tags ----------------------------------------------------------------------------------------------------------
def set_tag(engine: Engine, dataset: str, name: str, body: dict) -> Tag:
    return engine.datasets.set_tag(dataset, name, body["version"])


def delete_tag(engine: Engine, dataset: str, name: str) -> None:
    engine.datasets.delete_tag(dataset, name)
