"""One bad provider never blocks anyone's work: a wrong secret, a dead endpoint or a bucket that never answers
only costs the listings a warning naming it, and never stalls the REST API."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import pytest
from tornado.httpclient import AsyncHTTPClient

from gradient_jupyter.engine import Engine, GradientStorage

from .helpers import cli, free_port, make_folder


class BlackHole:
    """A TCP server on 127.0.0.1 that accepts connections and never answers, until released."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.endpoint = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def release(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; until then the port still listens
        except OSError:
            pass
        self.sock.close()
        for conn in self.accepted:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes the client now; a bare close leaves it to its timeout
            except OSError:
                pass
            conn.close()


@pytest.fixture
def black_hole():
    hole = BlackHole()
    yield hole
    hole.release()


def test_a_wrong_secret_and_a_dead_endpoint_block_no_save_and_listings_name_them(seaweed_bucket, tmp_path):
    server, bucket = seaweed_bucket
    assert (
        cli(
            "storageProviders",
            "create",
            "s3",
            "--name",
            "typo-secret",
            "--bucket",
            bucket,
            "--endpoint",
            server.endpoint,
            "--accessKey",
            server.access_key,
            "--secretAccessKey",
            "wrong",
        ).returncode
        == 0
    )
    assert (
        cli(
            "storageProviders",
            "create",
            "s3",
            "--name",
            "dead",
            "--bucket",
            "gone",
            "--endpoint",
            f"http://127.0.0.1:{free_port()}",
            "--accessKey",
            "k",
            "--secretAccessKey",
            "s",
        ).returncode
        == 0
    )
    data = make_folder(tmp_path / "data", {"a.csv": b"1"})
    saved = cli("save", "fresh", data, "--provider", "Gradient Managed")
    assert saved.returncode == 0, saved.stderr
    assert cli("save", "fresh", data).returncode == 0  # found where it lives, though the others cannot be read
    other = cli("save", "other", data)  # a new name without --provider goes to the default, saying who was not asked
    assert other.returncode == 0, other.stderr
    assert "Warning: Storage provider 'typo-secret' could not be searched" in other.stdout
    assert "Warning: Storage provider 'dead' could not be searched" in other.stdout
    listing = cli("datasets", "list")
    assert listing.returncode == 0 and "fresh" in listing.stdout
    warnings = [line for line in listing.stderr.splitlines() if line.startswith("Warning: storage provider")]
    assert len(warnings) == 2, listing.stderr
    typo = next(w for w in warnings if "'typo-secret'" in w)
    dead = next(w for w in warnings if "'dead'" in w)
    assert "unreachable" not in typo and ("secret" in typo.lower() or "signature" in typo.lower()), typo
    assert "refused" in dead.lower() or "connect" in dead.lower(), dead


def test_a_dataset_name_is_unique_across_providers_and_a_dead_one_is_passed_over(seaweed_bucket, tmp_path):
    server, bucket = seaweed_bucket
    s3 = ["--endpoint", server.endpoint, "--accessKey", server.access_key, "--secretAccessKey", server.secret_key]
    assert cli("storageProviders", "create", "s3", "--name", "sw", "--bucket", bucket, *s3).returncode == 0
    dead = ["--bucket", "gone", "--endpoint", f"http://127.0.0.1:{free_port()}", "--accessKey", "k"]
    assert cli("storageProviders", "create", "s3", "--name", "dead", *dead, "--secretAccessKey", "s").returncode == 0
    assert cli("datasets", "create", "--name", "mnist").returncode == 0  # in Gradient Managed, the default
    twice = cli("datasets", "create", "--name", "mnist", "--storageProviderId", "sw")
    assert twice.returncode == 1 and "exists already" in twice.stderr and "Gradient Managed" in twice.stderr
    assert cli("datasets", "create", "--name", "cifar", "--storageProviderId", "sw").returncode == 0
    renamed = cli("datasets", "update", "--id", "cifar", "--name", "MNIST")
    assert renamed.returncode == 1 and "exists already" in renamed.stderr, renamed.stderr
    listing = cli("datasets", "list")
    assert listing.stdout.count("mnist") == 1 and "cifar" in listing.stdout, listing.stdout
    data = make_folder(tmp_path / "data", {"a.csv": b"1"})
    dry = cli("save", "fresh", data, "--dry-run")  # as save itself, the dead provider is passed over
    assert dry.returncode == 0 and "would make a new version" in dry.stdout and "A a.csv" in dry.stdout, dry.stderr
    assert "fresh" not in cli("datasets", "list").stdout
    refused = cli("storageProviders", "delete", "--id", "dead")  # cannot tell whether datasets live there
    assert refused.returncode == 1 and "Could not check" in refused.stderr and "--force" in refused.stderr
    assert cli("storageProviders", "delete", "--id", "dead", "--force").returncode == 0


class ConnectHole:
    """A TCP port on 127.0.0.1 whose connects never complete, like a host behind a firewall that drops packets: a
    listening socket that never accepts, its queue filled, so the kernel drops every further SYN."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.endpoint = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.fillers: list[socket.socket] = []
        for _ in range(64):
            probe = socket.socket()
            probe.settimeout(0.5)
            try:
                probe.connect(self.sock.getsockname())
            except TimeoutError:
                probe.close()
                return  # full: a connect now waits forever
            self.fillers.append(probe)  # it took a place in the queue
        raise AssertionError("the listening socket's queue never filled")

    def close(self):
        for s in [*self.fillers, self.sock]:
            s.close()


@pytest.fixture
def connect_hole():
    hole = ConnectHole()
    yield hole
    hole.close()


def test_a_provider_whose_connect_never_answers_is_named_and_the_others_are_listed(tmp_path, connect_hole):
    engine = Engine(GradientStorage())
    for name in ("hole-1", "hole-2"):  # asked at once, each passed over after its short tries
        engine.registry.create(
            name, {"bucket": "never", "endpoint": connect_hole.endpoint, "accessKey": "k", "secretAccessKey": "s"}
        )
    saved = cli("save", "kept", make_folder(tmp_path / "data", {"a.csv": b"1"}), "--provider", "Gradient Managed")
    assert saved.returncode == 0, saved.stderr
    listing = cli("datasets", "list")
    assert listing.returncode == 0 and "kept" in listing.stdout, listing.stderr
    warnings = sorted(line for line in listing.stderr.splitlines() if line.startswith("Warning: storage provider"))
    assert len(warnings) == 2, listing.stderr
    for name, warning in zip(("hole-1", "hole-2"), warnings, strict=True):
        assert f"'{name}' was skipped" in warning and "did not answer" in warning, warning
        assert warning.endswith(f"to see what is wrong: gradient-jupyter storageProviders check --id {name}")


EXTENSION = {"jpserver_extensions": {"gradient_jupyter": True}}


@pytest.fixture
def jp_server_config():
    # the bucket that never answers is waited on for a minute: every request below stays in flight until released
    return {"ServerApp": EXTENSION, "GradientStorage": {"lookup_timeout": 60.0}}


async def test_the_provider_list_answers_while_16_requests_hang_on_a_black_hole(jp_serverapp, jp_fetch, black_hole):
    engine = Engine(GradientStorage())
    engine.registry.create(
        "hole", {"bucket": "never", "endpoint": black_hole.endpoint, "accessKey": "k", "secretAccessKey": "s"}
    )
    client = AsyncHTTPClient(force_instance=True, max_clients=32)  # the default client runs 10 at a time
    url = f"{jp_serverapp.connection_url.rstrip('/')}/gradient/api/datasets"
    headers = {"Authorization": f"token {jp_serverapp.identity_provider.token}"}
    hanging = [
        asyncio.ensure_future(client.fetch(url, headers=headers, raise_error=False, request_timeout=300))
        for _ in range(16)
    ]
    while len(black_hole.accepted) < 16:  # every one of them is waiting on the bucket
        await asyncio.sleep(0.05)
    started = time.monotonic()
    providers = await jp_fetch("gradient", "api", "storage-providers")
    took = time.monotonic() - started
    assert providers.code == 200 and not any(h.done() for h in hanging)  # answered while all 16 still hang
    print(f"storage-providers answered in {took:.3f} s with 16 requests on a black-hole bucket")
    black_hole.release()
    answers = await asyncio.gather(*hanging)
    client.close()
    for r in answers:  # the bucket went away: each listing skips it, naming it
        assert r.code == 200, r.body
        assert [w["storageProviderName"] for w in json.loads(r.body)["warnings"]] == ["hole"]


def connections_so_far(hole: BlackHole) -> int:
    """The connections the hole has accepted, not counting this function's own. A socket's accept queue is first
    in, first out: once a connection made here is accepted, every earlier one has been counted."""
    marker = socket.create_connection(hole.sock.getsockname())
    me = marker.getsockname()

    def peer(conn):
        try:
            return conn.getpeername()
        except OSError:
            return None

    ceiling = time.monotonic() + 120  # a condition waited for; the time is only a ceiling
    try:
        while not any(peer(c) == me for c in list(hole.accepted)):
            assert time.monotonic() < ceiling, "the black hole stopped accepting connections"
            time.sleep(0.01)
    finally:
        marker.close()
    hole.markers = getattr(hole, "markers", 0) + 1
    return len(hole.accepted) - hole.markers


def test_work_on_a_dataset_by_id_never_waits_for_a_provider_that_does_not_answer(tmp_path, black_hole):
    """The panel and the words name a dataset by id once it is listed: its versions, files and tags are read from
    the provider it lives in, and a silent provider is not asked again (each ask would cost its timeout)."""
    engine = Engine(GradientStorage())
    engine.registry.create(
        "silent", {"bucket": "never", "endpoint": black_hole.endpoint, "accessKey": "k", "secretAccessKey": "s"}
    )
    saved = cli("save", "kept", make_folder(tmp_path / "data", {"a.csv": b"1"}), "--provider", "Gradient Managed")
    assert saved.returncode == 0, saved.stderr
    ds_id, version = saved.stdout.split()[1].split(":")
    listed = [d.id for d in engine.datasets.list()]  # asks every provider, the silent one included
    asked = connections_so_far(black_hole)
    assert listed == [ds_id] and asked > 0
    assert len(engine.datasets.list_versions(ds_id)) == 1  # this process saw where it lives
    versions = cli("datasets", "versions", "list", "--id", ds_id)  # another process: from the data home's hints
    assert versions.returncode == 0 and version in versions.stdout, versions.stderr
    assert connections_so_far(black_hole) == asked  # the silent provider was not asked again
