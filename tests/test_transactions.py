"""Writing a version from many processes (SPEC 9.1): gradient_jupyter.transaction, fsspec writes into uncommitted
versions, one commit that reads no file bytes, abandoned transactions that leave nothing."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re

import fsspec
import pytest

import gradient_jupyter
from gradient_jupyter.api import default_engine
from gradient_jupyter.engine import TagInUse

from .helpers.countingproxy import CountingProxy
from .helpers.files import make_folder
from .helpers.processes import cli

pytestmark = pytest.mark.slow


@pytest.fixture
def weed(seaweed_bucket):
    """Provider `weed` on SeaweedFS, through a proxy counting the bytes the store sends back."""
    server, bucket = seaweed_bucket
    proxy = CountingProxy(server.endpoint)
    default_engine().registry.create(
        "weed",
        {
            "bucket": bucket,
            "endpoint": proxy.endpoint,
            "accessKey": server.access_key,
            "secretAccessKey": server.secret_key,
        },
    )
    yield proxy, server.client(), bucket
    proxy.close()


def gfs(**options):
    return fsspec.filesystem("gradient", skip_instance_cache=True, **options)


def keys(client, bucket, prefix=""):
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def write_in_child(url, options, home, data, queue):
    """A spawned process with its own data home writes one file of a transaction."""
    import os

    os.environ["GRADIENT_JUPYTER_HOME"] = home
    try:
        with fsspec.open(url, "wb", **options) as f:
            f.write(data)
        queue.put("ok")
    except Exception as exc:  # reported to the test
        queue.put(f"{type(exc).__name__}: {exc}")


def test_processes_write_one_version_committed_once_without_reading_the_bytes(weed, seaweed, tmp_path):
    proxy, client, bucket = weed
    big = bytes(range(256)) * 8192  # 2 MiB
    with gradient_jupyter.transaction("events", message="from workers", tag="day-1", provider="weed") as tx:
        assert re.fullmatch(r"gradient://ds[a-z0-9]{13}:[a-z0-9]{7}/", tx.url)
        assert json.dumps(tx.storage_options) and seaweed.secret_key not in json.dumps(tx.storage_options)
        fs = gfs(**tx.storage_options)
        with fs.open(tx.url + "big.bin", "wb") as f:
            f.write(big[:1000])
            f.write(big[1000:])
        fs.pipe(tx.url + "t/small.csv", b"a,b\n1,2\n")
        fs.put(str(make_folder(tmp_path / "up", {"p.txt": b"put"}) / "p.txt"), tx.url + "t/p.txt")
        # another process, with a data home of its own and the provider given whole
        given = {
            "provider": {
                "name": "weed",
                "bucket": bucket,
                "endpoint": proxy.endpoint,
                "accessKey": seaweed.access_key,
                "secretAccessKey": seaweed.secret_key,
            }
        }
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        child = context.Process(
            target=write_in_child,
            args=(
                tx.url + "t/child.bin",
                {**tx.storage_options, **given},
                str(tmp_path / "child-home"),
                b"c" * 5000,
                queue,
            ),
        )
        child.start()
        child.join(120)
        assert queue.get(timeout=5) == "ok"
        with pytest.raises(FileNotFoundError):  # nothing committed yet
            gfs().cat("events/big.bin")
        proxy.reset()
    assert proxy.reset() < 64 * 1024  # the commit read records, not the 2 MiB of bytes
    committed = tx.committed
    assert committed.tags == ("day-1",) and committed.message == "from workers" and committed.file_count == 4
    fs = gfs()
    assert fs.cat("events:day-1/big.bin") == big and fs.cat("events/t/child.bin") == b"c" * 5000
    assert fs.cat("events/t/small.csv") == b"a,b\n1,2\n" and fs.cat("events/t/p.txt") == b"put"
    ds, version = committed.dataset_id, committed.version
    manifest = json.loads(
        client.get_object(
            Bucket=bucket, Key=f"{default_engine().team_id}/datasets/{ds}/versions/{version}/manifest.json"
        )["Body"].read()
    )
    for f in manifest["files"]:  # each file where its writer sent it, nothing copied
        assert f["key"] == f"{default_engine().team_id}/datasets/{ds}/versions/{version}/data/{f['path']}"
    assert f["sha256"] == hashlib.sha256(b"put").hexdigest() if f["path"] == "t/p.txt" else True
    leftovers = [k for k in keys(client, bucket) if "/uploads/" in k or "/refs/" in k]
    assert leftovers == []


def test_an_exception_abandons_the_transaction_and_leaves_nothing(weed):
    _, client, bucket = weed
    before = keys(client, bucket)
    with pytest.raises(RuntimeError, match="failed"), gradient_jupyter.transaction("broken", provider="weed") as tx:
        gfs(**tx.storage_options).pipe(tx.url + "half.bin", b"x" * 1000)
        raise RuntimeError("worker failed")
    assert [k for k in keys(client, bucket) if k not in before and "/names/" not in k] == []
    with pytest.raises(FileNotFoundError):
        gfs().ls("broken")


def test_commit_early_and_a_tag_in_use_is_refused_before_anything_is_made(weed, tmp_path):
    gradient_jupyter.save("logs", make_folder(tmp_path / "s", {"a": b"1"}), tag="v1", provider="weed", progress=False)
    with pytest.raises(TagInUse), gradient_jupyter.transaction("logs", tag="v1"):
        pass
    assert len(default_engine().datasets.list_versions("logs", committed=None)) == 1
    with gradient_jupyter.transaction("logs", message="early") as tx:
        gfs().pipe(tx.url + "b", b"2")
        version = tx.commit()
        assert gfs().cat(f"logs:{version.version}/b") == b"2"
    assert tx.committed == version


def test_a_write_racing_the_commit_is_refused_and_not_part_of_the_version(weed):
    with gradient_jupyter.transaction("race", provider="weed") as tx:
        fs = gfs()
        fs.pipe(tx.url + "first", b"1")
        late = fs.open(tx.url + "late", "wb")
        late.write(b"in flight")
        tx.commit()
        with pytest.raises(PermissionError, match="save.*transaction"):
            late.close()
    assert gfs().ls("race", detail=False) == ["race/first"]


def test_writing_into_a_committed_version_is_refused_naming_save_and_transaction(weed, tmp_path):
    gradient_jupyter.save("done", make_folder(tmp_path / "s", {"a": b"1"}), provider="weed", progress=False)
    ds, version = default_engine().datasets.resolve("done")
    for url in ("done/a", f"{ds.id}:{version.version}/new", "done:latest/new"):
        with pytest.raises(PermissionError, match=r"save.*transaction"):
            gfs().pipe(url, b"2")
        with pytest.raises(PermissionError, match=r"save.*transaction"):
            gfs().open(url, "wb")


def test_a_version_made_by_versions_create_takes_the_same_writes(weed, tmp_path):
    gradient_jupyter.save("made", make_folder(tmp_path / "s", {"a": b"1"}), provider="weed", progress=False)
    out = cli("datasets", "versions", "create", "--id", "made", "--message", "by hand")
    assert out.returncode == 0, out.stderr
    ref = re.search(r"(ds[a-z0-9]{13}:[a-z0-9]{7})", out.stdout).group(1)
    fs = gfs()
    fs.pipe(f"gradient://{ref}/b.txt", b"two")
    with fs.open(f"gradient://{ref}/c/d.txt", "wb") as f:
        f.write(b"three")
    out = cli("datasets", "versions", "commit", "--id", ref)
    assert out.returncode == 0, out.stderr
    fs.invalidate_cache()
    assert sorted(fs.ls(ref, detail=False)) == [f"{ref}/b.txt", f"{ref}/c"]
    assert fs.cat(f"{ref}/c/d.txt") == b"three" and fs.cat("made/b.txt") == b"two"


def test_a_large_file_written_gets_block_hashes_so_a_range_costs_its_blocks(weed):
    proxy, _, _ = weed
    data = os.urandom(17 * 1024**2)  # past block_threshold (16 MiB): 8 MiB blocks, as save records them
    with gradient_jupyter.transaction("large", provider="weed") as tx, gfs().open(tx.url + "big.bin", "wb") as f:
        f.write(data)
    ds, version = default_engine().datasets.resolve("large")
    entry = default_engine().datasets.manifest(ds, version.version)["files"][0]
    assert entry["blockSize"] == 8 * 1024**2 and len(entry["blocks"]) == 3
    default_engine().content_cache.clear()
    proxy.reset()
    assert gfs().cat_file("large/big.bin", start=9 * 1024**2, end=10 * 1024**2) == data[9 * 1024**2 : 10 * 1024**2]
    assert proxy.reset() < 9 * 1024**2  # the one block it touches, not the file


def test_pandas_and_dask_writers_write_into_a_transaction(weed):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    with gradient_jupyter.transaction("frames", provider="weed") as tx:
        df.to_csv(tx.url + "pandas.csv", index=False, storage_options=tx.storage_options)
        df.to_parquet(tx.url + "pandas.parquet", storage_options=tx.storage_options)
        dd.from_pandas(df, npartitions=2).to_csv(
            tx.url + "dask/part-*.csv",
            index=False,
            storage_options=tx.storage_options,
            compute_kwargs={"scheduler": "sync"},
        )
    assert pd.read_csv("gradient://frames/pandas.csv").equals(df)
    assert pd.read_parquet("gradient://frames/pandas.parquet")["a"].tolist() == [1, 2, 3]
    assert sorted(dd.read_csv("gradient://frames/dask/part-*.csv").compute(scheduler="sync")["a"]) == [1, 2, 3]


def test_a_process_without_the_provider_is_told_how_to_give_it(weed):
    with pytest.raises(FileNotFoundError, match=r"storage_options=\{'provider'"):
        gfs(team="te1234567").cat("gradient://events/a.csv")
