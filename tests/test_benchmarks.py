"""The benchmark script runs end to end in --quick mode (no timing is asserted: speed is for benchmarks/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_benchmark_runs_and_reports_ours(tmp_path):
    out = tmp_path / "results.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--quick",
            "--files",
            "20",
            "--modes",
            "proxy",
            "--workloads",
            "small,change",
            "--tools",
            "ours",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {(r["workload"], r["mode"], r["tool"]): r for r in json.loads(out.read_text())["results"]}
    for workload in ("small save", "small load", "change save"):
        r = results[(workload, "proxy", "ours")]
        assert not r["error"] and len(r["seconds"]) == 1 and r["rss"][0] > 0
    # The new version with 1% changed sends exactly the changed files' bytes, as the table's target row says.
    assert "| 1% change, proxy: bytes sent" in proc.stdout
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| 1% change, proxy: bytes sent"))
    assert row.endswith("| met |"), row
    assert "latency proxy: " in proc.stdout and " connections delayed" in proc.stdout


def test_latency_proxy_passes_bytes_intact_both_ways_on_keep_alive_connections():
    """The proxy works on TCP: it parses nothing, keeps each connection as the client made it (keep-alive requests
    stay on one connection) and passes every byte in order; its delay is for benchmarks/, not asserted here."""
    import http.client
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from latency_proxy import LatencyProxy

    class Echo(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def do_PUT(self):
            if self.headers.get("Transfer-Encoding") == "chunked":
                body = b""
                while size := int(self.rfile.readline().strip(), 16):
                    body += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
            else:
                body = self.rfile.read(int(self.headers["Content-Length"]))
            reply = str(len(body)).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_GET = do_PUT

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with LatencyProxy(("127.0.0.1", server.server_address[1]), 0.001) as proxy:
            conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
            answers = []
            for body, chunked in ((b"x" * 300_000, False), (b"", False), (iter([b"ab", b"cde"]), True)):
                conn.request(
                    "PUT",
                    "/k",
                    body=body,
                    encode_chunked=chunked,
                    headers={"Transfer-Encoding": "chunked"} if chunked else {},
                )
                answers.append(conn.getresponse().read())
            conn.close()
            assert answers == [b"300000", b"0", b"5"] and proxy.connections == 1
            big = os.urandom(3 * 1024 * 1024)
            second = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
            second.request("PUT", "/k", body=big)
            assert second.getresponse().read() == str(len(big)).encode() and proxy.connections == 2
            second.close()
            assert proxy.bytes_up > 300_000 + len(big) and proxy.bytes_down > 0
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_read_in_place_benchmark_runs_small(tmp_path):
    """benchmarks/read_in_place.py end to end on a small file (its own SeaweedFS); the figures are not asserted."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "read_in_place.py"),
            "--size-mib",
            "16",
            "--block-mib",
            "4",
            "--runs",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for row in ("ours cold", "s3fs", "ours warm", "local file"):
        assert any(line.startswith(row) for line in proc.stdout.splitlines()), proc.stdout
    assert "one 1 MiB range read cold: 4 MiB fetched" in proc.stdout  # one block, not the file
    assert not list(tmp_path.glob("gj-read-bench-*"))  # its server and files are gone


@pytest.mark.slow
def test_cluster_benchmark_runs_small(tmp_path):
    """benchmarks/cluster.py end to end on a small table (its own SeaweedFS and Dask workers); figures not asserted."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "cluster.py"), "--size-mib", "8", "--parts", "4", "--runs", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for row in ("write s3fs", "write ours", "read s3fs", "read ours"):
        assert any(line.startswith(row) for line in proc.stdout.splitlines()), proc.stdout
    assert "for 8 files of 1 KiB" in proc.stdout
    assert not list(tmp_path.glob("gj-cluster-bench-*"))  # its server and files are gone
