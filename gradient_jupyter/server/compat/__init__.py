"""Gradient's own REST API under <base_url>gradient/compat/, so the retired `gradient` CLI (PyPI 2.0.6) works unchanged.

The CLI sends `X-API-Key: <key>`: here that key is the Jupyter token, checked by Jupyter's own authentication.
Its file commands never send bytes to the API: they ask `datasets/{id}/versions/{v}/s3/preSignedUrls` for S3 URLs.
Writes of an uncommitted version get real presigned URLs of the provider's endpoint, each for a fresh key under the
version's uploads/ (where no manifest ever points): the commit verifies and copies the bytes into data/, so a write
URL used again after the commit changes nothing committed. Reads and listings are answered from the manifest (a
version's unchanged files live under earlier versions' keys) by short-lived URLs this extension signs and serves
itself (route `s3`), streaming the bytes through the same check as the REST API; so are the embedded store's writes.
See docs/threat-model.md.

The package: api.py (Gradient's resources), s3.py (presigned URLs, the S3 answers, embedded multipart uploads),
signer.py (the URLs this extension signs). Shared with the REST API: server/base.py, server/service.py and
engine/uploads.py.
"""

from __future__ import annotations

from jupyter_server.utils import url_path_join

from .api import (
    DatasetHandler,
    DatasetsHandler,
    PresignHandler,
    ProviderHandler,
    ProvidersHandler,
    RefHandler,
    TagHandler,
    TagsHandler,
    UnknownHandler,
    VersionHandler,
    VersionsHandler,
)
from .s3 import SignedS3Handler
from .signer import UrlSigner

__all__ = ["ROUTES", "UrlSigner", "compat_handlers"]

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
