"""What both server APIs share: the engine on the extension's threads, JSON bodies, the one place errors become
an HTTP answer, streaming uploads into a spool file, and the one verified download streamer.

The REST API (handlers.py) and Gradient's compat API (compat/) differ only in routes, JSON envelopes and how an
error is rendered (`render_error`).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http.client import responses
from typing import IO, Any, cast

import tornado.web
from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from tornado.http1connection import HTTP1Connection
from tornado.iostream import StreamClosedError

from ..engine import BadInput, Engine, GradientError
from ..engine.records import BadRecord, read_json

AUTH_RESOURCE = "gradient"
SPOOL_CHUNK = 1024 * 1024  # upload bytes gathered in memory before they go to the spool file
MAX_JSON = 256 * 1024  # far above any real request body; larger ones are refused before parsing
MAX_UPLOAD = 5 * 1024**4  # S3's largest object; the server's max_body_size would stop big uploads otherwise
DRAIN_LIMIT = 1024 * 1024  # a refused upload body up to this size is read first, so the client gets the answer
UNEXPECTED = "Unexpected server error; the Jupyter server log has the details."
_TYPE_NAMES = {str: "a string", bool: "true or false", dict: "an object", list: "an array"}


def _json_type(value) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    return next((name for kind, name in _TYPE_NAMES.items() if isinstance(value, kind)), "null")


class EngineHandler(JupyterHandler):
    """The engine, and blocking calls run on the extension's threads (never on the event loop)."""

    @property
    def engine(self) -> Engine:
        return self.settings["gradient_engine"]

    async def call(self, fn, *args, **kwargs):
        """Run a blocking engine call in the extension's thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.settings["gradient_executor"], partial(fn, *args, **kwargs))

    async def transfer(self, provider_id: str, fn, *args, **kwargs):
        """Run a call that moves a file's bytes to or from a provider's bucket in that provider's own bounded pool
        (`TransferPools`), never on the API's threads: downloads held by a bucket that stalls wait there, and every
        other request still gets a thread."""
        loop = asyncio.get_running_loop()
        pool = self.settings["gradient_transfer_pools"].pool(provider_id)
        return await loop.run_in_executor(pool, partial(fn, *args, **kwargs))

    async def call_local(self, fn, *args, **kwargs):
        """Run a call that touches only the data home (the registry), never a store, in a pool of its own: it
        answers at once even while every store thread waits on a bucket that does not answer."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.settings["gradient_local_executor"], partial(fn, *args, **kwargs))

    # -- the one place errors become an HTTP answer -------------------------------------------------------------
    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, GradientError):
            status_code = exc.status
        self.set_status(status_code)
        self.render_error(status_code, exc)

    def render_error(self, status: int, exc: BaseException | None) -> None:
        """Each API's own error body: `message` and `reason` of `error_words`, in its envelope."""
        message, reason = self.error_words(status, exc)
        self.finish(json.dumps({"message": message, "reason": reason}))

    @staticmethod
    def error_words(status: int, exc: BaseException | None) -> tuple[str, str]:
        """(message, reason) safe to show: the engine's words, tornado's, or no detail of an unexpected error."""
        if isinstance(exc, GradientError):
            return exc.message, exc.reason
        if isinstance(exc, tornado.web.HTTPError):
            phrase = responses.get(status, "Error")
            return exc.get_message() or phrase, phrase.lower().replace(" ", "-")
        return UNEXPECTED, "server-error"

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, GradientError):  # expected refusals: a line, not a traceback
            self.log.warning("%s %s -> %s %s", self.request.method, self.request.path, value.status, value.reason)
        else:
            super().log_exception(typ, value, tb)

    # -- the one verified download streamer ---------------------------------------------------------------------
    async def send_verified(self, chunks: Iterator[bytes], provider_id: str) -> bool:
        """Write what a verifying generator yields (engine/datasets/verify.py `verified_stream`) with one chunk of
        look-ahead, so the last bytes go out only after the engine checked the whole file: a client never receives
        a complete body of bad bytes. A failure before the first byte raises (an ordinary error answer); after it,
        the connection is cut so the body is visibly short. The generator is always closed. Answers whether the
        whole body was written (the caller then finishes). The chunks are read on `provider_id`'s transfer pool."""
        read = partial(next, chunks, None)
        sent = False
        try:
            pending = await self.transfer(provider_id, read)
            while pending is not None:
                following = await self.transfer(provider_id, read)
                if following is None:
                    break
                self.write(pending)
                await self.flush()
                sent = True
                pending = following
            if pending:
                self.write(pending)
            return True
        except GradientError as exc:
            if not sent:
                raise
            self.log.error("Download of %s aborted: %s", self.request.path, exc.message)
            self.connection().close()  # no clean end: the client sees a truncated body, not a file
            return False
        except StreamClosedError:
            return False  # the client went away
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                await self.transfer(provider_id, close)

    def connection(self) -> HTTP1Connection:
        return cast(HTTP1Connection, self.request.connection)


class GradientHandler(EngineHandler, APIHandler):
    """Base of the JSON API handlers: the engine, JSON in and out, and the error mapping."""

    auth_resource = AUTH_RESOURCE

    def person(self) -> str:
        """Who asked: jupyter_server's identity of this request (its IdentityProvider; JupyterHub's user under a
        hub), for `createdBy.user`."""
        return self.current_user.username

    def reply(self, data, status: int = 200) -> None:
        self.set_status(status)
        if status == 204:
            self.finish()
        else:
            self.finish(json.dumps(data))

    def json_body(self, fields: Mapping[str, type], required: tuple[str, ...] = ()) -> dict:
        """The request body as a JSON object with only `fields` (name -> type); null means not given."""
        raw = self.request.body or b"{}"
        if len(raw) > MAX_JSON:
            raise BadInput(
                f"The request body is larger than {MAX_JSON // 1024} KiB: no request of this API needs that much JSON.",
                reason="invalid-json",
            )
        try:
            data = read_json(raw, "request body", MAX_JSON, local=True)  # at most MAX_DEPTH levels deep
        except BadRecord as exc:
            if exc.problem == "not a JSON object":
                raise BadInput("The request body must be a JSON object.", reason="invalid-json") from exc
            raise BadInput(
                f"The request body is not valid JSON ({exc.problem}): send a JSON object.", reason="invalid-json"
            ) from exc
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise BadInput(
                f"Unknown field(s): {', '.join(unknown)}. This endpoint takes: {', '.join(fields)}.",
                reason="unknown-field",
            )
        data = {k: v for k, v in data.items() if v is not None}
        missing = [f for f in required if f not in data]
        if missing:
            raise BadInput(f"Missing field(s): {', '.join(missing)}.", reason="missing-field")
        for name, value in data.items():
            kind = fields[name]
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                # Name the type, never echo the value: it could be a secret in the wrong place.
                raise BadInput(
                    f"Field '{name}' must be {_TYPE_NAMES[kind]}, not {_json_type(value)}.", reason="wrong-type"
                )
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


class StreamingUpload(EngineHandler):
    """A PUT body received chunk by chunk into a spool file in the data home, never whole in memory, written on
    the extension's threads. Concrete handlers are decorated with `tornado.web.stream_request_body`."""

    _spool: IO[bytes] | None = None
    _refusal: GradientError | None = None

    async def prepare(self, *args: Any, **kwargs: Any) -> None:
        # jupyter_server's prepare refuses a PUT by raising (tornado's `authenticated` redirects only GET and HEAD),
        # so a PUT that gets past it has no answer yet.
        await super().prepare(*args, **kwargs)
        if self.request.method != "PUT":
            return
        await self.authorize_upload()
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
        self.connection().set_max_body_size(MAX_UPLOAD)
        self._buffer = bytearray()
        self._spool = await self.call(_open_spool, self.engine.home / "tmp")

    async def authorize_upload(self) -> None:
        """@authenticated and @authorized run only after the body arrived: refuse strangers before the first byte."""
        user = self.current_user
        if not user:
            raise tornado.web.HTTPError(403)
        if not await ensure_async(self.authorizer.is_authorized(self, user, "write", AUTH_RESOURCE)):
            raise tornado.web.HTTPError(403, f"User is not authorized to write on resource: {AUTH_RESOURCE}.")

    async def check_upload(self) -> None:
        """Refuse a bad upload before its body is read (subclasses check their path arguments)."""

    async def data_received(self, chunk: bytes) -> None:
        if self._spool is None:  # refused in prepare: tornado still drains the body
            return
        self._buffer += chunk
        if len(self._buffer) >= SPOOL_CHUNK:
            data, self._buffer = bytes(self._buffer), bytearray()
            await self.call(self._spool.write, data)

    def check_refused(self) -> None:
        """Answer what `check_upload` refused, before anything else is looked up (the body was drained)."""
        if self._refusal is not None:
            raise self._refusal

    async def spooled(self, use: Callable[[str], Any], provider_id: str) -> Any:
        """Flush what is left of the body, then `use(path)` on `provider_id`'s transfer pool (it sends the bytes to
        that provider's bucket); the spool file is removed afterwards."""
        self.check_refused()
        spool, self._spool = self._spool, None  # ours now: a client hanging up must not pull it from under `use`
        if spool is None:
            raise BadInput("The upload has no body to store.", reason="no-body")
        try:
            await self.call(spool.write, bytes(self._buffer))
            await self.call(spool.close)
            return await self.transfer(provider_id, use, spool.name)
        finally:
            await self.call(_remove, spool)

    def _discard_spool(self) -> None:
        spool, self._spool = self._spool, None
        if spool is not None:
            self.settings["gradient_executor"].submit(_remove, spool)

    def on_finish(self) -> None:
        self._discard_spool()

    def on_connection_close(self) -> None:
        self._discard_spool()
        super().on_connection_close()


class TransferPools:
    """A bounded thread pool per storage provider for the bytes of downloads and uploads, made when first needed.
    Twenty downloads from a bucket that stalled once held all 16 API threads for ~75 s (a request to a healthy
    provider took 72.7 s); now they hold their provider's threads only, and the store's read timeout ends each."""

    def __init__(self, threads: int):
        self.threads = threads
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._lock = threading.Lock()

    def pool(self, provider_id: str) -> ThreadPoolExecutor:
        with self._lock:
            if provider_id not in self._pools:
                self._pools[provider_id] = ThreadPoolExecutor(self.threads, thread_name_prefix="gradient-bytes")
            return self._pools[provider_id]

    def shutdown(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.shutdown(wait=False, cancel_futures=True)


def _open_spool(folder) -> IO[bytes]:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return tempfile.NamedTemporaryFile(dir=folder, prefix="upload-", delete=False)


def _remove(spool: IO[bytes]) -> None:
    spool.close()
    try:
        os.unlink(spool.name)
    except FileNotFoundError:
        pass
