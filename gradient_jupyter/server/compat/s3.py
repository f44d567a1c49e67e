"""S3 for the Gradient CLI's file commands: the URLs `preSignedUrls` answers (real presigned URLs of the
provider's bucket, or URLs this extension signs), the multipart uploads of the embedded store (staged in the data
home: engine/uploads.py), and the handler that serves the signed URLs the way S3 would (XML answers). See
docs/threat-model.md."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import shutil
import tempfile
from collections import Counter
from xml.sax.saxutils import escape

import tornado.web
from jupyter_server.auth.decorator import allow_unauthenticated

from ...engine import BadInput, Conflict, Engine, GradientError, Immutable, NotFound
from ...engine.datasets import verified_stream
from ...engine.hashing import CHUNK, file_chunks
from ...engine.ids import DATASET_ID, TEAM_ID, VERSION_ID, check_file_path
from ...engine.models import FileEntry
from ...engine.uploads import open_uploads, remove_abandoned_uploads, upload_folder, uploads_folder, uploads_size
from ..base import AUTH_RESOURCE, StreamingUpload
from .signer import OWN_URL_SECONDS, UrlSigner, signer_of

log = logging.getLogger("gradient_jupyter")

S3_XMLNS = "http://s3.amazonaws.com/doc/2006-03-01/"
S3_WRITE_SECONDS = 60 * 60  # presigned writes: the CLI signs a batch, then uploads it through a worker pool
MAX_OPEN_UPLOADS = 20  # multipart uploads open at once per version (the CLI uploads a few large files at a time)
MIN_PART = 5 * 1024**2  # S3's smallest part, but for the last: n part URLs of one upload promise (n - 1) times this
MAX_PUT = 5 * 1024**3  # S3's largest single PUT (and part)

# S3 calls the CLI asks URLs for: method -> (params allowed, writes?)
CALLS = {
    "headObject": ({"Key"}, False),
    "getObject": ({"Key"}, False),
    "listObjectsV2": ({"Prefix", "Delimiter", "MaxKeys", "ContinuationToken", "StartAfter"}, False),
    "putObject": ({"Key", "ContentType", "ContentLength"}, True),
    "deleteObject": ({"Key"}, True),
    "createMultipartUpload": ({"Key", "ContentType"}, True),
    "uploadPart": ({"Key", "UploadId", "PartNumber", "ContentLength"}, True),
    "completeMultipartUpload": ({"Key", "UploadId", "MultipartUpload"}, True),
    "abortMultipartUpload": ({"Key", "UploadId"}, True),
}
HTTP_OF = {
    "headObject": "HEAD",
    "getObject": "GET",
    "listObjectsV2": "GET",
    "putObject": "PUT",
    "deleteObject": "DELETE",
    "uploadPart": "PUT",
}


def key_path(key) -> str:
    """A Gradient S3 key ('/folder/a.csv', as the CLI sends it) -> the dataset path 'folder/a.csv'."""
    if not isinstance(key, str) or not key.strip("/"):
        raise BadInput(
            f"Invalid Key {key!r}: give the file's path in the version, like 'folder/a.csv'.", reason="invalid-path"
        )
    return check_file_path(key.lstrip("/"))


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
            raise BadInput(
                f"At most {MAX_OPEN_UPLOADS} multipart uploads can be started in one request.",
                reason="too-many-uploads",
            )
        promised = promised_bytes(calls)  # checks the declared sizes
        if any(CALLS[c["method"]][1] for c in calls):
            self.provider.check_writable("write files")
            if self.version.is_committed:
                raise Immutable(
                    f"Version {self.version.ref} is committed and cannot change: create a new version "
                    "(datasets versions create) to add, replace or delete files."
                )
            if self.store.quota is not None and not self.embedded:
                # Presigned writes bypass the engine's quota check: sign only what the quota can take (what the
                # request declares and part counts promise; at least a byte), and the commit refuses the rest.
                self.store.check_quota(max(1, promised), self.engine.team_prefix())
        return [self.one(c["method"], c.get("params") or {}) for c in calls]

    def manifest(self) -> dict:
        if not hasattr(self, "_files"):
            self._files = {f.path: f for f in self.engine.datasets.list_files(self.ds, self.version.version)}
        return self._files

    def own(self, op: str, params: dict) -> dict:
        grant = {
            "op": op,
            "team": self.engine.team_id,
            "sp": self.provider.id,
            "ds": self.ds.id,
            "v": self.version.version,
            "user": self.user,
            "p": params,
        }
        return self.answer(f"{self.base}?{self.signer.sign(grant)}", OWN_URL_SECONDS)

    @staticmethod
    def answer(url, seconds: int = 0) -> dict:
        return {"url": url, "expiresIn": seconds, "expires_in": seconds}  # the SDK's schema reads expires_in

    def one(self, method: str, params: dict) -> dict:
        """The URL (or S3's answer) for one call: reads and listings are URLs this extension signs; writes go to
        the version's uploads/, by presigned URLs of the bucket or, for the embedded store, by signed URLs."""
        if method == "listObjectsV2":
            return self.own(method, {k: params[k] for k in CALLS[method][0] if k in params})
        path = key_path(params.get("Key"))
        if method in ("headObject", "getObject"):
            return self.read(method, path)
        if method == "deleteObject":
            return self.own(method, {"Key": path})
        content = {"ContentType": params["ContentType"]} if isinstance(params.get("ContentType"), str) else {}
        if method == "putObject":
            if self.embedded:
                return self.own(method, {"Key": path})
            key = self.engine.datasets.upload_key(self.ds, self.version.version, path)
            sized = {**content, **_declared(params)}  # a declared size is signed in: S3 refuses any other
            return self.answer(self.store.presign("put_object", key, S3_WRITE_SECONDS, **sized), S3_WRITE_SECONDS)
        upload_id = params.get("UploadId")
        if method != "createMultipartUpload" and (not isinstance(upload_id, str) or not upload_id):
            raise BadInput(f"{method} needs the UploadId that createMultipartUpload answered.")
        if self.embedded:
            return self.embedded_multipart(method, path, params, upload_id)
        return self.s3_multipart(method, path, params, upload_id, content)

    def read(self, method: str, path: str) -> dict:
        if self.version.is_committed:
            # A committed version never changes: sign where its bytes are, so reading costs no lookups later.
            entry = self.manifest().get(path)
            found = {"obj": entry.key, "size": entry.size, "sha256": entry.sha256} if entry else {"missing": True}
            return self.own(method, {"Key": path, **found})
        return self.own(method, {"Key": path})

    def s3_multipart(self, method: str, path: str, params: dict, upload_id, content: dict) -> dict:
        """A multipart upload into the bucket's own multipart area, under a fresh key in the version's uploads/."""
        datasets = self.engine.datasets
        if method == "createMultipartUpload":
            key = datasets.upload_key(self.ds, self.version.version, path)
            return self.answer({"UploadId": self.store.call("create_multipart_upload", key, **content)["UploadId"]})
        if path not in self.upload_keys:
            self.upload_keys[path] = datasets.upload_key_of(self.ds, self.version.version, path)
        key = self.upload_keys[path]
        if method == "uploadPart":
            number = _part_number(params.get("PartNumber"))
            url = self.store.presign(
                "upload_part", key, S3_WRITE_SECONDS, UploadId=upload_id, PartNumber=number, **_declared(params)
            )
            return self.answer(url, S3_WRITE_SECONDS)
        if method == "completeMultipartUpload":
            parts = _parts(params.get("MultipartUpload"))
            self.store.call("complete_multipart_upload", key, UploadId=upload_id, MultipartUpload={"Parts": parts})
            return self.answer({"Key": path})
        self.store.call("abort_multipart_upload", key, UploadId=upload_id)
        return self.answer({})

    # The embedded store has no S3 endpoint: parts wait in the data home until completeMultipartUpload.
    def embedded_multipart(self, method: str, path: str, params: dict, upload_id) -> dict:
        if method == "createMultipartUpload":
            remove_abandoned_uploads(self.engine)
            open_here = [
                f
                for f, info in open_uploads(self.engine)
                if info.get("ds") == self.ds.id and info.get("v") == self.version.version
            ]
            if len(open_here) >= MAX_OPEN_UPLOADS:
                raise Conflict(
                    f"Version {self.version.ref} has {len(open_here)} multipart uploads open, the most "
                    "allowed: complete or abort some first.",
                    reason="too-many-uploads",
                )
            upload_id = secrets.token_hex(16)
            folder = uploads_folder(self.engine) / upload_id
            folder.mkdir(parents=True, mode=0o700)
            (folder / "upload.json").write_text(json.dumps({"ds": self.ds.id, "v": self.version.version, "path": path}))
            return self.answer({"UploadId": upload_id})
        folder = upload_folder(self.engine, upload_id, self.ds.id, self.version.version, path)
        if method == "uploadPart":
            return self.own(
                method, {"Key": path, "UploadId": upload_id, "PartNumber": _part_number(params.get("PartNumber"))}
            )
        if method == "completeMultipartUpload":
            parts = _parts(params.get("MultipartUpload"))
            fd, whole = tempfile.mkstemp(dir=uploads_folder(self.engine), prefix="whole-")
            try:
                with os.fdopen(fd, "wb") as out:
                    for part in parts:
                        chunk_path = folder / str(part["PartNumber"])
                        if not chunk_path.is_file() or _md5(str(chunk_path)) != part["ETag"].strip('"'):
                            raise BadInput(
                                f"Part {part['PartNumber']} of upload {upload_id} was not uploaded "
                                "or its ETag differs: upload it again.",
                                reason="invalid-part",
                            )
                        with open(chunk_path, "rb") as chunk:  # parts may be large: never whole in memory
                            shutil.copyfileobj(chunk, out, CHUNK)
                self.engine.datasets.put_file(self.ds, self.version.version, path, whole)
            finally:
                os.unlink(whole)
        shutil.rmtree(folder, ignore_errors=True)
        return self.answer({"Key": path})


def _declared(params: dict) -> dict:
    """{"ContentLength": n} if the call declares its size (0 to 5 GiB), else {}."""
    if "ContentLength" not in params:
        return {}
    value = params["ContentLength"]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PUT:
        raise BadInput(f"ContentLength must be a whole number of bytes from 0 to {MAX_PUT}, not {value!r}.")
    return {"ContentLength": value}


def promised_bytes(calls: list[dict]) -> int:
    """The least that the write URLs of one preSignedUrls request let through to the bucket: the sizes they declare
    (signed into the URLs), and S3's minimum part size for each part URL of a multipart upload but one (a part
    other than the last must be that large). A putObject URL without a declared size counts nothing here; the
    commit refuses what does not fit."""
    total, parts = 0, Counter[tuple[str, str]]()
    for c in calls:
        params = c.get("params") or {}
        if c["method"] in ("putObject", "uploadPart") and "ContentLength" in params:
            total += _declared(params)["ContentLength"]
        elif c["method"] == "uploadPart":
            parts[(str(params.get("Key")), str(params.get("UploadId")))] += 1
    return total + sum(n - 1 for n in parts.values()) * MIN_PART


def _part_number(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10000:
        raise BadInput(f"PartNumber must be a whole number from 1 to 10000, not {value!r}.")
    return value


def _parts(upload) -> list[dict]:
    parts = upload.get("Parts") if isinstance(upload, dict) else None
    if not isinstance(parts, list) or not parts:
        raise BadInput('completeMultipartUpload needs MultipartUpload: {"Parts": [{"ETag", "PartNumber"}, ...]}.')
    out = []
    for p in parts:
        if not isinstance(p, dict) or not isinstance(p.get("ETag"), str):
            raise BadInput(f'Invalid part {json.dumps(p)[:80]}: each part is {{"ETag", "PartNumber"}}.')
        out.append({"ETag": p["ETag"], "PartNumber": _part_number(p.get("PartNumber"))})
    return out


# -- the URLs this extension signs and serves ------------------------------------------------------------------------
@tornado.web.stream_request_body
class SignedS3Handler(StreamingUpload):
    """Serves the URLs of `Presigner.own`, the way S3 serves presigned URLs: the signature is the credential.

    The signature names the operation, team, dataset, version and path, and was issued by an authenticated and
    authorized request (`PresignHandler`): like S3's presigned URLs, the grant is the authorization, so these routes
    are public to Jupyter (`allow_unauthenticated`) and can touch nothing but what the grant names. This works with
    any identity provider (JupyterHub's too). Answers are S3's (XML). Uploads stream into a spool file like the
    REST API's; downloads go through the same verified streamer (server/base.py).
    """

    auth_resource = AUTH_RESOURCE

    async def prepare(self, *args, **kwargs) -> None:
        engine: Engine = self.settings["gradient_engine"]
        # the signing key is read from the data home on first use: off the event loop
        grant = await self.call(
            signer_of(self.settings, engine).verify,
            self.get_query_argument("grant", ""),
            self.get_query_argument("auth", ""),
        )
        if (
            grant.get("team") != engine.team_id
            or not TEAM_ID.fullmatch(str(grant.get("team")))
            or not DATASET_ID.fullmatch(str(grant.get("ds")))
            or not VERSION_ID.fullmatch(str(grant.get("v")))
        ):
            raise tornado.web.HTTPError(403, "This URL is not for this installation's datasets.")
        if HTTP_OF.get(str(grant.get("op"))) != self.request.method:
            raise tornado.web.HTTPError(405, f"This URL is for {grant.get('op')} only.")
        self.grant = grant
        await super().prepare(*args, **kwargs)

    def check_xsrf_cookie(self):
        """No cookie is involved: a signed URL cannot be forged by another site, like S3's presigned URLs."""

    async def authorize_upload(self) -> None:
        """The grant, checked in `prepare`, is the authorization (see the class docstring)."""

    async def check_upload(self) -> None:
        await self.call(self._target, write=True)  # a committed version: refused before the body is read

    def _target(self, *, write: bool = False):
        """(dataset, version) of the grant, looked up now; writes only while the version is uncommitted."""
        datasets = self.engine.datasets
        ds = datasets.get(self.grant["ds"])
        v = datasets.get_version(ds, self.grant["v"])
        if write and v.is_committed:
            raise Immutable(f"Version {v.ref} is committed and cannot change: create a new version.")
        if write:
            datasets.writable(ds, "write files")
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
        entry, committed = await self.transfer(self.grant["sp"], self._entry)
        # Streamed through here, not redirected to the bucket: anyone who can write the bucket could have changed
        # the object, so it is checked against the manifest while it streams (before a commit there is nothing to
        # check against). Opening the stream asks the store: off the event loop.
        what = f"Reading {self.grant['ds']}:{self.grant['v']}"

        def open_stream():
            store = self.engine.store(self.grant["sp"])
            return iter(verified_stream(store, entry, what) if committed else store.stream(entry.object_key, CHUNK))

        chunks = await self.transfer(self.grant["sp"], open_stream)
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", str(entry.size))
        if await self.send_verified(chunks, self.grant["sp"]):
            self.finish()

    def _listing(self, params: dict) -> str:
        """listObjectsV2 of a version's files, as S3 XML. Without a Delimiter it lists one level ('/')."""
        ds, v = self._target()
        prefix = str(params.get("Prefix", ""))
        lead = "/" if prefix.startswith("/") else ""  # keys come back spelled like the prefix (the CLI uses '/...')
        want = prefix[len(lead) :]
        delimiter = str(params.get("Delimiter", "/"))
        try:
            max_keys = max(1, min(int(params.get("MaxKeys") or 1000), 1000))
            after = str(params.get("StartAfter") or "")
            if params.get("ContinuationToken"):
                token = str(params["ContinuationToken"])
                after = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        except ValueError as exc:
            raise BadInput(
                "Invalid MaxKeys or ContinuationToken: use the NextContinuationToken a listing gave.",
                reason="invalid-param",
            ) from exc
        items: dict[str, int | None] = {}
        for f in self.engine.datasets.list_files(ds, v.version, prefix=want):
            rest = f.path[len(want) :]
            if delimiter and delimiter in rest:
                items.setdefault(lead + want + rest.split(delimiter, 1)[0] + delimiter, None)
            else:
                items[lead + f.path] = f.size
        names = [n for n in sorted(items) if n > after]
        shown, more = names[:max_keys], len(names) > max_keys
        out = [
            f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="{S3_XMLNS}">',
            f"<Name>{escape(ds.id)}:{v.version}</Name><Prefix>{escape(prefix)}</Prefix>",
            f"<KeyCount>{len(shown)}</KeyCount><MaxKeys>{max_keys}</MaxKeys>",
            f"<Delimiter>{escape(delimiter)}</Delimiter>" if delimiter else "",
            f"<IsTruncated>{str(more).lower()}</IsTruncated>",
        ]
        for name in shown:
            if items[name] is None:
                out.append(f"<CommonPrefixes><Prefix>{escape(name)}</Prefix></CommonPrefixes>")
            else:
                out.append(
                    f"<Contents><Key>{escape(name)}</Key><Size>{items[name]}</Size>"
                    "<StorageClass>STANDARD</StorageClass></Contents>"
                )
        if more:
            token = base64.urlsafe_b64encode(shown[-1].encode()).decode().rstrip("=")
            out.append(f"<NextContinuationToken>{token}</NextContinuationToken>")
        out.append("</ListBucketResult>")
        return "".join(out)

    @allow_unauthenticated
    async def put(self):
        p = self.grant["p"]

        def write(path: str) -> str:
            ds, v = self._target(write=True)
            if self.grant["op"] == "putObject":
                self.engine.datasets.put_file(ds, v.version, p["Key"], path)
                return _md5(path)
            folder = upload_folder(self.engine, p["UploadId"], ds.id, v.version, p["Key"])
            part = folder / str(p["PartNumber"])
            replaced = part.stat().st_size if part.is_file() else 0
            # parts wait in the data home, outside the store: they count against its quota all the same
            self.engine.store(ds.storage_provider_id).check_quota(
                uploads_size(self.engine) - replaced + os.path.getsize(path), self.engine.team_prefix()
            )
            etag = _md5(path)
            shutil.copyfile(path, part)
            return etag

        etag = await self.spooled(write, self.grant["sp"])
        self.set_header("ETag", f'"{etag}"')
        self.finish()

    @allow_unauthenticated
    async def delete(self):
        def remove():
            ds, v = self._target(write=True)
            self.engine.datasets.delete_file(ds, v.version, self.grant["p"]["Key"])

        await self.call(remove)
        self.set_status(204)
        self.finish()

    def render_error(self, status: int, exc: BaseException | None) -> None:
        """S3's error XML; the CLI prints it."""
        message, _ = self.error_words(status, exc)
        if isinstance(exc, GradientError):
            code = {404: "NoSuchKey", 409: "InvalidObjectState", 413: "QuotaExceeded"}.get(exc.status, exc.reason)
        elif isinstance(exc, tornado.web.HTTPError):
            code = {403: "AccessDenied", 405: "MethodNotAllowed"}.get(status, "InvalidRequest")
        else:
            code = "InternalError"
        self.set_header("Content-Type", "application/xml")
        if self.request.method == "HEAD":
            self.finish()
            return
        self.finish(
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message></Error>"
        )

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, (GradientError, tornado.web.HTTPError)):
            status = getattr(value, "status", getattr(value, "status_code", ""))
            self.log.warning("%s gradient/compat/s3 -> %s", self.request.method, status)
        else:
            super().log_exception(typ, value, tb)


def _md5(path: str) -> str:
    """S3's ETag of a single-part object (the CLI compares it); read on a worker thread, not the event loop."""
    h = hashlib.md5(usedforsecurity=False)
    for chunk in file_chunks(path):
        h.update(chunk)
    return h.hexdigest()
