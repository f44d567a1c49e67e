"""The URLs the compat API signs and serves itself (route `s3`): an HMAC over a JSON grant."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import time
from urllib.parse import urlencode

import tornado.web

from ...engine import Engine

OWN_URL_SECONDS = 15 * 60  # URLs this extension serves


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
        encoded = base64.urlsafe_b64encode(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
        grant = encoded.decode().rstrip("=")
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
