"""Gradient's own REST API under <base_url>gradient/compat/, so the retired `gradient` CLI (PyPI 2.0.6) works unchanged.

The CLI sends `X-API-Key: <key>`: here that key is the Jupyter token, checked by Jupyter's own authentication.
Its file commands never send bytes to the API: they ask `datasets/{id}/versions/{v}/s3/preSignedUrls` for S3 URLs.
Writes of an uncommitted version get real presigned URLs of the provider's endpoint, each for a fresh key under the
version's uploads/ (where no manifest ever points): the commit verifies and copies the bytes into data/, so a write
URL used again after the commit changes nothing committed. Reads and listings are answered from the manifest (a
version's unchanged files live under earlier versions' keys) by short-lived URLs this extension signs and serves
itself (route `s3`), streaming the bytes through the same check as the REST API; so are the embedded store's writes.
See docs/threat-model.md.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from functools import partial
from http.client import responses
from urllib.parse import urlencode
from xml.sax.saxutils import escape

import tornado.web
from jupyter_server.auth.decorator import allow_unauthenticated, authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join

from ..engine import BadInput, Conflict, Engine, GradientError, Immutable, NotFound
from ..engine.datasets import verified_stream
from ..engine.ids import DATASET_ID, TEAM_ID, VERSION_ID, check_file_path
from ..engine.models import FileEntry
from ..engine.stores import CHUNK
from .handlers import AUTH_RESOURCE, GradientHandler

S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
OWN_URL_SECONDS = 15 * 60  # URLs this extension serves
S3_WRITE_SECONDS = 60 * 60  # presigned writes: the CLI signs a batch, then uploads it through a worker pool
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
MAX_OPEN_UPLOADS = 20  # multipart uploads open at once per version (the CLI uploads a few large files at a time)
UPLOAD_IDLE_SECONDS = 60 * 60  # an embedded multipart upload untouched this long is abandoned: its parts are removed

# S3 calls the CLI asks URLs for: method -> (params allowed, writes?)
CALLS = {
    "headObject": ({"Key"}, False),
    "getObject": ({"Key"}, False),
    "listObjectsV2": ({"Prefix", "Delimiter", "MaxKeys", "ContinuationToken", "StartAfter"}, False),
    "putObject": ({"Key", "ContentType"}, True),
    "deleteObject": ({"Key"}, True),
    "createMultipartUpload": ({"Key", "ContentType"}, True),
    "uploadPart": ({"Key", "UploadId", "PartNumber"}, True),
    "completeMultipartUpload": ({"Key", "UploadId", "MultipartUpload"}, True),
    "abortMultipartUpload": ({"Key", "UploadId"}, True),
}
HTTP_OF = {"headObject": "HEAD", "getObject": "GET", "listObjectsV2": "GET", "putObject": "PUT",
           "deleteObject": "DELETE", "uploadPart": "PUT"}

def key_path(key) -> str:
    """A Gradient S3 key ('/folder/a.csv', as the CLI sends it) -> the dataset path 'folder/a.csv'."""
    if not isinstance(key, str) or not key.strip("/"):
        raise BadInput(f"Invalid Key {key!r}: give the file's path in the version, like 'folder/a.csv'.",
                       reason="invalid-path")
    return check_file_path(key.lstrip("/"))


# -- URLs this extension signs ------------------------------------------------------------------------------------
class UrlSigner:
    """HMAC-SHA256 over a JSON grant, with a key kept in the data home (0600) so every server process agrees."""

    def __init__(self, home):
        self.path = home / "compat-url.key"
        self._key: bytes | None = None

    @property
    def key(self) -> bytes:
        if self._key is None:
            if not self.path.exists():
                fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".compat-key-")  # mkstemp: mode 0600
                with os.fdopen(fd, "wb") as f:
                    f.write(secrets.token_bytes(32))
                try:
                    os.link(tmp, self.path)  # create-only: two servers starting at once keep one key
                except FileExistsError:
                    pass
                finally:
                    os.unlink(tmp)
            self._key = self.path.read_bytes()
        return self._key

    def _mac(self, grant: str) -> str:
        return hmac.new(self.key, b"gradient-compat-url/1\n" + grant.encode(), hashlib.sha256).hexdigest()

    def sign(self, payload: dict, seconds: int = OWN_URL_SECONDS) -> str:
        payload = {**payload, "exp": int(time.time()) + seconds}
        grant = base64.urlsafe_b64encode(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
        grant = grant.decode().rstrip("=")
        # "auth" is among the query parameters Jupyter's access log scrubs
        return urlencode({"grant": grant, "auth": self._mac(grant)})

    def verify(self, grant: str, sig: str) -> dict:
        if not grant or not sig or not hmac.compare_digest(self._mac(grant), sig):
            raise tornado.web.HTTPError(403, "The URL's signature does not match: ask for a new URL.")
        payload = json.loads(base64.urlsafe_b64decode(grant + "=" * (-len(grant) % 4)))
        if payload.get("exp", 0) < time.time():
            raise tornado.web.HTTPError(403, "The URL has expired: ask for a new URL.")
        return payload


def signer_of(settings, engine: Engine) -> UrlSigner:
    signer = settings.get("gradient_compat_signer")
    if signer is None:
        signer = settings["gradient_compat_signer"] = UrlSigner(engine.home)
    return signer


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
        items = sorted(items, key=lambda d: (d.get(field) is None, str(d.get(field) or "").lower()),
                       reverse=direction.strip().upper() == "DESC")
    skip = _int_arg(handler, "filter[skip]", 0)
    limit = _int_arg(handler, "filter[limit]", None)
    return items[skip:] if limit is None else items[skip:skip + limit]


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

    async def prepare(self):
        # The CLI's only credential is X-API-Key. Hand it to Jupyter's identity provider as the token it reads
        # (`Authorization: token ...`), so Jupyter alone decides who is authenticated.
        key = self.request.headers.get("X-API-Key")
        if key and "Authorization" not in self.request.headers:
            self.request.headers["Authorization"] = f"token {key}"
        return await super().prepare()

    def write_error(self, status_code: int, **kwargs) -> None:
        """Gradient's error JSON: the CLI prints `error.message`."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, GradientError):
            self.set_status(exc.status)
            error = {"statusCode": exc.status, "name": type(exc).__name__, **exc.to_json()}
        elif status_code == 403 and getattr(self, "_jupyter_current_user", None) is None:
            error = {"statusCode": 403, "name": "Forbidden", "reason": "not-authenticated",
                     "message": "The Jupyter server refused the API key: set PAPERSPACE_API_KEY (or --apiKey) "
                                "to this Jupyter server's token."}
        elif isinstance(exc, tornado.web.HTTPError):
            phrase = responses.get(status_code, "Error")
            error = {"statusCode": status_code, "name": phrase, "message": exc.log_message or phrase,
                     "reason": phrase.lower().replace(" ", "-")}
        else:
            error = {"statusCode": 500, "name": "Error", "reason": "server-error",
                     "message": "Unexpected server error; the Jupyter server log has the details."}
        self.finish(json.dumps({"error": error}))


class ProvidersHandler(CompatHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        providers = await self.call(self.engine.registry.list)
        self.reply(page(self, [provider_json(p) for p in providers]))

    @tornado.web.authenticated
    @authorized
    async def post(self):
        body = self.json_body({"name": str, "type": str, "config": dict, "isTeamDefault": bool}, ("name", "config"))
        provider = await self.call(self.engine.registry.create, body["name"], body["config"],
                                   is_team_default=body.get("isTeamDefault", False), type=body.get("type", "s3"))
        self.reply(provider_json(provider))


class ProviderHandler(CompatHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, provider_id):
        self.reply(provider_json(await self.call(self.engine.registry.get, provider_id)))

    @tornado.web.authenticated
    @authorized
    async def post(self, provider_id):  # Gradient's updates are POSTs
        body = self.json_body({"name": str, "type": str, "config": dict, "isTeamDefault": bool})
        if body.get("type", "s3") != "s3":
            raise BadInput(f"Unknown storage provider type {body['type']!r}: the only type is 's3'.")
        provider = await self.call(self.engine.registry.update, provider_id, name=body.get("name"),
                                   config=body.get("config"), is_team_default=body.get("isTeamDefault"))
        self.reply(provider_json(provider))

    @tornado.web.authenticated
    @authorized
    async def delete(self, provider_id):
        force = self.get_query_argument("force", "false").lower() == "true"
        await self.call(self.engine.delete_provider, provider_id, force=force)
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
        body = self.json_body({"name": str, "storageProviderId": str, "description": str}, ("name",))

        def create():
            ds = self.engine.datasets.create(body["name"], provider=body.get("storageProviderId"),
                                             description=body.get("description", ""))
            return dataset_json(self.engine, ds)

        self.reply(await self.call(create))


class DatasetHandler(CompatHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, dataset):
        self.reply(await self.call(lambda: dataset_json(self.engine, self.engine.datasets.get(dataset))))

    @tornado.web.authenticated
    @authorized
    async def post(self, dataset):
        body = self.json_body({"name": str, "description": str})

        def update():
            ds = self.engine.datasets.update(dataset, name=body.get("name"), description=body.get("description"))
            return dataset_json(self.engine, ds)

        self.reply(await self.call(update))

    @tornado.web.authenticated
    @authorized
    async def delete(self, dataset):
        await self.call(self.engine.datasets.delete, dataset)
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
        body = self.json_body({"message": str})
        v = await self.call(self.engine.datasets.create_version, dataset, message=body.get("message", ""))
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

        def update():
            datasets = self.engine.datasets
            v = datasets.get_version(dataset, version)
            if body.get("isCommitted") is False and v.is_committed:
                raise Immutable(f"Version {v.ref} is committed and cannot be uncommitted: create a new version.")
            if "message" in body:
                v = datasets.update_version(dataset, version, message=body["message"])
            if body.get("isCommitted"):
                v = datasets.commit(dataset, version)  # verifies and copies files that arrived by presigned URL
                end_uploads(self.engine, datasets.get(v.dataset_id), v.version)
            return version_json(v)

        self.reply(await self.call(update))

    @tornado.web.authenticated
    @authorized
    async def delete(self, dataset, version):
        def delete():
            ds = self.engine.datasets.get(dataset)
            self.engine.datasets.delete_version(ds, version)
            end_uploads(self.engine, ds, version)

        await self.call(delete)
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
        body = self.json_body({"version": str}, ("version",))

        def set_tag():
            tag = self.engine.datasets.set_tag(dataset, name, body["version"])
            return tag_json(tag, {tag.version: self.engine.datasets.get_version(dataset, tag.version)})

        self.reply(await self.call(set_tag))

    @tornado.web.authenticated
    @authorized
    async def delete(self, dataset, name):
        await self.call(self.engine.datasets.delete_tag, dataset, name)
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
            raise BadInput("Give 1 to 1000 calls, each {\"method\": ..., \"params\": {...}}.")
        for c in calls:
            if not isinstance(c, dict) or not isinstance(c.get("params", {}), dict) or c.get("method") not in CALLS:
                raise BadInput(f"Unknown call {json.dumps(c)[:100]}: methods are {', '.join(CALLS)}, params an object.",
                               reason="unknown-call")
            unknown = sorted(set(c.get("params") or {}) - CALLS[c["method"]][0])
            if unknown:
                raise BadInput(f"{c['method']} does not take {', '.join(unknown)}: it takes "
                               f"{', '.join(sorted(CALLS[c['method']][0]))}.", reason="unknown-param")
        user = self.current_user.username
        base = f"{self.request.protocol}://{self.request.host}" + url_path_join(self.base_url, "gradient/compat/s3")
        signer = signer_of(self.settings, self.engine)
        self.reply(await self.call(Presigner(self.engine, signer, base, user).all, dataset, version, body, calls))


class Presigner:
    """Answers the calls of one preSignedUrls request (in a worker thread)."""

    def __init__(self, engine: Engine, signer: UrlSigner, base: str, user: str):
        self.engine, self.signer, self.base, self.user = engine, signer, base, user
        self.upload_keys: dict[str, str] = {}  # path -> its upload key (a batch of part URLs asks for few files)

    def all(self, dataset: str, version: str, body: dict, calls: list[dict]) -> list[dict]:
        datasets = self.engine.datasets
        self.ds = datasets.get(dataset)
        if body.get("datasetId") not in (None, dataset, self.ds.id):
            raise BadInput(f"The body names dataset {body['datasetId']!r} but the URL names {dataset!r}.")
        self.version = datasets.get_version(self.ds, version)
        self.provider = self.engine.registry.get(self.ds.storage_provider_id)
        self.store = self.engine.store(self.provider)
        self.embedded = not self.store.supports_presign
        if sum(c["method"] == "createMultipartUpload" for c in calls) > MAX_OPEN_UPLOADS:
            raise BadInput(f"At most {MAX_OPEN_UPLOADS} multipart uploads can be started in one request.",
                           reason="too-many-uploads")
        if any(CALLS[c["method"]][1] for c in calls):
            if self.version.is_committed:
                raise Immutable(f"Version {self.version.ref} is committed and cannot change: create a new version "
                                "(datasets versions create) to add, replace or delete files.")
            if self.store.quota is not None and not self.embedded:
                # Presigned writes bypass the engine's quota check: at least refuse them once Gradient Managed is full.
                self.store.check_quota(1, self.engine.team_prefix())
        return [self.one(c["method"], c.get("params") or {}) for c in calls]

    def manifest(self) -> dict:
        if not hasattr(self, "_files"):
            self._files = {f.path: f for f in self.engine.datasets.list_files(self.ds, self.version.version)}
        return self._files

    def own(self, op: str, params: dict) -> dict:
        grant = {"op": op, "team": self.engine.team_id, "sp": self.provider.id, "ds": self.ds.id,
                 "v": self.version.version, "user": self.user, "p": params}
        return self.answer(f"{self.base}?{self.signer.sign(grant)}", OWN_URL_SECONDS)

    @staticmethod
    def answer(url, seconds: int = 0) -> dict:
        return {"url": url, "expiresIn": seconds, "expires_in": seconds}  # the SDK's schema reads expires_in

    def one(self, method: str, params: dict) -> dict:
        if method == "listObjectsV2":
            return self.own(method, {k: params[k] for k in CALLS[method][0] if k in params})
        path = key_path(params.get("Key"))
        if method in ("headObject", "getObject") and self.version.is_committed:
            # A committed version never changes: sign where its bytes are, so reading costs no lookups later.
            entry = self.manifest().get(path)
            found = {"obj": entry.key, "size": entry.size, "sha256": entry.sha256} if entry else {"missing": True}
            return self.own(method, {"Key": path, **found})
        if method in ("headObject", "getObject", "deleteObject"):
            return self.own(method, {"Key": path})
        datasets = self.engine.datasets
        content = {"ContentType": params["ContentType"]} if isinstance(params.get("ContentType"), str) else {}
        if method == "putObject":
            if self.embedded:
                return self.own(method, {"Key": path})
            key = datasets.upload_key(self.ds, self.version.version, path)
            return self.answer(self.store.presign("put_object", key, S3_WRITE_SECONDS, **content), S3_WRITE_SECONDS)
        upload_id = params.get("UploadId")
        if method != "createMultipartUpload" and (not isinstance(upload_id, str) or not upload_id):
            raise BadInput(f"{method} needs the UploadId that createMultipartUpload answered.")
        if self.embedded:
            return self.embedded_multipart(method, path, params, upload_id)
        if method == "createMultipartUpload":
            key = datasets.upload_key(self.ds, self.version.version, path)
            return self.answer({"UploadId": self.store.call("create_multipart_upload", key, **content)["UploadId"]})
        if path not in self.upload_keys:
            self.upload_keys[path] = datasets.upload_key_of(self.ds, self.version.version, path)
        key = self.upload_keys[path]
        if method == "uploadPart":
            number = _part_number(params.get("PartNumber"))
            url = self.store.presign("upload_part", key, S3_WRITE_SECONDS, UploadId=upload_id, PartNumber=number)
            return self.answer(url, S3_WRITE_SECONDS)
        if method == "completeMultipartUpload":
            parts = _parts(params.get("MultipartUpload"))
            self.store.call("complete_multipart_upload", key, UploadId=upload_id, MultipartUpload={"Parts": parts})
            return self.answer({"Key": path})
        self.store.call("abort_multipart_upload", key, UploadId=upload_id)
        return self.answer({})

    # The embedded store has no S3 endpoint: parts wait in the data home until completeMultipartUpload.
    def uploads(self):
        return self.engine.home / "tmp" / "compat-uploads"

    def embedded_multipart(self, method: str, path: str, params: dict, upload_id) -> dict:
        if method == "createMultipartUpload":
            remove_abandoned_uploads(self.engine)
            open_here = [f for f, info in open_uploads(self.engine) if info.get("ds") == self.ds.id
                         and info.get("v") == self.version.version]
            if len(open_here) >= MAX_OPEN_UPLOADS:
                raise Conflict(f"Version {self.version.ref} has {len(open_here)} multipart uploads open, the most "
                               "allowed: complete or abort some first.", reason="too-many-uploads")
            upload_id = secrets.token_hex(16)
            folder = self.uploads() / upload_id
            folder.mkdir(parents=True, mode=0o700)
            (folder / "upload.json").write_text(json.dumps({"ds": self.ds.id, "v": self.version.version, "path": path}))
            return self.answer({"UploadId": upload_id})
        folder = upload_folder(self.engine, upload_id, self.ds.id, self.version.version, path)
        if method == "uploadPart":
            return self.own(method, {"Key": path, "UploadId": upload_id,
                                     "PartNumber": _part_number(params.get("PartNumber"))})
        if method == "completeMultipartUpload":
            parts = _parts(params.get("MultipartUpload"))
            fd, whole = tempfile.mkstemp(dir=self.uploads(), prefix="whole-")
            try:
                with os.fdopen(fd, "wb") as out:
                    for part in parts:
                        chunk_path = folder / str(part["PartNumber"])
                        data = chunk_path.read_bytes() if chunk_path.is_file() else None
                        etag = hashlib.md5(data, usedforsecurity=False).hexdigest() if data is not None else None
                        if etag != part["ETag"].strip('"'):
                            raise BadInput(f"Part {part['PartNumber']} of upload {upload_id} was not uploaded "
                                           "or its ETag differs: upload it again.", reason="invalid-part")
                        out.write(data)
                self.engine.datasets.put_file(self.ds, self.version.version, path, whole)
            finally:
                os.unlink(whole)
        shutil.rmtree(folder, ignore_errors=True)
        return self.answer({"Key": path})


def open_uploads(engine: Engine) -> list[tuple]:
    """(folder, its upload.json) of every embedded multipart upload in the data home."""
    root = engine.home / "tmp" / "compat-uploads"
    found = []
    for folder in root.iterdir() if root.is_dir() else ():
        try:
            found.append((folder, json.loads((folder / "upload.json").read_text())))
        except (OSError, ValueError):
            found.append((folder, {}))
    return found


def remove_abandoned_uploads(engine: Engine, *, ds_id: str | None = None, version: str | None = None) -> None:
    """Remove embedded multipart uploads untouched for UPLOAD_IDLE_SECONDS, or (given ds_id and version) those of
    a version that was committed or deleted: their parts would otherwise stay in the data home forever."""
    now = time.time()
    for folder, info in open_uploads(engine):
        try:
            idle = now - max(p.stat().st_mtime for p in [folder, *folder.iterdir()])
        except (OSError, ValueError):
            idle = UPLOAD_IDLE_SECONDS
        if idle >= UPLOAD_IDLE_SECONDS or (ds_id and info.get("ds") == ds_id and info.get("v") == version):
            shutil.rmtree(folder, ignore_errors=True)


def end_uploads(engine: Engine, ds, version: str) -> None:
    """A version was committed or deleted: its multipart uploads still open can never be used; remove their parts
    (in the data home for Gradient Managed, in the bucket's multipart area for S3 providers)."""
    remove_abandoned_uploads(engine, ds_id=ds.id, version=version)
    store = engine.store(ds.storage_provider_id)
    if store.supports_presign:
        listing = store.call("list_multipart_uploads", Prefix=engine.datasets.uploads_prefix(ds.id, version))
        for upload in listing.get("Uploads", []):
            store.call("abort_multipart_upload", upload["Key"], UploadId=upload["UploadId"])


def uploads_size(engine: Engine) -> int:
    """Bytes of embedded multipart parts waiting in the data home (they count against the quota)."""
    root = engine.home / "tmp" / "compat-uploads"
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0


def upload_folder(engine: Engine, upload_id, ds_id: str, version: str, path: str):
    """The folder of an embedded multipart upload, only if it was made for this dataset, version and path."""
    folder = engine.home / "tmp" / "compat-uploads" / str(upload_id)
    try:
        ok = bool(UPLOAD_ID.fullmatch(str(upload_id))) and \
            json.loads((folder / "upload.json").read_text()) == {"ds": ds_id, "v": version, "path": path}
    except (OSError, ValueError):
        ok = False
    if not ok:
        raise NotFound(f"No multipart upload {upload_id!r} for {path!r} in {ds_id}:{version}.", reason="no-such-upload")
    return folder


def _part_number(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10000:
        raise BadInput(f"PartNumber must be a whole number from 1 to 10000, not {value!r}.")
    return value


def _parts(upload) -> list[dict]:
    parts = upload.get("Parts") if isinstance(upload, dict) else None
    if not isinstance(parts, list) or not parts:
        raise BadInput("completeMultipartUpload needs MultipartUpload: {\"Parts\": [{\"ETag\", \"PartNumber\"}, ...]}.")
    out = []
    for p in parts:
        if not isinstance(p, dict) or not isinstance(p.get("ETag"), str):
            raise BadInput(f"Invalid part {json.dumps(p)[:80]}: each part is {{\"ETag\", \"PartNumber\"}}.")
        out.append({"ETag": p["ETag"], "PartNumber": _part_number(p.get("PartNumber"))})
    return out


# -- the URLs this extension signs and serves ------------------------------------------------------------------------
class SignedS3Handler(JupyterHandler):
    """Serves the URLs of `Presigner.own`, the way S3 serves presigned URLs: the signature is the credential.

    The signature names the operation, team, dataset, version and path, and was issued by an authenticated and
    authorized request (`PresignHandler`): like S3's presigned URLs, the grant is the authorization, so these routes
    are public to Jupyter (`allow_unauthenticated`) and can touch nothing but what the grant names. This works with
    any identity provider (JupyterHub's too). Answers are S3's (XML).
    """

    auth_resource = AUTH_RESOURCE

    async def prepare(self):
        engine: Engine = self.settings["gradient_engine"]
        grant = signer_of(self.settings, engine).verify(self.get_query_argument("grant", ""),
                                                        self.get_query_argument("auth", ""))
        if grant.get("team") != engine.team_id or not TEAM_ID.fullmatch(str(grant.get("team"))) \
                or not DATASET_ID.fullmatch(str(grant.get("ds"))) or not VERSION_ID.fullmatch(str(grant.get("v"))):
            raise tornado.web.HTTPError(403, "This URL is not for this installation's datasets.")
        if HTTP_OF.get(grant.get("op")) != self.request.method:
            raise tornado.web.HTTPError(405, f"This URL is for {grant.get('op')} only.")
        self.grant = grant
        return await super().prepare()

    def check_xsrf_cookie(self):
        """No cookie is involved: a signed URL cannot be forged by another site, like S3's presigned URLs."""

    @property
    def engine(self) -> Engine:
        return self.settings["gradient_engine"]

    async def call(self, fn, *args, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.settings["gradient_executor"], partial(fn, *args, **kwargs))

    def _target(self, *, write: bool = False):
        """(dataset, version) of the grant, looked up now; writes only while the version is uncommitted."""
        datasets = self.engine.datasets
        ds = datasets.get(self.grant["ds"])
        v = datasets.get_version(ds, self.grant["v"])
        if write and v.is_committed:
            raise Immutable(f"Version {v.ref} is committed and cannot change: create a new version.")
        return ds, v

    def _entry(self) -> tuple[FileEntry, bool]:
        """(file, committed?) the grant reads: signed into it for committed versions, else looked up now."""
        p, ds_id, version = self.grant["p"], self.grant["ds"], self.grant["v"]
        if p.get("missing"):
            raise NotFound(f"Version {ds_id}:{version} has no file {p['Key']!r}.", reason="no-such-key")
        if "obj" in p:
            return FileEntry(p["Key"], p["size"], p["sha256"], p["obj"]), True
        ds, v = self._target()
        for f in self.engine.datasets.list_files(ds, v.version, prefix=p["Key"]):
            if f.path == p["Key"]:
                return f, v.is_committed
        raise NotFound(f"Version {v.ref} has no file {p['Key']!r}.", reason="no-such-key")

    @allow_unauthenticated
    async def head(self):
        entry, _ = await self.call(self._entry)
        self.set_header("Content-Length", str(entry.size))
        self.set_header("Content-Type", "application/octet-stream")
        if entry.sha256:
            self.set_header("ETag", f'"{entry.sha256}"')
        self.finish()

    @allow_unauthenticated
    async def get(self):
        if self.grant["op"] == "listObjectsV2":
            self.set_header("Content-Type", "application/xml")
            self.finish(await self.call(self._listing, self.grant["p"]))
            return
        entry, committed = await self.call(self._entry)
        store = self.engine.store(self.grant["sp"])
        # Streamed through here, not redirected to the bucket: anyone who can write the bucket could have changed
        # the object, so it is checked against the manifest while it streams (before a commit there is nothing to
        # check against).
        what = f"Reading {self.grant['ds']}:{self.grant['v']}"
        chunks = iter(verified_stream(store, entry, what) if committed else store.stream(entry.key, CHUNK))
        # Each chunk goes out only once the next one is read, so the last goes out only after the check passed:
        # an error before the first byte is an S3 error answer; a later one cuts the response short.
        chunk = await self.call(next, chunks, None)
        following = await self.call(next, chunks, None) if chunk is not None else None
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", str(entry.size))
        try:
            while chunk is not None:
                self.write(chunk)
                await self.flush()
                chunk, following = following, await self.call(next, chunks, None) if following is not None else None
        except GradientError as exc:
            # The status is sent: cut the connection so the client cannot take a short or corrupt file as whole.
            self.log.error("gradient compat: %s", exc.message)
            self.request.connection.close()
            return
        self.finish()

    def _listing(self, params: dict) -> str:
        """listObjectsV2 of a version's files, as S3 XML. Without a Delimiter it lists one level ('/')."""
        ds, v = self._target()
        prefix = str(params.get("Prefix", ""))
        lead = "/" if prefix.startswith("/") else ""  # keys come back spelled like the prefix (the CLI uses '/...')
        want = prefix[len(lead):]
        delimiter = str(params.get("Delimiter", "/"))
        try:
            max_keys = max(1, min(int(params.get("MaxKeys") or 1000), 1000))
            after = str(params.get("StartAfter") or "")
            if params.get("ContinuationToken"):
                token = str(params["ContinuationToken"])
                after = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        except ValueError:
            raise BadInput("Invalid MaxKeys or ContinuationToken: use the NextContinuationToken a listing gave.",
                           reason="invalid-param") from None
        items: dict[str, int | None] = {}
        for f in self.engine.datasets.list_files(ds, v.version, prefix=want):
            rest = f.path[len(want):]
            if delimiter and delimiter in rest:
                items.setdefault(lead + want + rest.split(delimiter, 1)[0] + delimiter, None)
            else:
                items[lead + f.path] = f.size
        names = [n for n in sorted(items) if n > after]
        shown, more = names[:max_keys], len(names) > max_keys
        out = [f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="{S3_XMLNS}">',
               f"<Name>{escape(ds.id)}:{v.version}</Name><Prefix>{escape(prefix)}</Prefix>",
               f"<KeyCount>{len(shown)}</KeyCount><MaxKeys>{max_keys}</MaxKeys>",
               f"<Delimiter>{escape(delimiter)}</Delimiter>" if delimiter else "",
               f"<IsTruncated>{str(more).lower()}</IsTruncated>"]
        for name in shown:
            if items[name] is None:
                out.append(f"<CommonPrefixes><Prefix>{escape(name)}</Prefix></CommonPrefixes>")
            else:
                out.append(f"<Contents><Key>{escape(name)}</Key><Size>{items[name]}</Size>"
                           "<StorageClass>STANDARD</StorageClass></Contents>")
        if more:
            token = base64.urlsafe_b64encode(shown[-1].encode()).decode().rstrip("=")
            out.append(f"<NextContinuationToken>{token}</NextContinuationToken>")
        out.append("</ListBucketResult>")
        return "".join(out)

    @allow_unauthenticated
    async def put(self):
        p = self.grant["p"]
        data = self.request.body

        def write():
            ds, v = self._target(write=True)
            if self.grant["op"] == "putObject":
                self.engine.datasets.put_file(ds, v.version, p["Key"], data)
                return
            folder = upload_folder(self.engine, p["UploadId"], ds.id, v.version, p["Key"])
            part = folder / str(p["PartNumber"])
            replaced = part.stat().st_size if part.is_file() else 0
            # parts wait in the data home, outside the store: they count against its quota all the same
            self.engine.store(ds.storage_provider_id).check_quota(uploads_size(self.engine) - replaced + len(data),
                                                                  self.engine.team_prefix())
            part.write_bytes(data)

        await self.call(write)
        self.set_header("ETag", f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"')
        self.finish()

    @allow_unauthenticated
    async def delete(self):
        def remove():
            ds, v = self._target(write=True)
            self.engine.datasets.delete_file(ds, v.version, self.grant["p"]["Key"])

        await self.call(remove)
        self.set_status(204)
        self.finish()

    def write_error(self, status_code: int, **kwargs) -> None:
        """S3's error XML; the CLI prints it."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, GradientError):
            status_code = exc.status
            code = {404: "NoSuchKey", 409: "InvalidObjectState", 413: "QuotaExceeded"}.get(exc.status, exc.reason)
            message = exc.message
        elif isinstance(exc, tornado.web.HTTPError):
            code = {403: "AccessDenied", 405: "MethodNotAllowed"}.get(status_code, "InvalidRequest")
            message = exc.log_message or responses.get(status_code, "Error")
        else:
            code, message = "InternalError", "Unexpected server error; the Jupyter server log has the details."
        self.set_status(status_code)
        self.set_header("Content-Type", "application/xml")
        if self.request.method == "HEAD":
            self.finish()
            return
        self.finish(f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
                    f"<Message>{escape(message)}</Message></Error>")

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, (GradientError, tornado.web.HTTPError)):
            status = getattr(value, "status", getattr(value, "status_code", ""))
            self.log.warning("%s gradient/compat/s3 -> %s", self.request.method, status)
        else:
            super().log_exception(typ, value, tb)


class UnknownHandler(CompatHandler):
    """Anything else under gradient/compat/: a 404 the CLI can print."""

    def unknown(self, rest: str):
        raise NotFound(f"gradient/compat/{rest} is not part of the Gradient API this server offers "
                       "(storageProviders and datasets).", reason="unknown-route")

    @tornado.web.authenticated
    @authorized
    async def get(self, rest):
        self.unknown(rest)

    post = put = delete = get


_DS = r"([^/]+)"
ROUTES = [
    (r"storageProviders/?", ProvidersHandler),
    (rf"storageProviders/{_DS}", ProviderHandler),
    (r"datasets/?", DatasetsHandler),
    (r"datasets/ref/([^/]+)", RefHandler),
    (rf"datasets/{_DS}", DatasetHandler),
    (rf"datasets/{_DS}/versions/?", VersionsHandler),
    (rf"datasets/{_DS}/versions/{_DS}/s3/preSignedUrls", PresignHandler),
    (rf"datasets/{_DS}/versions/{_DS}", VersionHandler),
    (rf"datasets/{_DS}/tags/?", TagsHandler),
    (rf"datasets/{_DS}/tags/{_DS}", TagHandler),
    (r"s3", SignedS3Handler),
    (r"(.*)", UnknownHandler),
]
# Full patterns; the extension app puts base_url in front of them.
compat_handlers = [(url_path_join("/gradient/compat", route), handler) for route, handler in ROUTES]
