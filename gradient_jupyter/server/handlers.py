"""The REST API under <base_url>gradient/api/ (described by openapi.json): thin front ends over the engine.

Every handler parses its input, runs the engine in the extension's thread pool (never on the event loop) and renders
JSON; what both server APIs share (errors, uploads, verified downloads) is in base.py.
"""

from __future__ import annotations

from functools import partial
from importlib.resources import files as package_files
from urllib.parse import quote as url_quote

import tornado.web
from jupyter_server.auth.decorator import authorized

from ..engine import NotFound
from ..engine.ids import check_file_path
from ..engine.models import Dataset
from . import service
from .base import AUTH_RESOURCE, GradientHandler, StreamingUpload

__all__ = ["AUTH_RESOURCE", "GradientHandler", "default_handlers"]

API = "/gradient/api"


# -- storage providers -----------------------------------------------------------------------------------------
class ProvidersHandler(GradientHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        providers, warnings = await self.call_local(service.list_providers, self.engine)
        self.reply(
            {"storageProviders": [p.to_json() for p in providers], **({"warnings": warnings} if warnings else {})}
        )

    @tornado.web.authenticated
    @authorized
    async def post(self):
        body = self.json_body(service.PROVIDER_FIELDS, service.PROVIDER_REQUIRED)
        provider, warning = await self.call(service.create_provider, self.engine, body)
        self.reply({**provider.to_json(), **({"warnings": [warning]} if warning else {})}, 201)


class ProviderHandler(GradientHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, provider_id):
        provider = await self.call_local(self.engine.registry.get, provider_id)
        self.reply(provider.to_json())

    @tornado.web.authenticated
    @authorized
    async def patch(self, provider_id):
        body = self.json_body(service.PROVIDER_FIELDS)
        provider = await self.call(service.update_provider, self.engine, provider_id, body)
        self.reply(provider.to_json())

    @tornado.web.authenticated
    @authorized
    async def delete(self, provider_id):
        await self.call(service.delete_provider, self.engine, provider_id, force=self.query_bool("force", False))
        self.reply(None, 204)


class UtilizationHandler(GradientHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        self.reply(await self.call(self.engine.utilization))


class CheckHandler(GradientHandler):
    """The bucket-setup report (README "Check a bucket's setup") for this server's origin, or the origins given."""

    @tornado.web.authenticated
    @authorized
    async def post(self, provider_id):
        from ..engine import doctor

        origins = self.origins()
        provider = await self.call(self.engine.registry.get, provider_id)
        report = await self.call(doctor.check, self.engine, provider, origins=origins)
        self.reply(report.to_json())

    def origins(self) -> list:
        """The origins in the body (the doctor validates them), else this server's own."""
        return self.json_body({"origins": list}).get("origins") or [self.own_origin()]


class CorsHandler(CheckHandler):
    """Apply the CORS rules the check recommends; answers the new report."""

    @tornado.web.authenticated
    @authorized
    async def post(self, provider_id):
        from ..engine import doctor

        origins = self.origins()
        provider = await self.call(self.engine.registry.get, provider_id)
        report = await self.call(doctor.apply_cors, self.engine, provider, origins)
        self.reply(report.to_json())


class PolicyHandler(GradientHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, provider_id):
        from ..engine import doctor

        team_only = self.query_bool("teamOnly", False)
        provider = await self.call(self.engine.registry.get, provider_id)
        self.reply(await self.call(doctor.policy, self.engine, provider, team_only=team_only))


# -- datasets ----------------------------------------------------------------------------------------------------
class DatasetsHandler(GradientHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        skipped: list = []
        datasets = await self.call(self.engine.datasets.list, skipped)
        self.reply(
            {
                "datasets": [d.to_json() for d in datasets],
                **({"warnings": [w.to_json() for w in skipped]} if skipped else {}),
            }
        )

    @tornado.web.authenticated
    @authorized
    async def post(self):
        body = self.json_body(service.DATASET_FIELDS, required=("name",))
        ds = await self.call(service.create_dataset, self.engine, body)
        self.reply(ds.to_json(), 201)


class DatasetHandler(GradientHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, dataset):
        self.reply((await self.call(self.engine.datasets.get, dataset)).to_json())

    @tornado.web.authenticated
    @authorized
    async def patch(self, dataset):
        body = self.json_body(service.DATASET_UPDATE_FIELDS)
        ds = await self.call(service.update_dataset, self.engine, dataset, body)
        self.reply(ds.to_json())

    @tornado.web.authenticated
    @authorized
    async def delete(self, dataset):
        await self.call(service.delete_dataset, self.engine, dataset)
        self.reply(None, 204)


class RefHandler(GradientHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, ref):
        ds, version = await self.call(self.engine.datasets.resolve, ref)
        self.reply({"dataset": ds.to_json(), "version": version.to_json()})


class VersionsHandler(GradientHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, dataset):
        committed = self.query_bool("isCommitted", True, allow_all=True)
        versions = await self.call(self.engine.datasets.list_versions, dataset, committed=committed)
        self.reply({"versions": [v.to_json() for v in versions]})

    @tornado.web.authenticated
    @authorized
    async def post(self, dataset):
        body = self.json_body(service.VERSION_FIELDS)
        version = await self.call(service.create_version, self.engine, dataset, body, "REST API", self.person())
        self.reply(version.to_json(), 201)


class DraftsHandler(GradientHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, dataset):
        drafts = await self.call(self.engine.datasets.drafts, dataset)
        self.reply({"drafts": [d.to_json() for d in drafts]})


class VersionHandler(GradientHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, dataset, version):
        self.reply((await self.call(self.engine.datasets.get_version, dataset, version)).to_json())

    @tornado.web.authenticated
    @authorized
    async def patch(self, dataset, version):
        body = self.json_body(service.VERSION_FIELDS, required=("message",))
        updated = await self.call(service.update_version, self.engine, dataset, version, message=body["message"])
        self.reply(updated.to_json())

    @tornado.web.authenticated
    @authorized
    async def delete(self, dataset, version):
        await self.call(service.delete_version, self.engine, dataset, version)
        self.reply(None, 204)


class CommitHandler(GradientHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, dataset, version):
        self.json_body({})
        self.reply((await self.call(service.update_version, self.engine, dataset, version, commit=True)).to_json())


class FilesHandler(GradientHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, dataset, version):
        prefix = self.get_query_argument("path", "")
        files = await self.call(self.engine.datasets.list_files, dataset, version, prefix=prefix)
        self.reply({"files": [f.to_json() for f in files]})


class DiffHandler(GradientHandler):
    """What changed from this version to `?to=REF` (a ref of the same dataset), or since its parent without it."""

    @tornado.web.authenticated
    @authorized
    async def get(self, dataset, version):
        from ..engine import history

        to = self.get_query_argument("to", None)
        include, exclude = self.get_query_arguments("include"), self.get_query_arguments("exclude")
        found = await self.call(
            history.diff, self.engine, f"{dataset}:{version}", to or None, include=include, exclude=exclude
        )
        self.reply(found.to_json())


class TagsHandler(GradientHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, dataset):
        self.reply({"tags": [t.to_json() for t in await self.call(self.engine.datasets.list_tags, dataset)]})


class TagHandler(GradientHandler):
    @tornado.web.authenticated
    @authorized
    async def put(self, dataset, tag):
        body = self.json_body(service.TAG_FIELDS, required=("version",))
        self.reply((await self.call(service.set_tag, self.engine, dataset, tag, body)).to_json())

    @tornado.web.authenticated
    @authorized
    async def delete(self, dataset, tag):
        await self.call(service.delete_tag, self.engine, dataset, tag)
        self.reply(None, 204)


# -- the API's own description and unknown paths ---------------------------------------------------------------
class OpenAPIHandler(GradientHandler):
    _document: bytes | None = None

    @tornado.web.authenticated
    @authorized
    async def get(self):
        if OpenAPIHandler._document is None:
            OpenAPIHandler._document = await self.call(package_files(__package__).joinpath("openapi.json").read_bytes)
        self.finish(OpenAPIHandler._document)


class UnknownHandler(GradientHandler):
    """Any other path under gradient/api/: a JSON 404 instead of an HTML page."""

    @tornado.web.authenticated
    @authorized
    def get(self, rest):
        raise NotFound(
            f"Unknown API path 'gradient/api/{rest}': the routes are in gradient/api/openapi.json.",
            reason="unknown-path",
        )

    post = put = patch = delete = get


# -- files ----------------------------------------------------------------------------------------------------------
@tornado.web.stream_request_body
class FileHandler(StreamingUpload, GradientHandler):
    """One file of a version: upload (streamed to a spool file, then to the store), verified download, delete."""

    dataset: Dataset | None = None  # found by check_upload, before the body is read

    async def check_upload(self) -> None:
        check_file_path(self.path_kwargs["path"])
        # a read-only provider refuses before the body is read (Datasets.writable)
        datasets = self.engine.datasets
        self.dataset = await self.call(datasets.get, self.path_kwargs["dataset"])
        await self.call(datasets.writable, self.dataset, "add files")

    @tornado.web.authenticated
    @authorized
    async def put(self, dataset, version, path):
        self.check_refused()  # a bad path is a 400 whether or not the dataset exists
        ds = self.dataset
        assert ds is not None  # check_upload found it before the body was read, or the refusal was raised above
        entry = await self.spooled(partial(self.engine.datasets.put_file, ds, version, path), ds.storage_provider_id)
        self.reply(entry.to_json())

    @tornado.web.authenticated
    @authorized
    async def delete(self, dataset, version, path):
        await self.call(self.engine.datasets.delete_file, dataset, version, path)
        self.reply(None, 204)

    @tornado.web.authenticated
    @authorized
    async def get(self, dataset, version, path):
        ds = await self.call(self.engine.datasets.get, dataset)
        # the manifest and the bytes come from the dataset's bucket: on its provider's pool, not the API's threads
        entry, chunks = await self.transfer(ds.storage_provider_id, self.engine.datasets.read_file, ds, version, path)
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", entry.size)
        self.set_header("Content-Disposition", "attachment; filename*=UTF-8''" + url_quote(path.rsplit("/", 1)[-1]))
        if entry.sha256:
            self.set_header("X-Gradient-SHA256", entry.sha256)
        if await self.send_verified(chunks, ds.storage_provider_id):
            self.finish(set_content_type="application/octet-stream")


# -- routes -----------------------------------------------------------------------------------------------------
_ID = r"(?P<{}>[^/]+)"
SP = f"{API}/storage-providers/{_ID.format('provider_id')}"
DS = f"{API}/datasets/{_ID.format('dataset')}"
V = f"{DS}/versions/{_ID.format('version')}"

default_handlers = [
    (f"{API}/storage-providers", ProvidersHandler),
    (f"{API}/storage-providers/utilization", UtilizationHandler),
    (SP, ProviderHandler),
    (f"{SP}/check", CheckHandler),
    (f"{SP}/cors", CorsHandler),
    (f"{SP}/policy", PolicyHandler),
    (f"{API}/datasets", DatasetsHandler),
    (f"{API}/datasets/ref/{_ID.format('ref')}", RefHandler),
    (DS, DatasetHandler),
    (f"{DS}/versions", VersionsHandler),
    (f"{DS}/drafts", DraftsHandler),
    (V, VersionHandler),
    (f"{V}/commit", CommitHandler),
    (f"{V}/files", FilesHandler),
    (f"{V}/diff", DiffHandler),
    (f"{V}/files/(?P<path>.+)", FileHandler),
    (f"{DS}/tags", TagsHandler),
    (f"{DS}/tags/{_ID.format('tag')}", TagHandler),
    (f"{API}/openapi.json", OpenAPIHandler),
    (f"{API}/(?P<rest>.*)", UnknownHandler),
]
