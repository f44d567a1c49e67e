"""Reading versions in place through `gradient://`: verified ranges, the content cache, bad input, no secrets.

Stores: the embedded Gradient Managed store, and moto and SeaweedFS over real HTTP behind a proxy that counts the
bytes fetched."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from types import SimpleNamespace

import boto3
import fsspec
import pytest

from gradient_jupyter.engine import IntegrityError, transfer

from .helpers import SECRET, make_folder
from .helpers.countingproxy import CountingProxy

BLOCK = 64 * 1024


@pytest.fixture
def engine_settings():
    """Blocks of 64 KiB for files from 128 KiB, so tests show block reads with small files."""
    return {"block_size": BLOCK, "block_threshold": 2 * BLOCK}


@pytest.fixture(params=["moto", "seaweed"])
def remote(request, engine):
    """Provider `remote`: moto or SeaweedFS over HTTP, through a proxy counting the bytes it fetches."""
    if request.param == "moto":
        endpoint, bucket = request.getfixturevalue("s3_bucket")
        access, secret = "testing", SECRET  # moto takes any key: the tests look for this secret

        def client():
            return boto3.client(
                "s3",
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id=access,
                aws_secret_access_key="testing",
            )
    else:
        server, bucket = request.getfixturevalue("seaweed_bucket")
        endpoint, access, secret, client = server.endpoint, server.access_key, server.secret_key, server.client
    proxy = CountingProxy(endpoint)
    engine.registry.create(
        "remote",
        {
            "bucket": bucket,
            "endpoint": proxy.endpoint,
            "region": "us-east-1",
            "accessKey": access,
            "secretAccessKey": secret,
        },
    )
    yield SimpleNamespace(proxy=proxy, bucket=bucket, client=client, secret=secret)
    proxy.close()


def fs():
    return fsspec.filesystem("gradient", skip_instance_cache=True)


def manifest_of(engine, ref):
    ds, version = engine.datasets.resolve(ref)
    return {f["path"]: f for f in engine.datasets.manifest(ds, version.version)["files"]}


def test_registered_through_the_fsspec_entry_point():
    from gradient_jupyter.filesystem import GradientFileSystem

    assert fsspec.get_filesystem_class("gradient") is GradientFileSystem


def test_save_records_block_hashes_of_large_files_only(engine, tmp_path):
    big = os.urandom(5 * BLOCK + 123)
    transfer.save(engine, "blocks", make_folder(tmp_path / "d", {"big.bin": big, "small.txt": b"hi"}))
    files = manifest_of(engine, "blocks")
    assert files["big.bin"]["blockSize"] == BLOCK
    assert files["big.bin"]["blocks"] == [
        hashlib.sha256(big[i : i + BLOCK]).hexdigest() for i in range(0, len(big), BLOCK)
    ]
    assert "blocks" not in files["small.txt"] and "blockSize" not in files["small.txt"]
    # saved again (hashes now come from the hash cache): the blocks are still recorded
    (tmp_path / "d" / "new.txt").write_text("x")
    transfer.save(engine, "blocks", tmp_path / "d")
    assert manifest_of(engine, "blocks")["big.bin"]["blocks"] == files["big.bin"]["blocks"]


def test_listing_and_info(engine, tmp_path):
    transfer.save(
        engine,
        "listed",
        make_folder(tmp_path / "d", {"a.csv": b"x,y\n1,2\n", "sub/b.txt": b"bee", "sub/deep/c.txt": b"sea"}),
        tag="v1",
    )
    f = fs()
    assert f.ls("gradient://", detail=False) == ["listed"]
    assert f.ls("gradient://listed:v1/", detail=False) == ["listed:v1/a.csv", "listed:v1/sub"]
    assert f.info("gradient://listed/sub/b.txt")["size"] == 3
    assert f.info("gradient://listed/sub")["type"] == "directory"
    assert f.find("gradient://listed") == ["listed/a.csv", "listed/sub/b.txt", "listed/sub/deep/c.txt"]
    assert f.glob("gradient://listed/**/*.txt") == ["listed/sub/b.txt", "listed/sub/deep/c.txt"]
    assert [d for d, _, _ in f.walk("gradient://listed")] == ["listed", "listed/sub", "listed/sub/deep"]
    assert f.cat("gradient://listed/sub/deep/c.txt") == b"sea"
    assert f.cat_ranges(["listed/a.csv", "listed/sub/b.txt"], [0, 1], [3, 3]) == [b"x,y", b"ee"]
    assert f.exists("gradient://listed/a.csv") and not f.exists("gradient://listed/zzz")


def test_latest_is_resolved_once_per_instance_until_invalidated(engine, tmp_path):
    folder = make_folder(tmp_path / "d", {"a.txt": b"one"})
    transfer.save(engine, "moving", folder)
    f = fs()
    assert f.cat("gradient://moving/a.txt") == b"one"
    (folder / "a.txt").write_bytes(b"two")
    transfer.save(engine, "moving", folder)
    assert f.cat("gradient://moving/a.txt") == b"one"  # the version this instance resolved
    f.invalidate_cache()
    assert f.cat("gradient://moving/a.txt") == b"two"


def test_a_save_in_the_same_process_is_seen_at_once(engine, tmp_path):
    import gradient_jupyter

    folder = make_folder(tmp_path / "d", {"a.txt": b"one"})
    gradient_jupyter.save("notebook", folder, progress=False)
    f = fs()
    assert f.cat("gradient://notebook/a.txt") == b"one"
    (folder / "a.txt").write_bytes(b"two")
    gradient_jupyter.save("notebook", folder, progress=False)  # the same engine as gradient:// in this process
    assert f.cat("gradient://notebook/a.txt") == b"two"


def test_a_range_of_a_large_file_fetches_only_its_blocks(engine, remote, tmp_path):
    p = remote.proxy
    big = os.urandom(64 * BLOCK)  # 4 MiB in 64 blocks
    transfer.save(engine, "ranged", make_folder(tmp_path / "d", {"big.bin": big}), provider="remote")
    f = fs()
    f.info("gradient://ranged/big.bin")
    p.reset()
    assert (
        f.cat_file("gradient://ranged/big.bin", start=10 * BLOCK + 5, end=12 * BLOCK + 7)
        == big[10 * BLOCK + 5 : 12 * BLOCK + 7]
    )
    fetched = p.reset()
    assert 3 * BLOCK <= fetched < 4 * BLOCK  # blocks 10, 11 and 12, plus response headers
    # the same blocks again, through another instance: from the cache (only the version's small records fetched)
    assert fs().cat_file("gradient://ranged/big.bin", start=11 * BLOCK, end=12 * BLOCK) == big[11 * BLOCK : 12 * BLOCK]
    assert p.reset() < 8192
    # a sequential read of the whole file: every byte arrives once and is returned verified
    with fs().open("gradient://ranged/big.bin") as fh:
        assert fh.read() == big
    assert 61 * BLOCK <= p.reset() < 62 * BLOCK


def test_small_files_and_files_without_blocks_are_fetched_whole_once(engine, remote, tmp_path):
    p = remote.proxy
    data = os.urandom(BLOCK)  # below the threshold: no blocks
    transfer.save(engine, "whole", make_folder(tmp_path / "d", {"f.bin": data}), provider="remote")
    p.reset()
    assert fs().cat_file("gradient://whole/f.bin", start=100, end=200) == data[100:200]
    assert BLOCK <= p.reset() < 2 * BLOCK
    assert fs().cat_file("gradient://whole/f.bin", start=1000, end=1100) == data[1000:1100]
    assert p.reset() < 8192  # the version's records: no file bytes


def test_bytes_fetched_for_one_version_are_not_fetched_for_another(engine, remote, tmp_path):
    p = remote.proxy
    data = os.urandom(3 * BLOCK)
    folder = make_folder(tmp_path / "d", {"same.bin": data})
    transfer.save(engine, "shared", folder, provider="remote", tag="one")
    (folder / "other.txt").write_text("new")
    transfer.save(engine, "shared", folder, tag="two")
    assert fs().cat("gradient://shared:one/same.bin") == data
    p.reset()
    assert fs().cat("gradient://shared:two/same.bin") == data
    assert p.reset() < 8192  # the version's records only: no file bytes


def test_tampered_bytes_in_a_bucket_raise_an_error_naming_the_file(engine, remote, tmp_path):
    tamper_and_read(
        engine,
        tmp_path,
        "remote",
        lambda key, data: remote.client().put_object(Bucket=remote.bucket, Key=key, Body=data),
    )


def test_tampered_bytes_in_the_embedded_store_raise_an_error_naming_the_file(engine, tmp_path):
    def write(key, data):
        os.chmod(engine.home / "managed" / key, 0o600)
        (engine.home / "managed" / key).write_bytes(data)

    tamper_and_read(engine, tmp_path, None, write)


def tamper_and_read(engine, tmp_path, provider, write):
    big, small = os.urandom(4 * BLOCK), b"a,b\n1,2\n"
    transfer.save(
        engine, "tampered", make_folder(tmp_path / "d", {"data/big.bin": big, "small.csv": small}), provider=provider
    )
    files = manifest_of(engine, "tampered")
    write(files["data/big.bin"]["key"], big[:BLOCK] + b"X" + big[BLOCK + 1 :])
    write(files["small.csv"]["key"], b"a,b\n6,6\n")
    f = fs()
    assert f.cat_file("gradient://tampered/data/big.bin", start=0, end=100) == big[:100]  # block 1 is intact
    with pytest.raises(IntegrityError, match=r"'data/big\.bin' \(block 2 of 4\).*does not match"):
        f.cat_file("gradient://tampered/data/big.bin", start=BLOCK, end=BLOCK + 10)
    with pytest.raises(IntegrityError, match=r"'small\.csv'.*does not match"):
        f.cat_file("gradient://tampered/small.csv", start=0, end=3)
    with pytest.raises(IntegrityError, match="small.csv"):
        import pandas as pd

        pd.read_csv("gradient://tampered/small.csv")
    assert engine.content_cache.info()["entries"] == 1  # only the intact block was kept


def test_bytes_deleted_behind_our_back_are_named(engine, remote, tmp_path):
    transfer.save(
        engine,
        "deleted",
        make_folder(tmp_path / "d", {"big.bin": os.urandom(3 * BLOCK), "s.txt": b"s"}),
        provider="remote",
    )
    files = manifest_of(engine, "deleted")
    remote.client().delete_objects(
        Bucket=remote.bucket, Delete={"Objects": [{"Key": files["big.bin"]["key"]}, {"Key": files["s.txt"]["key"]}]}
    )
    with pytest.raises(IntegrityError, match=r"'big\.bin'.*missing from the store"):
        fs().cat_file("gradient://deleted/big.bin", start=BLOCK, end=BLOCK + 1)
    with pytest.raises(IntegrityError, match=r"'s\.txt'.*missing from the store"):
        fs().cat("gradient://deleted/s.txt")


def test_bad_input_gets_a_clear_error(engine, tmp_path):
    transfer.save(engine, "bad", make_folder(tmp_path / "d", {"a.txt": b"a", "sub/b.txt": b"b"}))
    f = fs()
    with pytest.raises(FileNotFoundError, match="Unknown dataset 'nope'"):
        f.open("gradient://nope/a.txt")
    with pytest.raises(FileNotFoundError, match="no version or tag 'v9'"):
        f.cat("gradient://bad:v9/a.txt")
    with pytest.raises(FileNotFoundError, match=r"has no file 'zz\.txt'"):
        f.open("gradient://bad/zz.txt")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        f.open("gradient://bad/sub")
    for mode in ("wb", "ab", "xb", "r+b"):
        with pytest.raises(PermissionError, match="read-only.*save"):
            f.open("gradient://bad/a.txt", mode)
    with pytest.raises(PermissionError, match="read-only"):
        f.rm("gradient://bad/a.txt")
    with pytest.raises(PermissionError, match="read-only"):
        f.pipe("gradient://bad/new.txt", b"x")
    with pytest.raises(ValueError, match="dataset"):
        f.cat("gradient://bad name!/a.txt")
    ds = engine.datasets.get("bad")
    draft = engine.datasets.create_version(ds)
    with pytest.raises(FileNotFoundError, match=f"{draft.version}.*not committed.*commit it"):
        f.cat(f"gradient://bad:{draft.version}/a.txt")


def test_the_filesystem_pickles_without_secrets(engine, remote, tmp_path):
    transfer.save(engine, "pickled", make_folder(tmp_path / "d", {"a.txt": b"payload"}), provider="remote")
    f = fs()
    assert f.cat("gradient://pickled/a.txt") == b"payload"  # the registry, with its secret, has been read
    blob = pickle.dumps(f)
    assert remote.secret.encode() not in blob and b"testing" not in blob
    assert pickle.loads(blob).cat("gradient://pickled/a.txt") == b"payload"


def test_the_cache_evicts_least_recently_used_entries(engine, tmp_path):
    from gradient_jupyter.engine.content.cache import ContentCache

    cache = ContentCache(tmp_path / "cache", limit=3 * BLOCK)
    blobs = [os.urandom(BLOCK) for _ in range(4)]
    shas = [hashlib.sha256(b).hexdigest() for b in blobs]
    for sha, blob in zip(shas[:3], blobs[:3], strict=True):
        cache.fill(sha, BLOCK, lambda blob=blob: [blob], "test")
    for sha, used in ((shas[0], 1), (shas[1], 2)):  # long ago (the access time; the mtime is the entry's stamp)...
        os.utime(cache.path(sha), ns=(used * 10**9, cache.path(sha).stat().st_mtime_ns))
    assert cache.get(shas[0], BLOCK)  # ...but used just now: shas[1] is now the least recently used
    cache.fill(shas[3], BLOCK, lambda: [blobs[3]], "test")
    assert [cache.get(s, BLOCK) is not None for s in shas] == [True, False, True, True]
    assert cache.info()["bytes"] == 3 * BLOCK
    with pytest.raises(IntegrityError, match="one.bin"):
        cache.fill(shas[1], BLOCK, lambda: [blobs[2]], "'one.bin'")
    assert cache.get(shas[1], BLOCK) is None and not list(cache.tmp.iterdir())
    assert cache.clear()["entries"] == 3 and cache.info()["entries"] == 0


def test_a_cache_entry_written_since_it_was_installed_is_never_served(engine, tmp_path):
    """A write into a mounted file (as root may do: a read-only file does not stop it) never reaches the entry, and
    a write into the entry itself, even of the same size, is seen on the next read: the entry is removed and its
    bytes fetched again."""
    from gradient_jupyter.engine.content.mount import mount

    big = os.urandom(3 * BLOCK)
    transfer.save(engine, "edited", make_folder(tmp_path / "d", {"a.txt": b"payload-1", "big.bin": big}))
    mounted = mount(engine, "edited", tmp_path / "m")
    assert mounted.files == 2
    with open(tmp_path / "m" / "a.txt", "r+b") as f:
        f.write(b"PAYLOAD-1")
    assert fs().cat("gradient://edited/a.txt") == b"payload-1"

    cache = engine.content_cache
    entry = cache.path(hashlib.sha256(big).hexdigest())
    os.chmod(entry, 0o644)
    with open(entry, "r+b") as f:  # one byte in the middle of the whole file's entry
        f.seek(BLOCK + 7)
        f.write(bytes([big[BLOCK + 7] ^ 1]))
    assert fs().cat_file("gradient://edited/big.bin", BLOCK, 2 * BLOCK) == big[BLOCK : 2 * BLOCK]
    assert not entry.exists()  # removed, and the block fetched again
    assert fs().cat("gradient://edited/big.bin") == big


def test_cache_fills_from_several_processes_at_once(engine, tmp_path):
    """Processes reading the same file at the same time all get verified bytes; one entry remains."""
    import subprocess
    import sys

    data = os.urandom(8 * BLOCK)
    transfer.save(engine, "racing", make_folder(tmp_path / "d", {"big.bin": data}))
    code = (
        "import fsspec,hashlib,sys; f=fsspec.filesystem('gradient');"
        "sys.stdout.write(hashlib.sha256(f.cat('gradient://racing/big.bin')).hexdigest())"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert outs == [hashlib.sha256(data).hexdigest()] * 3
    assert engine.content_cache.info()["entries"] == 8
    assert not list(engine.content_cache.tmp.iterdir())


def test_a_forged_block_list_is_refused(engine, tmp_path):
    transfer.save(engine, "forged", make_folder(tmp_path / "d", {"big.bin": os.urandom(3 * BLOCK)}))
    ds, version = engine.datasets.resolve("forged")
    key = engine.datasets.manifest_key(ds.id, version.version)
    manifest = json.loads((engine.home / "managed" / key).read_text())
    manifest["files"][0]["blocks"] = manifest["files"][0]["blocks"][:2]
    target = engine.home / "managed" / key
    os.chmod(target, 0o600)
    target.write_text(json.dumps(manifest))
    for cached in (engine.home / "cache" / "manifests").rglob("*.json"):
        cached.unlink()
    with pytest.raises(IntegrityError, match="blockSize or blocks"):
        fs().cat("gradient://forged/big.bin")
