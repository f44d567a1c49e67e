"""Trying to break the engine: faults on the wire, a dying server, tampering, concurrent writers, hostile input."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradient_jupyter.engine import (
    BadInput,
    Conflict,
    Engine,
    GradientError,
    GradientStorage,
    IntegrityError,
    StoreError,
)
from gradient_jupyter.engine.content.reader import open_version
from gradient_jupyter.engine.transfer import load, save

from .helpers import free_port, make_folder, read_folder
from .helpers.faultproxy import FaultProxy

pytestmark = pytest.mark.reliability


def provider_via(engine, endpoint, bucket, name="proxied"):
    return engine.registry.create(
        name, {"bucket": bucket, "endpoint": endpoint, "accessKey": "testing", "secretAccessKey": "testing"}
    )


@pytest.fixture
def proxy(s3_bucket):
    endpoint, bucket = s3_bucket
    p = FaultProxy(endpoint).start()
    p.bucket = bucket
    yield p
    p.stop()


def files(n, size=1500):
    return {f"d{i % 4}/f{i}.bin": os.urandom(size) for i in range(n)}


def test_transient_errors_and_resets_are_retried(engine, proxy, tmp_path):
    p = provider_via(engine, proxy.url, proxy.bucket)
    src = make_folder(tmp_path / "src", files(12))
    proxy.inject("503", "500", "reset", "503")
    s = save(engine, "flaky", src, provider=p.id)
    assert proxy.injected == ["503", "500", "reset", "503"]
    proxy.inject("reset", "503")
    load(engine, "flaky", tmp_path / "out")
    assert read_folder(tmp_path / "out") == read_folder(src) and s.version.file_count == 12


def test_persistent_errors_are_reported_plainly_and_commit_nothing(engine, proxy, tmp_path):
    p = provider_via(engine, proxy.url, proxy.bucket)
    engine.datasets.create("down", provider=p.id)
    src = make_folder(tmp_path / "src", files(3))
    proxy.inject(*["503"] * 200)
    with pytest.raises(StoreError, match="SlowDown.*after retries") as info:
        save(engine, "down", src)
    assert info.value.reason == "unavailable" and "Traceback" not in info.value.message
    retried = len(proxy.injected)
    assert 3 <= retried <= 10  # bounded: a few attempts per request, not forever
    proxy.plan.clear()
    assert engine.datasets.list_versions("down") == []


def start_proxy_process(port, upstream):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.faultproxy", str(port), upstream],
        stdout=subprocess.PIPE,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert proc.stdout.readline().strip() == b"ready"
    return proc


def test_server_dies_mid_save_then_returns(engine, s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    port = free_port()
    server = start_proxy_process(port, endpoint)
    p = provider_via(engine, f"http://127.0.0.1:{port}", bucket)
    src = make_folder(tmp_path / "src", files(60, 3000))
    engine.settings.max_concurrency = 4

    def kill_midway(event):
        if event.phase == "upload" and event.files_done >= 20 and server.poll() is None:
            server.kill()
            server.wait()

    with pytest.raises(StoreError) as info:
        save(engine, "phoenix", src, provider=p.id, progress=kill_midway)
    assert info.value.reason in ("unreachable", "timeout")
    server = start_proxy_process(port, endpoint)  # the server comes back, its data intact
    try:
        assert engine.datasets.list_versions("phoenix") == []  # the failed save committed nothing
        again = save(engine, "phoenix", src)
        assert again.bytes_resumed >= 20 * 3000  # what arrived before the crash is not sent again
        assert again.bytes_sent + again.bytes_resumed == 60 * 3000
        load(engine, "phoenix", tmp_path / "out")
        assert read_folder(tmp_path / "out") == read_folder(src)
    finally:
        server.kill()
        server.wait()


def test_load_interrupted_halfway_leaves_no_partial_file(engine, s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    port = free_port()
    server = start_proxy_process(port, endpoint)
    p = provider_via(engine, f"http://127.0.0.1:{port}", bucket)
    save(engine, "halfway", make_folder(tmp_path / "src", files(40, 5000)), provider=p.id)
    engine.settings.max_concurrency = 4

    def kill_midway(event):
        if event.phase == "download" and event.bytes_done >= 20 * 5000 and server.poll() is None:
            server.kill()
            server.wait()

    dest = tmp_path / "dest"
    try:
        with pytest.raises(StoreError):
            load(engine, "halfway", dest, progress=kill_midway)
        assert not dest.exists() or [p for p in dest.rglob("*") if p.is_file()] == []
    finally:
        server.kill()
        server.wait()


@pytest.mark.parametrize("damage", ["changed", "truncated", "deleted", "grown"])
def test_tampered_objects_are_detected_and_named(engine, s3_bucket, tmp_path, damage):
    endpoint, bucket = s3_bucket
    p = provider_via(engine, endpoint, bucket, "direct")
    s = save(
        engine,
        "tampered",
        make_folder(tmp_path / "src", {"keep.txt": b"k" * 100, "victim.txt": b"v" * 100}),
        provider=p.id,
    )
    store = engine.store(p)
    key = engine.datasets.data_key(s.dataset.id, s.version.version, "victim.txt")
    if damage == "deleted":
        store.delete([key])
    else:
        store.put_bytes(key, {"changed": b"V" + b"v" * 99, "truncated": b"v" * 50, "grown": b"v" * 101}[damage])
    with pytest.raises(IntegrityError, match="victim.txt") as info:
        load(engine, "tampered", tmp_path / "dest")
    assert ("missing" if damage == "deleted" else "behind our back") in info.value.message
    assert not (tmp_path / "dest").exists()
    assert open_version(engine, "tampered").read_bytes("keep.txt") == b"k" * 100


@pytest.mark.parametrize("damage", ["changed", "truncated", "deleted"])
def test_tampered_large_object_fetched_in_ranges_is_detected(engine, s3_bucket, tmp_path, damage):
    endpoint, bucket = s3_bucket
    p = provider_via(engine, endpoint, bucket, "direct")
    engine.settings.multipart_threshold = engine.settings.part_size = 5 * 1024**2  # 3 ranges, verified as they land
    data = os.urandom(11 * 1024**2)
    s = save(engine, "tampered-large", make_folder(tmp_path / "src", {"big.bin": data}), provider=p.id)
    key = engine.datasets.data_key(s.dataset.id, s.version.version, "big.bin")
    middle = 7 * 1024**2
    bad = data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :] if damage == "changed" else data[:middle]
    if damage == "deleted":
        engine.store(p).delete([key])
    else:
        engine.store(p).put_bytes(key, bad)
    with pytest.raises(IntegrityError, match="big.bin"):
        load(engine, "tampered-large", tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize(
    "victim, says",
    [("big.bin", r"'big\.bin'.*asked, 2621440 bytes answered"), ("small.txt", r"'small\.txt'.*got 2500 bytes")],
)
def test_a_store_that_sends_less_than_it_says_fails_the_load_and_writes_nothing(engine, proxy, tmp_path, victim, says):
    """A body cut short under headers that claim the whole answer (a lying store, or a proxy in the way): whole
    objects and the byte ranges of a large one alike."""
    p = provider_via(engine, proxy.url, proxy.bucket)
    src = make_folder(tmp_path / "src", {"big.bin": os.urandom(11 * 1024**2), "small.txt": b"s" * 5000})
    save(engine, "short", src, provider=p.id)  # one PUT a file
    engine.settings.multipart_threshold = engine.settings.part_size = 5 * 1024**2  # big.bin loads as 3 ranges
    cut = []

    def rule(method, path):
        if method == "GET" and path.split("?")[0].endswith("/" + victim) and not cut:
            cut.append(path)
            return "short-body"
        return None

    proxy.rule = rule
    with pytest.raises(IntegrityError, match=says):
        load(engine, "short", tmp_path / "dest")
    assert cut and "short-body" in proxy.injected
    assert not (tmp_path / "dest").exists()  # nothing written: no file, no temporary file, no folder
    proxy.rule = None
    load(engine, "short", tmp_path / "dest")
    assert read_folder(tmp_path / "dest") == read_folder(src)


def test_a_large_load_failing_midway_leaves_nothing(engine, proxy, tmp_path):
    """One range of a large file fails for good while the others land: no partial file, no temporary file; the
    small files fetched before it are not left either."""
    p = provider_via(engine, proxy.url, proxy.bucket)
    files = {"big.bin": os.urandom(16 * 1024**2), **{f"d/f{i}.txt": os.urandom(2000) for i in range(10)}}
    src = make_folder(tmp_path / "src", files)
    save(engine, "midway", src, provider=p.id)  # one PUT a file
    engine.settings.multipart_threshold = engine.settings.part_size = 5 * 1024**2  # big.bin loads as 4 ranges
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "mine.txt").write_bytes(b"the user's own file")
    ranges = []

    def rule(method, path):
        if method == "GET" and path.split("?")[0].endswith("/big.bin"):
            with proxy.lock:
                ranges.append(path)
                return "500" if len(ranges) > 1 else None  # the first range lands, then the store fails for good
        return None

    proxy.rule = rule
    with pytest.raises(StoreError):
        load(engine, "midway", tmp_path / "dest")
    assert len(ranges) > 1
    assert sorted(p.relative_to(tmp_path / "dest").as_posix() for p in (tmp_path / "dest").rglob("*")) == ["mine.txt"]


@pytest.mark.parametrize("forgery", ["other-dataset", "key-outside", "bad-sha", "wrong-version", "not-json"])
def test_forged_manifests_are_refused(engine, tmp_path, forgery):
    real = save(engine, "forged", make_folder(tmp_path / "src", {"a": b"1"}))
    other = save(engine, "victim", make_folder(tmp_path / "src2", {"secret": b"s"}))
    store = engine.store(engine.registry.managed())
    manifest = json.loads(store.get_bytes(engine.datasets.manifest_key(real.dataset.id, real.version.version)))
    v = engine.datasets.create_version(real.dataset)
    manifest["version"] = v.version
    if forgery == "other-dataset":
        manifest["dataset"] = other.dataset.id
    elif forgery == "key-outside":
        manifest["files"][0]["key"] = engine.datasets.data_key(other.dataset.id, other.version.version, "secret")
    elif forgery == "bad-sha":
        manifest["files"][0]["sha256"] = "not-a-hash"
    elif forgery == "wrong-version":
        manifest["version"] = "zzzzzzz"
    body = b"{not json" if forgery == "not-json" else json.dumps(manifest).encode()
    store.put_bytes(engine.datasets.manifest_key(real.dataset.id, v.version), body)
    with pytest.raises(IntegrityError, match="forged or changed"):
        load(engine, f"forged:{v.version}", tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def _writer(home, endpoint, bucket, worker, queue):
    os.environ["GRADIENT_JUPYTER_HOME"] = home
    engine = Engine(GradientStorage())
    out = {"worker": worker}
    folder = os.path.join(os.path.dirname(home), f"w{worker}")  # not in the data home: save refuses that
    os.makedirs(folder)
    for i in range(10):
        with open(os.path.join(folder, f"f{i}.txt"), "wb") as f:
            f.write(f"worker {worker} file {i}\n".encode() * 50)
    try:
        if worker < 8:
            out["version"] = save(engine, "crowded", folder, message=f"w{worker}", provider="moto").version.version
        elif worker < 10:
            versions = engine.datasets.list_versions("crowded")
            out["tag"] = engine.datasets.set_tag("crowded", "fought", versions[worker % len(versions)].version).version
        else:
            engine.datasets.create("contested", provider="moto", description=f"w{worker}")
            out["created"] = True
    except Conflict as exc:
        out["conflict"] = exc.message
    queue.put(out)


def test_eight_writers_two_taggers_two_creators(engine, s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    engine.registry.create("moto", {"bucket": bucket, "endpoint": endpoint})
    base = save(engine, "crowded", make_folder(tmp_path / "base", {"seed": b"0"}), provider="moto")
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(str(engine.home), endpoint, bucket, w, queue)) for w in range(12)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    saved = {r["version"] for r in results if "version" in r}
    assert len(saved) == 8
    listed = {v.version for v in engine.datasets.list_versions("crowded")}
    assert listed == saved | {base.version.version}
    for i, version in enumerate(sorted(saved)):
        load(engine, f"crowded:{version}", tmp_path / f"out{i}")
        assert len(read_folder(tmp_path / f"out{i}")) == 10
    tags = engine.datasets.list_tags("crowded")
    assert [t.name for t in tags] == ["fought"] and tags[0].version in {r["tag"] for r in results if "tag" in r}
    creators = [r for r in results if r["worker"] >= 10]
    assert sum("created" in r for r in creators) == 1 and sum("conflict" in r for r in creators) == 1
    assert [d.name for d in engine.datasets.list()].count("contested") == 1


NAMES = st.text(min_size=0, max_size=120)
PATHS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=60) | st.sampled_from(
    ["../x", "/abs", "a/../b", "a\\b", "a\x00b", ".", "a//b", "C:/x", "%2e%2e/x", "ok/file.txt"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAMES, tag=NAMES, ref=NAMES, path=PATHS)
def test_hostile_input_gives_clear_errors_or_success(engine, name, tag, ref, path):
    """Only GradientErrors with a message, or success: never another exception."""
    d = engine.datasets
    for action in (
        lambda: d.create(name),
        lambda: d.resolve(ref),
        lambda: d.get(ref),
        lambda: d.set_tag("fuzz-target", tag, "aaaaaaa"),
        lambda: d.put_file("fuzz-target", fuzz_version(engine), path, b"x"),
    ):
        try:
            action()
        except GradientError as exc:
            assert exc.status in (400, 404, 409) and exc.message
        except Exception as exc:  # pragma: no cover - the failure we look for
            pytest.fail(f"{type(exc).__name__}: {exc}")


def fuzz_version(engine):
    try:
        ds = engine.datasets.get("fuzz-target")
    except GradientError:
        ds = engine.datasets.create("fuzz-target")
    versions = engine.datasets.list_versions(ds, committed=False)
    return versions[0].version if versions else engine.datasets.create_version(ds).version


def test_bad_folder_inputs_name_the_problem(engine, tmp_path):
    with pytest.raises(BadInput, match="is not a folder"):
        save(engine, "x", tmp_path / "missing")
    weird = tmp_path / "weird"
    weird.mkdir()
    (weird / "back\\slash").write_bytes(b"1")
    with pytest.raises(BadInput, match="backslash"):
        save(engine, "x", weird)
    assert engine.datasets.list() == []
    with pytest.raises(BadInput, match="Invalid dataset name"):
        save(engine, "bad name!", tmp_path)
    assert engine.datasets.list() == []
