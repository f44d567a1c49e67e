"""Gradient's API resources (storageProviders, datasets, versions, tags, preSignedUrls) over the same service
layer as the REST API (server/service.py); only the routes, the JSON envelopes and the errors are Gradient's."""

from __future__ import annotations

import json
from http.client import responses

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.utils import url_path_join

from ...engine import BadInput, Engine, GradientError, NotFound
from .. import service
from ..base import GradientHandler
from .s3 import CALLS, Presigner
from .signer import signer_of


# -- JSON the CLI reads -------------------------------------------------------------------------------------------
def provider_json(provider) -> dict:
    return provider.to_json()  # the secret shows as ********


def dataset_json(engine: Engine, ds) -> dict:
    try:
        provider = provider_json(engine.registry.get(ds.storage_provider_id))
    except NotFound:
        provider = {"id": ds.storage_provider_id, "type": "s3", "name": "(deleted)", "config": {}}
    return {**ds.to_json(), "storageProvider": provider}


def version_json(v) -> dict:
    return {**v.to_json(), "tags": [{"name": t} for t in v.tags]}


def page(handler: tornado.web.RequestHandler, items: list[dict]) -> list[dict]:
    """Apply Gradient's `filter[order][]`, `filter[skip]` and `filter[limit]` query parameters."""
    for order in reversed(handler.get_query_arguments("filter[order][]")):
        field, _, direction = order.strip().partition(" ")
        items = sorted(
            items,
            key=lambda d: (d.get(field) is None, str(d.get(field) or "").lower()),
            reverse=direction.strip().upper() == "DESC",
        )
    skip = _int_arg(handler, "filter[skip]", 0)
    limit = _int_arg(handler, "filter[limit]", None)
    return items[skip:] if limit is None else items[skip : skip + limit]


def _int_arg(handler, name: str, default):
    raw = handler.get_query_argument(name, None)
    if raw is None:
        return default
    if not raw.isdigit():
        raise BadInput(f"Query parameter '{name}' must be a whole number, not {raw!r}.", reason="invalid-query")
    return int(raw)


# -- the API the CLI talks to -------------------------------------------------------------------------------------
class CompatHandler(GradientHandler):
    """Base of the Gradient API handlers: the REST API's plumbing, X-API-Key as the Jupyter token, and Gradient's
    error JSON."""

    async def prepare(self, *args, **kwargs) -> None:
        # The CLI's only credential is X-API-Key. Hand it to Jupyter's identity provider as the token it reads
        # (`Authorization: token ...`), so Jupyter alone decides who is authenticated.
        key = self.request.headers.get("X-API-Key")
        if key and "Authorization" not in self.request.headers:
            self.request.headers["Authorization"] = f"token {key}"
        await super().prepare(*args, **kwargs)

    def _user(self):
        try:
            return self.current_user
        except RuntimeError:  # jupyter_server had not asked who it is yet
            return None

    def render_error(self, status: int, exc: BaseException | None) -> None:
        """Gradient's error JSON: the CLI prints `error.message`."""
        message, reason = self.error_words(status, exc)
        name = (
            type(exc).__name__
            if isinstance(exc, GradientError)
            else responses.get(status, "Error")
            if isinstance(exc, tornado.web.HTTPError)
            else "Error"
        )
        if status == 403 and not isinstance(exc, GradientError) and self._user() is None:
            name, reason = "Forbidden", "not-authenticated"
            message = (
                "The Jupyter server refused the API key: set PAPERSPACE_API_KEY (or --apiKey) to this Jupyter "
                "server's token."
            )
        self.finish(json.dumps({"error": {"statusCode": status, "name": name, "message": message, "reason": reason}}))


class ProvidersHandler(CompatHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        providers = await self.call_local(self.engine.registry.list)
        self.reply(page(self, [provider_json(p) for p in providers]))

    @tornado.web.authenticated
    @authorized
    async def post(self):
        body = self.json_body(service.PROVIDER_FIELDS, service.PROVIDER_REQUIRED)
        provider, _ = await self.call(service.create_provider, self.engine, body)
        self.reply(provider_json(provider))


class ProviderHandler(CompatHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, provider_id):
        self.reply(provider_json(await self.call_local(self.engine.registry.get, provider_id)))

    @tornado.web.authenticated
    @authorized
    async def post(self, provider_id):  # Gradient's updates are POSTs
        body = self.json_body(service.PROVIDER_FIELDS)
        provider = await self.call(service.update_provider, self.engine, provider_id, body)
        self.reply(provider_json(provider))

    @tornado.web.authenticated
    @authorized
    async def delete(self, provider_id):
        await self.call(service.delete_provider, self.engine, provider_id, force=self.query_bool("force", False))
        self.reply(None, 204)


class DatasetsHandler(CompatHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        def listing():
            return [dataset_json(self.engine, ds) for ds in self.engine.datasets.list()]

        self.reply(page(self, await self.call(listing)))

    @tornado.web.authenticated
    @authorized
    async def post(self):
        body = self.json_body(service.DATASET_FIELDS, ("name",))

        def create():
            return dataset_json(self.engine, service.create_dataset(self.engine, body))

        self.reply(await self.call(create))


class DatasetHandler(CompatHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, dataset):
        self.reply(await self.call(lambda: dataset_json(self.engine, self.engine.datasets.get(dataset))))

    @tornado.web.authenticated
    @authorized
    async def post(self, dataset):
        body = self.json_body(service.DATASET_UPDATE_FIELDS)

        def update():
            return dataset_json(self.engine, service.update_dataset(self.engine, dataset, body))

        self.reply(await self.call(update))

    @tornado.web.authenticated
    @authorized
    async def delete(self, dataset):
        await self.call(service.delete_dataset, self.engine, dataset)
        self.reply(None, 204)


class RefHandler(CompatHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, ref):
        def resolve():
            ds, v = self.engine.datasets.resolve(ref)
            return {**dataset_json(self.engine, ds), "version": version_json(v)}

        self.reply(await self.call(resolve))


class VersionsHandler(CompatHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, dataset):
        raw = self.get_query_argument("filter[where][isCommitted]", "true").lower()
        if raw not in ("true", "false"):
            raise BadInput(f"filter[where][isCommitted] must be true or false, not {raw!r}.", reason="invalid-query")
        versions = await self.call(self.engine.datasets.list_versions, dataset, committed=raw == "true")
        self.reply(page(self, [version_json(v) for v in versions]))

    @tornado.web.authenticated
    @authorized
    async def post(self, dataset):
        body = self.json_body(service.VERSION_FIELDS)
        v = await self.call(service.create_version, self.engine, dataset, body, "Gradient API", self.person())
        self.reply(version_json(v))


class VersionHandler(CompatHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, dataset, version):
        self.reply(version_json(await self.call(self.engine.datasets.get_version, dataset, version)))

    @tornado.web.authenticated
    @authorized
    async def post(self, dataset, version):
        """Update the message and/or commit (`{"isCommitted": true}`, how the CLI commits)."""
        body = self.json_body({"message": str, "isCommitted": bool})

        # committing verifies and copies the files that arrived by presigned URL
        v = await self.call(
            service.update_version,
            self.engine,
            dataset,
            version,
            message=body.get("message"),
            commit=body.get("isCommitted"),
        )
        self.reply(version_json(v))

    @tornado.web.authenticated
    @authorized
    async def delete(self, dataset, version):
        await self.call(service.delete_version, self.engine, dataset, version)
        self.reply(None, 204)


def tag_json(tag, versions: dict) -> dict:
    v = versions.get(tag.version)
    return {"name": tag.name, "version": {"version": tag.version, "message": v.message if v else ""}}


class TagsHandler(CompatHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, dataset):
        def listing():
            datasets = self.engine.datasets
            versions = {v.version: v for v in datasets.list_versions(dataset, committed=True)}
            return [tag_json(t, versions) for t in datasets.list_tags(dataset)]

        self.reply(page(self, await self.call(listing)))


class TagHandler(CompatHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, dataset, name):
        def get():
            for tag in self.engine.datasets.list_tags(dataset):
                if tag.name == name:
                    return tag_json(tag, {tag.version: self.engine.datasets.get_version(dataset, tag.version)})
            raise NotFound(f"Dataset {dataset!r} has no tag {name!r}.", reason="unknown-tag")

        self.reply(await self.call(get))

    @tornado.web.authenticated
    @authorized
    async def put(self, dataset, name):
        body = self.json_body(service.TAG_FIELDS, ("version",))

        def set_tag():
            tag = service.set_tag(self.engine, dataset, name, body)
            return tag_json(tag, {tag.version: self.engine.datasets.get_version(dataset, tag.version)})

        self.reply(await self.call(set_tag))

    @tornado.web.authenticated
    @authorized
    async def delete(self, dataset, name):
        await self.call(service.delete_tag, self.engine, dataset, name)
        self.reply(None, 204)


# -- presigned URLs ------------------------------------------------------------------------------------------------
class PresignHandler(CompatHandler):
    """`POST datasets/{id}/versions/{v}/s3/preSignedUrls` `{"calls": [{"method", "params"}]}` -> `[{"url"}, ...]`."""

    @tornado.web.authenticated
    @authorized
    async def post(self, dataset, version):
        body = self.json_body({"calls": list, "datasetId": str, "version": str}, ("calls",))
        if body.get("version", version) != version:
            raise BadInput(f"The body names version {body['version']!r} but the URL names {version!r}.")
        calls = body["calls"]
        if not calls or len(calls) > 1000:
            raise BadInput('Give 1 to 1000 calls, each {"method": ..., "params": {...}}.')
        for c in calls:
            if not isinstance(c, dict) or not isinstance(c.get("params", {}), dict) or c.get("method") not in CALLS:
                raise BadInput(
                    f"Unknown call {json.dumps(c)[:100]}: methods are {', '.join(CALLS)}, params an object.",
                    reason="unknown-call",
                )
            unknown = sorted(set(c.get("params") or {}) - CALLS[c["method"]][0])
            if unknown:
                raise BadInput(
                    f"{c['method']} does not take {', '.join(unknown)}: it takes "
                    f"{', '.join(sorted(CALLS[c['method']][0]))}.",
                    reason="unknown-param",
                )
        user = self.person()
        base = f"{self.request.protocol}://{self.request.host}" + url_path_join(self.base_url, "gradient/compat/s3")
        signer = signer_of(self.settings, self.engine)
        self.reply(await self.call(Presigner(self.engine, signer, base, user).all, dataset, version, body, calls))


class UnknownHandler(CompatHandler):
    """Anything else under gradient/compat/: a 404 the CLI can print."""

    def unknown(self, rest: str):
        raise NotFound(
            f"gradient/compat/{rest} is not part of the Gradient API this server offers "
            "(storageProviders and datasets).",
            reason="unknown-route",
        )

    @tornado.web.authenticated
    @authorized
    async def get(self, rest):
        self.unknown(rest)

    post = put = delete = get
