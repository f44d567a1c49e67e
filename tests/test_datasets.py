"""Versioned datasets over a real S3 protocol (moto over HTTP) and the embedded store."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os

import pytest

from gradient_jupyter.engine import BadInput, Conflict, Engine, GradientStorage, Immutable, IntegrityError, NotFound
from gradient_jupyter.engine.content.reader import open_version
from gradient_jupyter.engine.ids import DATASET_ID, VERSION_ID
from gradient_jupyter.engine.transfer import load, save

from .helpers import make_folder, read_folder
from .helpers.faultproxy import FaultProxy


class Counter:
    """Counts the S3 requests and bytes that really reach the server: a proxy on the wire in front of moto, which a
    provider made with `provider` goes through."""

    def __init__(self, endpoint: str, bucket: str):
        self.proxy = FaultProxy(endpoint).start()
        self.bucket = bucket

    def provider(self, engine, name="moto"):
        return engine.registry.create(
            name,
            {"bucket": self.bucket, "endpoint": self.proxy.url, "accessKey": "testing", "secretAccessKey": "testing"},
        )

    @property
    def calls(self) -> list[str]:
        return [op for op, _ in self.proxy.seen]

    @property
    def bytes(self) -> int:
        return sum(n for _, n in self.proxy.seen)

    def clear(self):
        self.proxy.seen.clear()

    def writes(self):
        return [c for c in self.calls if c in ("PutObject", "UploadPart", "CopyObject", "CreateMultipartUpload")]


@pytest.fixture
def counter(s3_bucket):
    c = Counter(*s3_bucket)
    yield c
    c.proxy.stop()


@pytest.fixture(params=["s3", "embedded"])
def where(request, engine):
    """(engine, provider id) for a moto bucket over HTTP, or the embedded Gradient Managed store."""
    if request.param == "embedded":
        return engine, engine.registry.managed().id
    endpoint, bucket = request.getfixturevalue("s3_bucket")
    p = engine.registry.create(
        "moto",
        {
            "bucket": bucket,
            "endpoint": endpoint,
            "region": "us-east-1",
            "accessKey": "testing",
            "secretAccessKey": "testing",
        },
    )
    return engine, p.id


FILES = {
    "a.csv": b"x,y\n1,2\n",
    "empty.txt": b"",
    "nested/deeper/still/b.bin": os.urandom(70_000),
    "ünïcödé/名前.txt": "héllo wörld".encode(),
    "spaces in name/c d.txt": b"spaced",
}


def test_round_trip_nested_empty_unicode(where, tmp_path):
    engine, pid = where
    src = make_folder(tmp_path / "src", FILES)
    summary = save(engine, "round-trip", src, message="first", provider=pid)
    assert DATASET_ID.fullmatch(summary.dataset.id) and VERSION_ID.fullmatch(summary.version.version)
    assert summary.files == 5 and summary.bytes_sent == sum(map(len, FILES.values()))
    assert summary.version.is_committed and summary.version.file_count == 5
    out = load(engine, "round-trip", tmp_path / "out")
    assert read_folder(tmp_path / "out") == FILES
    assert out.bytes_sent == summary.bytes_sent
    again = load(engine, f"round-trip:{summary.version.version}", tmp_path / "out")
    assert again.files_skipped == 5 and again.bytes_sent == 0


def test_large_file_goes_multipart_and_round_trips(where, tmp_path):
    engine, pid = where
    big = tmp_path / "src" / "big.bin"
    big.parent.mkdir()
    with open(big, "wb") as f:
        for _ in range(101):
            f.write(os.urandom(1024 * 1024))
    (tmp_path / "src" / "zero").write_bytes(b"")
    store = engine.store(pid)
    s = save(engine, "big", tmp_path / "src", provider=pid)
    if not store.embedded:  # a multipart upload's ETag ends with -<number of parts>
        key = next(f.key for f in engine.datasets.list_files(s.dataset, s.version.version) if f.path == "big.bin")
        etag = store.client.head_object(Bucket=store.bucket, Key=key)["ETag"].strip('"')
        assert int(etag.rsplit("-", 1)[1]) >= 7
    load(engine, "big", tmp_path / "out")
    assert (tmp_path / "out" / "big.bin").read_bytes() == big.read_bytes()
    assert (tmp_path / "out" / "zero").read_bytes() == b""


def test_resave_with_one_change_sends_only_that_file(engine, counter, tmp_path):
    p = counter.provider(engine)
    files = {f"dir{i % 7}/file{i}.bin": os.urandom(4096 + i) for i in range(100)}
    src = make_folder(tmp_path / "src", files)
    store = engine.store(p)
    first = save(engine, "dedupe", src, provider=p.id)
    first_writes, first_bytes = len(counter.writes()), counter.bytes
    assert first_writes >= 100
    (src / "dir3/file10.bin").write_bytes(b"changed")
    counter.clear()
    second = save(engine, "dedupe", src)
    uploads = [c for c in counter.writes()]
    # one data object, plus version.json, pending.json and the manifest: 4 writes against 100+ the first time
    assert uploads.count("PutObject") == 4 and len(uploads) == 4
    assert second.bytes_sent == len(b"changed") and second.files_skipped == 99
    assert counter.bytes < first_bytes / 10
    manifest = json.loads(
        store.get_bytes(
            f"{engine.team_id}/datasets/{second.dataset.id}/versions/{second.version.version}/manifest.json"
        )
    )
    keys = {f["path"]: f["key"] for f in manifest["files"]}
    assert keys["dir3/file10.bin"].startswith(
        f"{engine.team_id}/datasets/{second.dataset.id}/versions/{second.version.version}/data/"
    )
    assert keys["dir0/file0.bin"].split("/versions/")[1].startswith(first.version.version + "/data/")


def test_bucket_layout_is_the_spec_layout(engine, s3_bucket, tmp_path):
    import boto3

    endpoint, bucket = s3_bucket
    p = engine.registry.create("moto", {"bucket": bucket, "endpoint": endpoint})
    s = save(engine, "layout", make_folder(tmp_path / "src", {"a/b.csv": b"1,2"}), provider=p.id, message="m")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    base = f"{engine.team_id}/datasets/{s.dataset.id}/versions/{s.version.version}/"
    assert base + "data/a/b.csv" in keys and base + "manifest.json" in keys
    assert all(k.startswith(engine.team_id + "/") for k in keys)
    manifest = json.loads(client.get_object(Bucket=bucket, Key=base + "manifest.json")["Body"].read())
    assert manifest["format"] == "gradient-jupyter/manifest@1" and manifest["message"] == "m"
    assert manifest["dataset"] == s.dataset.id and manifest["version"] == s.version.version
    [entry] = manifest["files"]
    assert entry == {
        "path": "a/b.csv",
        "size": 3,
        "key": base + "data/a/b.csv",
        "sha256": hashlib.sha256(b"1,2").hexdigest(),
    }


def test_flipped_byte_in_bucket_fails_load_naming_the_file(where, tmp_path):
    engine, pid = where
    s = save(
        engine, "tamper", make_folder(tmp_path / "src", {"ok.txt": b"fine", "bad.txt": b"precious bytes"}), provider=pid
    )
    store = engine.store(pid)
    key = engine.datasets.data_key(s.dataset.id, s.version.version, "bad.txt")
    store.put_bytes(key, b"precioUs bytes")
    dest = tmp_path / "dest"
    with pytest.raises(IntegrityError, match="'bad.txt'"):
        load(engine, "tamper", dest)
    assert not dest.exists() or list(dest.rglob("*")) == []
    with pytest.raises(IntegrityError, match="bad.txt"):
        open_version(engine, "tamper").read_bytes("bad.txt")
    assert open_version(engine, "tamper").read_bytes("ok.txt") == b"fine"


def test_versions_tags_refs_and_immutability(where, tmp_path):
    engine, pid = where
    d = engine.datasets
    ds = d.create("manual", provider=pid, description="by hand")
    with pytest.raises(Conflict, match="exists already"):
        d.create("MANUAL", provider=pid)
    v = d.create_version(ds, message="v1")
    d.put_file(ds, v.version, "x/y.txt", b"hello")
    d.put_file(ds, v.version, "gone.txt", b"bye")
    d.put_file(ds, v.version, "x/y.txt", b"hello again")  # replace
    d.delete_file(ds, v.version, "gone.txt")
    assert [(f.path, f.size) for f in d.list_files(ds, v.version)] == [("x/y.txt", 11)]
    assert d.list_versions(ds) == [] and len(d.list_versions(ds, committed=False)) == 1
    with pytest.raises(NotFound):
        d.resolve("manual")
    with pytest.raises(Conflict, match="not committed"):
        d.set_tag(ds, "prod", v.version)
    c = d.commit(ds, v.version)
    assert c.is_committed and c.file_count == 1 and c.size == 11
    assert d.commit(ds, v.version) == c  # committing twice answers the committed version unchanged
    for change in (
        lambda: d.put_file(ds, v.version, "new.txt", b"no"),
        lambda: d.delete_file(ds, v.version, "x/y.txt"),
    ):
        with pytest.raises(Immutable):
            change()
    v2 = d.create_version(ds, message="v2")
    ref = d.put_file(ds, v2.version, "x/y.txt", b"hello again")  # identical: points at v1's object
    assert ref.key == d.data_key(ds.id, v.version, "x/y.txt")
    d.put_file(ds, v2.version, "z.txt", b"zzz")
    d.commit(ds, v2.version)
    d.set_tag(ds, "prod", v.version)
    assert d.resolve("manual")[1].version == v2.version
    assert d.resolve("manual:latest")[1].version == v2.version
    assert d.resolve("manual:prod")[1].version == v.version
    assert d.resolve(f"{ds.id}:{v.version}")[1].tags == ("prod",)
    d.set_tag(ds, v2.version, v.version)  # a tag named like a version id wins over that version
    assert d.resolve(f"manual:{v2.version}")[1].version == v.version
    d.delete_tag(ds, v2.version)
    assert d.resolve(f"manual:{v2.version}")[1].version == v2.version
    d.set_tag(ds, "prod", v2.version)  # moves
    assert [(t.name, t.version) for t in d.list_tags(ds)] == [("prod", v2.version)]
    assert d.resolve(f"manual:{v2.version}")[1].tags == ("prod",)
    with pytest.raises(NotFound, match="no version"):
        d.resolve("manual:zzzzzzz")
    with pytest.raises(BadInput, match="reserved"):
        d.set_tag(ds, "latest", v.version)
    assert [x.version for x in d.list_versions(ds)] == [v2.version, v.version]
    d.delete_version(ds, v.version)  # v2 still references v1's x/y.txt object
    load(engine, "manual", tmp_path / "out")
    assert read_folder(tmp_path / "out") == {"x/y.txt": b"hello again", "z.txt": b"zzz"}
    d.update(ds, name="renamed", description="new")
    assert d.get("renamed").description == "new"
    with pytest.raises(NotFound):
        d.get("manual")
    d.delete("renamed")
    assert d.list() == []


def test_a_delete_looks_for_open_multipart_uploads_only_where_a_file_was_put(engine, counter, tmp_path):
    """Uploads through the compat API begin by pointing refs/<path> at their key (engine/uploads.py): a version
    that never had a file put into it (a save's) is deleted without asking the bucket for multipart uploads."""
    counter.provider(engine)
    saved = save(engine, "saved", make_folder(tmp_path / "src", {"a": b"1"}), provider="moto")
    again = save(engine, "saved", make_folder(tmp_path / "src", {"a": b"2"}))
    counter.clear()
    engine.datasets.delete_version("saved", saved.version.version)
    engine.datasets.delete("saved")
    assert "ListMultipartUploads" not in counter.calls and "DeleteObjects" in counter.calls
    assert again.dataset.id not in [d.id for d in engine.datasets.list()]

    ds = engine.datasets.create("put", provider="moto")
    drafts = [engine.datasets.create_version(ds) for _ in range(2)]
    for draft in drafts:
        engine.datasets.put_file(ds, draft.version, "b", b"2")
    counter.clear()
    engine.datasets.delete_version(ds, drafts[0].version)
    assert counter.calls.count("ListMultipartUploads") == 1
    engine.datasets.delete(ds)
    assert counter.calls.count("ListMultipartUploads") == 2


@pytest.mark.parametrize("bad", ["/etc/passwd", "../up", "a/../../b", "a\\b", "a\x00b", "C:/x"])
def test_hostile_manifest_paths_are_refused(engine, tmp_path, bad):
    s = save(engine, "hostile", make_folder(tmp_path / "src", {"ok": b"1"}))
    store = engine.store(engine.registry.managed())
    key = engine.datasets.manifest_key(s.dataset.id, s.version.version)
    manifest = json.loads(store.get_bytes(key))
    manifest["files"][0]["path"] = bad
    v = engine.datasets.create_version(s.dataset)
    forged = {**manifest, "version": v.version}
    store.put_bytes(engine.datasets.manifest_key(s.dataset.id, v.version), json.dumps(forged).encode())
    # refused where the manifest is read (engine/records.py), before load's own check of where files land
    with pytest.raises(IntegrityError, match="unsafe or malformed file path") as info:
        load(engine, f"hostile:{v.version}", tmp_path / "dest")
    assert engine.datasets.manifest_key(s.dataset.id, v.version) in info.value.message
    assert not (tmp_path / "up").exists() and not (tmp_path / "dest").exists()


def test_load_subset_and_skip_identical(engine, tmp_path):
    save(engine, "subset", make_folder(tmp_path / "src", {"a.csv": b"1", "b.txt": b"2", "d/c.csv": b"3"}))
    r = load(engine, "subset", tmp_path / "out", include=["*.csv"], exclude=["d/*"])
    assert read_folder(tmp_path / "out") == {"a.csv": b"1"} and r.files == 1


def test_quota_fails_before_sending(aws_env, tmp_path):
    engine = Engine(GradientStorage(managed_quota=1000))
    make_folder(tmp_path / "src", {"a": b"x" * 600})
    save(engine, "q", tmp_path / "src")
    (tmp_path / "src" / "b").write_bytes(b"y" * 500)
    before = engine.store(engine.registry.managed()).used_bytes()
    with pytest.raises(Exception, match=r"used .*\(\d+ bytes\) of .*\(1000 bytes\); this needs .*\(500 bytes\)"):
        save(engine, "q", tmp_path / "src")
    assert engine.store(engine.registry.managed()).used_bytes() == before
    assert len(engine.datasets.list_versions("q", committed=None)) == 1


def test_interrupted_save_commits_nothing_and_rerun_reuses_what_arrived(engine, s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    p = engine.registry.create("moto", {"bucket": bucket, "endpoint": endpoint})
    src = make_folder(tmp_path / "src", {f"f{i}": os.urandom(2000) for i in range(40)})

    def interrupt(event):
        if event.phase == "upload" and event.files_done >= 10:
            raise KeyboardInterrupt

    engine.settings.max_concurrency = 2
    with pytest.raises(KeyboardInterrupt):
        save(engine, "resume", src, provider=p.id, progress=interrupt)
    assert engine.datasets.list_versions("resume") == []
    again = save(engine, "resume", src)
    assert again.bytes_resumed >= 10 * 2000 and again.bytes_sent <= 30 * 2000
    assert again.bytes_sent + again.bytes_resumed == 40 * 2000
    load(engine, "resume", tmp_path / "out")
    assert read_folder(tmp_path / "out") == read_folder(src)


def _save_worker(home, endpoint, bucket, worker, queue):
    os.environ["GRADIENT_JUPYTER_HOME"] = home
    engine = Engine(GradientStorage())
    folder = os.path.join(os.path.dirname(home), f"src{worker}")  # not in the data home: save refuses that
    os.makedirs(folder)
    for i in range(20):
        with open(os.path.join(folder, f"f{i}"), "wb") as f:
            f.write(f"{worker}-{i}".encode() * 100)
    s = save(engine, "shared", folder, message=f"worker {worker}", provider="moto")
    queue.put(s.version.version)


def test_two_processes_save_concurrently_as_distinct_versions(engine, s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    engine.registry.create("moto", {"bucket": bucket, "endpoint": endpoint})
    engine.datasets.create("shared", provider="moto")
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_save_worker, args=(str(engine.home), endpoint, bucket, w, queue)) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    made = {queue.get(timeout=5) for _ in procs}
    versions = engine.datasets.list_versions("shared")
    assert {v.version for v in versions} == made and len(made) == 2
    assert engine.datasets.resolve("shared")[1].version == versions[0].version
    assert versions[0].dt_committed >= versions[1].dt_committed


def test_committing_one_version_twice_lets_exactly_one_win(engine, s3_bucket):
    from concurrent.futures import ThreadPoolExecutor

    endpoint, bucket = s3_bucket
    engine.registry.create("moto", {"bucket": bucket, "endpoint": endpoint})
    ds = engine.datasets.create("race", provider="moto")
    v = engine.datasets.create_version(ds)
    engine.datasets.put_file(ds, v.version, "f", b"data")
    others = [Engine(GradientStorage()) for _ in range(4)]

    def commit(e):
        try:
            staged = e.datasets._staged(ds, v.version, with_hashes=True)
            e.datasets.write_manifest(ds, v.version, list(staged.values()), message="")
            return "won"
        except Conflict:
            return "lost"

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(commit, others))
    assert results.count("won") == 1 and results.count("lost") == 3
    assert engine.datasets.commit(ds, v.version).file_count == 1  # committing again answers it unchanged


def test_unchanged_files_are_not_rehashed_but_changed_ones_are(engine, tmp_path):
    src = make_folder(tmp_path / "src", {"a": b"one", "b": b"two"})
    for p in src.iterdir():
        os.utime(p, (1_600_000_000, 1_600_000_000))  # old enough not to be "racy"
    save(engine, "cached", src)
    rows = engine.hash_cache._db.execute("SELECT path FROM hashes").fetchall()
    assert {os.path.basename(r[0]) for r in rows} == {"a", "b"}
    (src / "a").write_bytes(b"ONE")  # same size, new content, new mtime
    s = save(engine, "cached", src)
    assert s.bytes_sent == 3 and s.files_skipped == 1
    load(engine, "cached", tmp_path / "out")
    assert (tmp_path / "out" / "a").read_bytes() == b"ONE"


def test_load_onto_files_in_the_way_is_a_clear_error(engine, tmp_path):
    save(engine, "inway", make_folder(tmp_path / "src", {"d/f.txt": b"1"}))
    (tmp_path / "afile").write_bytes(b"mine")
    with pytest.raises(BadInput, match="exists and is not a folder"):
        load(engine, "inway", tmp_path / "afile")
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "d").write_bytes(b"mine too")
    with pytest.raises(BadInput, match="exists and is not a folder"):
        load(engine, "inway", tmp_path / "dest")
    assert (tmp_path / "afile").read_bytes() == b"mine" and (tmp_path / "dest" / "d").read_bytes() == b"mine too"


def test_gradient_managed_can_point_at_a_real_s3_endpoint_with_its_quota(aws_env, s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    engine = Engine(
        GradientStorage(
            managed_endpoint=endpoint,
            managed_bucket=bucket,
            managed_quota=10_000,
            managed_access_key="testing",
            managed_secret_key="testing",
        )
    )
    managed = engine.registry.managed()
    assert not managed.embedded and managed.to_json()["config"]["secretAccessKey"] == "********"
    s = save(engine, "on-s3", make_folder(tmp_path / "src", {"a": b"x" * 6000}))
    assert s.dataset.storage_provider_id == managed.id
    assert engine.store(managed).head(engine.datasets.manifest_key(s.dataset.id, s.version.version))
    (tmp_path / "src" / "b").write_bytes(b"y" * 5000)
    with pytest.raises(Exception, match=r"quota exceeded.*\(10000 bytes\)"):
        save(engine, "on-s3", tmp_path / "src")


def test_reload_with_a_warm_hash_cache_reads_no_file_and_still_notices_changes(engine, tmp_path):
    save(engine, "warm", make_folder(tmp_path / "src", {"a": b"one", "b/c": b"two"}))
    load(engine, "warm", tmp_path / "out")
    for p in (tmp_path / "out").rglob("*"):
        if p.is_file():
            os.utime(p, (1_600_000_000, 1_600_000_000))
    again = load(engine, "warm", tmp_path / "out")  # hashes them once (cold), then the cache knows them
    assert again.files_skipped == 2
    assert set(engine.hash_cache.known([tmp_path / "out" / "a", tmp_path / "out" / "b" / "c"])) == {
        str(tmp_path / "out" / "a"),
        str(tmp_path / "out" / "b" / "c"),
    }
    assert load(engine, "warm", tmp_path / "out").files_skipped == 2
    (tmp_path / "out" / "a").write_bytes(b"ONE")  # same size, new mtime: the cache must not vouch for it
    fixed = load(engine, "warm", tmp_path / "out", overwrite=True)  # a local change: replaced only when asked
    assert fixed.files_skipped == 1 and (tmp_path / "out" / "a").read_bytes() == b"one"


def test_a_known_name_costs_one_request_and_is_never_trusted_blindly(engine, counter):
    p = counter.provider(engine)
    d = engine.datasets
    first = d.create("alpha", provider=p.id)
    assert d.get("alpha").id == first.id  # the name's id is learned here
    counter.clear()
    assert d.get("ALPHA").id == first.id and counter.calls == ["GetObject"]  # dataset.json only, not the claim too
    d.update(first, name="beta")  # the id alpha had now has another name: the full search decides
    with pytest.raises(NotFound):
        d.get("alpha")
    second = d.create("alpha", provider=p.id)
    assert d.get("alpha").id == second.id != first.id and d.get("beta").id == first.id
    d.delete("alpha")  # dataset.json goes first: the remembered id finds nothing
    with pytest.raises(NotFound):
        d.get("alpha")
    third = d.create("alpha", provider=p.id)
    (engine.home / "cache" / "dataset-names.json").write_text("{not json")  # a damaged file is only forgotten
    assert d.get("alpha").id == third.id and d.get("alpha").id == third.id
