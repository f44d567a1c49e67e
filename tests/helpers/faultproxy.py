"""A small HTTP forwarder on 127.0.0.1 that can inject faults (S3 error replies, connection resets) between our
client and a moto server. Run in-process (FaultProxy) or as a subprocess
(`python -m tests.helpers.faultproxy PORT UPSTREAM`) that a test can kill -9 to make "the server" die mid-transfer."""

from __future__ import annotations

import http.client
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class FaultProxy:
    def __init__(self, upstream: str, port: int = 0):
        self.upstream = urlsplit(upstream)
        self.lock = threading.Lock()
        # next faults to inject, one per request: "503", "500", "reset", "lose-answer", "short-body" (the first half
        # of the answer's body, its headers as they were: a store lying about what it sends)
        self.plan: list[str] = []
        self.refuse_checksums = ""  # an S3 error code (e.g. InvalidRequest): the 400 answer to x-amz-checksum-* headers
        self.ignore_create_only = False  # a refused create-only PUT (412) answered as done: no conditional writes
        # (region, bucket): the bucket answers as an AWS bucket in that region would, reached with the proxy's URL
        # and the bucket as the endpoint (how obstore and boto3 take AWS_ENDPOINT_URL_S3 with no endpoint
        # configured): every answer names the region (x-amz-bucket-region), a request signed for another region is
        # refused (400 AuthorizationHeaderMalformed), and boto3's HEAD bucket (the endpoint's path, then the
        # bucket's name) is answered here, with the region, as S3 answers it even without access.
        self.region: tuple[str, str] | None = None
        self.rule = None  # or (method, path) -> fault or None, asked when the plan is empty
        self.injected: list[str] = []
        self.requests = 0
        self.seen: list[tuple[str, int]] = []  # (S3 operation, request body bytes) of every request, in order
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                op = operation(self.command, self.path, self.headers)
                region = proxy.region
                if region and self.command == "HEAD" and urlsplit(self.path).path == f"/{region[1]}/{region[1]}":
                    with proxy.lock:
                        proxy.seen.append(("HeadBucket", 0))
                    self.send_response(200)
                    self.send_header("x-amz-bucket-region", region[0])
                    self.end_headers()
                    return
                with proxy.lock:
                    proxy.requests += 1
                    # a planned fault applies to the next request, or to the next of one operation ("fault:Operation")
                    planned = next((f for f in proxy.plan[:1] if ":" not in f or f.split(":")[1] == op), None)
                    if planned:
                        proxy.plan.remove(planned)
                    fault = planned.split(":")[0] if planned else None
                scope = self.headers.get("Authorization", "").split("Credential=", 1)[-1].split("/")
                if fault is None and region and region[0] not in scope[2:3]:
                    fault = "wrong-region"
                if fault is None and proxy.rule is not None:  # outside the lock: a rule may hold its request
                    fault = proxy.rule(self.command, self.path)
                if fault:
                    with proxy.lock:
                        proxy.injected.append(fault)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy.lock:
                    proxy.seen.append((op, len(body)))
                refusal = proxy.refuse_checksums
                if refusal and any(k.lower().startswith("x-amz-checksum-") for k in self.headers):
                    fault = "400"
                if fault == "reset":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault and fault not in ("lose-answer", "short-body"):
                    code = {
                        "503": "SlowDown",
                        "500": "InternalError",
                        "400": refusal,
                        "wrong-region": "AuthorizationHeaderMalformed",
                    }[fault]
                    named = f"<Region>{region[0]}</Region>" if region and fault == "wrong-region" else ""
                    payload = (
                        f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>injected</Message>{named}</Error>"
                    ).encode()
                    self.send_response(400 if fault == "wrong-region" else int(fault))
                    if region:
                        self.send_header("x-amz-bucket-region", region[0])
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if fault == "lose-answer":  # the store did the work, but its answer never arrives
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault == "short-body":
                    data = data[: len(data) // 2]
                status, headers = resp.status, resp.getheaders()
                if proxy.ignore_create_only and status == 412 and self.command == "PUT":
                    status, data = 200, b""
                    headers = [(k, v) for k, v in headers if k.lower() != "content-type"] + [("ETag", '"ignored"')]
                self.send_response(status)
                if region:
                    self.send_header("x-amz-bucket-region", region[0])
                for k, v in headers:
                    if k.lower() not in HOP and (k.lower() != "content-length" or self.command == "HEAD"):
                        self.send_header(k, v)  # a HEAD answer's Content-Length is the object's size
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_OPTIONS = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def inject(self, *faults: str):
        with self.lock:
            self.plan.extend(faults)


def operation(method: str, path: str, headers) -> str:
    """The S3 operation name of a request (enough of them for counting what a client sends)."""
    query = urlsplit(path).query
    bucket_only = urlsplit(path).path.strip("/").count("/") == 0
    if method == "PUT":
        if "x-amz-copy-source" in {k.lower() for k in headers}:
            return "CopyObject"
        return "UploadPart" if "partNumber=" in query else "CreateBucket" if bucket_only else "PutObject"
    if method == "POST":
        return (
            "CreateMultipartUpload"
            if "uploads" in query.split("&") or "uploads=" in query
            else "CompleteMultipartUpload"
            if "uploadId=" in query
            else "DeleteObjects"
            if "delete" in query
            else "POST"
        )
    if method == "GET":
        if bucket_only and "uploads" in query.split("&"):
            return "ListMultipartUploads"
        return "ListObjectsV2" if bucket_only else "GetObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId=" in query else "DeleteObject"
    return {"HEAD": "HeadObject"}.get(method, method)


if __name__ == "__main__":
    proxy = FaultProxy(sys.argv[2], int(sys.argv[1]))
    print("ready", flush=True)
    proxy.server.serve_forever()
