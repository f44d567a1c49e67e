"""REST handlers of SPEC section 5: thin doors over the engine, under <base_url>gradient/api/.

Every handler parses its input, runs the engine in the extension's thread pool (never on the event loop) and renders
JSON. Engine errors become HTTP in one place: `GradientHandler.write_error`.
"""
from __future__ import annotations

import asyncio
import json
import os
import tempfile
from functools import partial
from http.client import responses
from importlib.resources import files as package_files
from urllib.parse import quote as url_quote

import tornado.web
from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado.iostream import StreamClosedError

from ..engine import BadInput, Engine, GradientError, NotFound
from ..engine.ids import check_file_path

AUTH_RESOURCE = "gradient"
API = "/gradient/api"
SPOOL_CHUNK = 1024 * 1024  # upload bytes gathered in memory before they go to the spool file
MAX_JSON = 256 * 1024  # far above any real request body; larger ones are refused before parsing
MAX_UPLOAD = 5 * 1024**4  # S3's largest object; the server's max_body_size would stop big uploads otherwise
_TYPE_NAMES = {str: "a string", bool: "true or false", dict: "an object", list: "an array"}


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    return next(name for kind, name in _TYPE_NAMES.items() if isinstance(value, kind))


class GradientHandler(APIHandler):
    """Base of every gradient API handler: the engine, threads, JSON in and out, and the error mapping."""

    auth_resource = AUTH_RESOURCE

    @property
    def engine(self) -> Engine:
        return self.settings["gradient_engine"]

    async def call(self, fn, *args, **kwargs):
        """Run a blocking engine call in the extension's thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.settings["gradient_executor"], partial(fn, *args, **kwargs))

    async def call_local(self, fn, *args, **kwargs):
        """Run a call that touches only the data home (the registry), never a store, in a pool of its own: it
        answers at once even while every store thread waits on a bucket that does not answer."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.settings["gradient_local_executor"], partial(fn, *args, **kwargs))

    def reply(self, data, status: int = 200) -> None:
        self.set_status(status)
        if status == 204:
            self.finish()
        else:
            self.finish(json.dumps(data))

    def json_body(self, fields: dict[str, type], required: tuple[str, ...] = ()) -> dict:
        """The request body as a JSON object with only `fields` (name -> type); null means not given."""
        raw = self.request.body or b"{}"
        if len(raw) > MAX_JSON:
            raise BadInput(f"The request body is larger than {MAX_JSON // 1024} KiB: no request of this API needs "
                           "that much JSON.", reason="invalid-json")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise BadInput("The request body is not valid JSON (or nested too deeply): send a JSON object.",
                           reason="invalid-json") from None
        if not isinstance(data, dict):
            raise BadInput("The request body must be a JSON object.", reason="invalid-json")
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise BadInput(f"Unknown field(s): {', '.join(unknown)}. This endpoint takes: {', '.join(fields)}.",
                           reason="unknown-field")
        data = {k: v for k, v in data.items() if v is not None}
        missing = [f for f in required if f not in data]
        if missing:
            raise BadInput(f"Missing field(s): {', '.join(missing)}.", reason="missing-field")
        for name, value in data.items():
            kind = fields[name]
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                # Name the type, never echo the value: it could be a secret in the wrong place.
                raise BadInput(f"Field '{name}' must be {_TYPE_NAMES[kind]}, not {_json_type(value)}.",
                               reason="wrong-type")
        return data

    def query_bool(self, name: str, default: bool | None, *, allow_all: bool = False) -> bool | None:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        value = raw.strip().lower()
        if value in ("true", "1", "yes"):
            return True
        if value in ("false", "0", "no"):
            return False
        if allow_all and value == "all":
            return None
        choices = "true, false or all" if allow_all else "true or false"
        raise BadInput(f"Query parameter '{name}' must be {choices}, not {raw!r}.", reason="invalid-query")

    def own_origin(self) -> str:
        """This Jupyter server's origin as the browser sees it, the default origin the bucket doctor checks."""
        return f"{self.request.protocol}://{self.request.host}"

    # -- the one mapping from errors to HTTP -------------------------------------------------------------------
    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, GradientError):
            self.set_status(exc.status)
            body = exc.to_json()
        elif isinstance(exc, tornado.web.HTTPError):
            phrase = responses.get(status_code, "Error")
            body = {"message": exc.get_message() or phrase, "reason": phrase.lower().replace(" ", "-")}
        else:
            body = {"message": "Unexpected server error; the Jupyter server log has the details.",
                    "reason": "server-error"}
        self.finish(json.dumps(body))

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, GradientError):  # expected refusals: a line, not a traceback
            self.log.warning("%s %s -> %s %s", self.request.method, self.request.path, value.status, value.reason)
        else:
            super().log_exception(typ, value, tb)


# -- storage providers -----------------------------------------------------------------------------------------
PROVIDER_FIELDS = {"name": str, "type": str, "config": dict, "isTeamDefault": bool}


class ProvidersHandler(GradientHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        providers = await self.call_local(self.engine.registry.list)
        self.reply({"storageProviders": [p.to_json() for p in providers]})

    @tornado.web.authenticated
    @authorized
    async def post(self):
        body = self.json_body(PROVIDER_FIELDS, required=("name", "config"))
        provider = await self.call(self.engine.registry.create, body["name"], body["config"],
                                   is_team_default=body.get("isTeamDefault", False), type=body.get("type", "s3"))
        warning = await self.call_local(self.engine.registry.bucket_warning, provider)
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
        body = self.json_body(PROVIDER_FIELDS)
        if body.get("type", "s3") != "s3":
            raise BadInput(f"Unknown storage provider type {body['type']!r}: the only type is 's3'.")
        provider = await self.call(self.engine.registry.update, provider_id, name=body.get("name"),
                                   config=body.get("config"), is_team_default=body.get("isTeamDefault"))
        self.reply(provider.to_json())

    @tornado.web.authenticated
    @authorized
    async def delete(self, provider_id):
        await self.call(self.engine.delete_provider, provider_id, force=self.query_bool("force", False))
        self.reply(None, 204)


class UtilizationHandler(GradientHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        self.reply(await self.call(self.engine.utilization))


class CheckHandler(GradientHandler):
    """The bucket-setup report (SPEC section 7) for this server's origin, or the origins given."""

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
        self.reply({"datasets": [d.to_json() for d in datasets],
                    **({"warnings": [w.to_json() for w in skipped]} if skipped else {})})

    @tornado.web.authenticated
    @authorized
    async def post(self):
        body = self.json_body({"name": str, "storageProviderId": str, "description": str}, required=("name",))
        ds = await self.call(self.engine.datasets.create, body["name"], provider=body.get("storageProviderId"),
                             description=body.get("description", ""))
        self.reply(ds.to_json(), 201)


class DatasetHandler(GradientHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, dataset):
        self.reply((await self.call(self.engine.datasets.get, dataset)).to_json())

    @tornado.web.authenticated
    @authorized
    async def patch(self, dataset):
        body = self.json_body({"name": str, "description": str})
        ds = await self.call(self.engine.datasets.update, dataset, name=body.get("name"),
                             description=body.get("description"))
        self.reply(ds.to_json())

    @tornado.web.authenticated
    @authorized
    async def delete(self, dataset):
        await self.call(self.engine.datasets.delete, dataset)
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
        body = self.json_body({"message": str})
        version = await self.call(self.engine.datasets.create_version, dataset, message=body.get("message", ""))
        self.reply(version.to_json(), 201)


class VersionHandler(GradientHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, dataset, version):
        self.reply((await self.call(self.engine.datasets.get_version, dataset, version)).to_json())

    @tornado.web.authenticated
    @authorized
    async def patch(self, dataset, version):
        body = self.json_body({"message": str}, required=("message",))
        updated = await self.call(self.engine.datasets.update_version, dataset, version, message=body["message"])
        self.reply(updated.to_json())

    @tornado.web.authenticated
    @authorized
    async def delete(self, dataset, version):
        await self.call(self.engine.datasets.delete_version, dataset, version)
        self.reply(None, 204)


class CommitHandler(GradientHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, dataset, version):
        self.json_body({})
        self.reply((await self.call(self.engine.datasets.commit, dataset, version)).to_json())


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
        found = await self.call(history.diff, self.engine, f"{dataset}:{version}", to or None, include=include,
                                exclude=exclude)
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
        body = self.json_body({"version": str}, required=("version",))
        self.reply((await self.call(self.engine.datasets.set_tag, dataset, tag, body["version"])).to_json())

    @tornado.web.authenticated
    @authorized
    async def delete(self, dataset, tag):
        await self.call(self.engine.datasets.delete_tag, dataset, tag)
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
        raise NotFound(f"Unknown API path 'gradient/api/{rest}': the routes are in gradient/api/openapi.json.",
                       reason="unknown-path")

    post = put = patch = delete = get


# -- file upload plumbing ----------------------------------------------------------------------------------------
DRAIN_LIMIT = 1024 * 1024  # a refused upload body up to this size is read first, so the client gets the answer


@tornado.web.stream_request_body
class StreamingUploadHandler(GradientHandler):
    """Receives a PUT body chunk by chunk into a spool file in the data home, never whole in memory."""

    _spool = None
    _refusal: GradientError | None = None

    async def prepare(self):
        await super().prepare()
        if self.request.method != "PUT" or self._finished:
            return
        # @authenticated and @authorized run only after the body arrived: refuse strangers before the first byte.
        user = self.current_user
        if not user:
            raise tornado.web.HTTPError(403)
        if not await ensure_async(self.authorizer.is_authorized(self, user, "write", AUTH_RESOURCE)):
            raise tornado.web.HTTPError(403, f"User is not authorized to write on resource: {AUTH_RESOURCE}.")
        try:
            await self.check_upload()
        except GradientError as exc:
            # Answering before reading a body the client already sent resets the connection, and the client never
            # sees why: drain a small body first, then refuse. Large ones (or Expect: 100-continue) go now.
            small = int(self.request.headers.get("Content-Length") or 0) <= DRAIN_LIMIT
            if not small or "100-continue" in self.request.headers.get("Expect", "").lower():
                raise
            self._refusal = exc
            return
        self.request.connection.set_max_body_size(MAX_UPLOAD)
        self._buffer = bytearray()
        self._spool = await self.call(self._open_spool, self.engine.home / "tmp")

    async def check_upload(self) -> None:
        """Refuse a bad upload before its body is read (subclasses check their path arguments)."""

    @staticmethod
    def _open_spool(folder):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return tempfile.NamedTemporaryFile(dir=folder, prefix="upload-", delete=False)

    async def data_received(self, chunk: bytes):
        if self._spool is None:  # refused in prepare: tornado still drains the body
            return
        self._buffer += chunk
        if len(self._buffer) >= SPOOL_CHUNK:
            data, self._buffer = bytes(self._buffer), bytearray()
            await self.call(self._spool.write, data)

    async def spooled(self, use) -> object:
        """Flush what is left of the body, then `use(path)` in a thread; the spool file is removed afterwards."""
        if self._refusal is not None:
            raise self._refusal
        spool, self._spool = self._spool, None  # ours now: a client hanging up must not pull it from under `use`
        try:
            await self.call(spool.write, bytes(self._buffer))
            await self.call(spool.close)
            return await self.call(use, spool.name)
        finally:
            await self.call(_remove, spool)

    def _discard_spool(self) -> None:
        spool, self._spool = self._spool, None
        if spool is not None:
            self.settings["gradient_executor"].submit(_remove, spool)

    def on_finish(self):
        self._discard_spool()

    def on_connection_close(self):
        self._discard_spool()
        super().on_connection_close()


class FileHandler(StreamingUploadHandler):
    """One file of a version: upload (streamed to a spool file, then to the store), verified download, delete."""

    async def check_upload(self) -> None:
        check_file_path(self.path_kwargs["path"])

    @tornado.web.authenticated
    @authorized
    async def put(self, dataset, version, path):
        entry = await self.spooled(partial(self.engine.datasets.put_file, dataset, version, path))
        self.reply(entry.to_json())

    @tornado.web.authenticated
    @authorized
    async def delete(self, dataset, version, path):
        await self.call(self.engine.datasets.delete_file, dataset, version, path)
        self.reply(None, 204)

    @tornado.web.authenticated
    @authorized
    async def get(self, dataset, version, path):
        entry, chunks = await self.call(self.engine.datasets.read_file, dataset, version, path)
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", entry.size)
        self.set_header("Content-Disposition", "attachment; filename*=UTF-8''" + url_quote(path.rsplit("/", 1)[-1]))
        if entry.sha256:
            self.set_header("X-Gradient-SHA256", entry.sha256)
        read = partial(next, chunks, None)
        try:
            # One chunk of look-ahead: the last bytes go out only after the engine verified the whole file, so a
            # client never receives a complete body of bad bytes.
            pending = await self.call(read)
            while pending is not None:
                following = await self.call(read)
                if following is None:
                    break
                self.write(pending)
                await self.flush()
                pending = following
        except GradientError as exc:
            if not self._headers_written:
                raise  # nothing sent yet: a normal JSON error
            self.log.error("Download of %s aborted: %s", self.request.path, exc.message)
            self.request.connection.close()  # no clean end: the client sees a truncated body, not a file
            return
        except StreamClosedError:
            return  # the client went away
        finally:
            await self.call(chunks.close)
        if pending:
            self.write(pending)
        self.finish(set_content_type="application/octet-stream")


def _remove(spool) -> None:
    spool.close()
    try:
        os.unlink(spool.name)
    except FileNotFoundError:
        pass


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
