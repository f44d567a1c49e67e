"""`gradient://` with the libraries people read data with: pandas, pyarrow, polars, DuckDB and Dask (threads and a
distributed cluster of processes). Partial reads are proven partial by counting the bytes a proxy forwards."""

from __future__ import annotations

import os

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gradient_jupyter.engine import transfer

from .helpers import SECRET
from .helpers.countingproxy import CountingProxy

BLOCK = 64 * 1024
ROWS = 40_000


@pytest.fixture
def engine_settings():
    """Blocks of 64 KiB for files from 128 KiB, so tests show block reads with small files."""
    return {"block_size": BLOCK, "block_threshold": 2 * BLOCK}


@pytest.fixture
def table():
    rng = np.random.default_rng(7)
    return pa.table(
        {
            "id": np.arange(ROWS),
            "x": rng.random(ROWS),
            "y": rng.random(ROWS),
            "label": [f"row-{i}" for i in range(ROWS)],
        }
    )


@pytest.fixture
def saved(engine, table, tmp_path):
    """Dataset `tables` (embedded store): a CSV, a Parquet file of 4 row groups and a folder of Parquet parts."""
    folder = tmp_path / "tables"
    (folder / "parts").mkdir(parents=True)
    df = table.to_pandas()
    df.head(100).to_csv(folder / "small.csv", index=False)
    pq.write_table(table, folder / "big.parquet", row_group_size=ROWS // 4, compression="none")
    for i in range(3):
        pq.write_table(table.slice(i * 100, 100), folder / "parts" / f"part-{i}.parquet")
    transfer.save(engine, "tables", folder, tag="v1")
    return df


def test_pandas_read_csv_and_parquet_columns(saved):
    pd.testing.assert_frame_equal(pd.read_csv("gradient://tables:v1/small.csv"), saved.head(100))
    got = pd.read_parquet("gradient://tables/big.parquet", columns=["id", "y"])
    pd.testing.assert_frame_equal(got, saved[["id", "y"]])


def test_pyarrow_parquetfile_over_fs_open_and_dataset(saved):
    fs = fsspec.filesystem("gradient")
    with fs.open("gradient://tables/big.parquet") as f:
        pf = pq.ParquetFile(f)
        assert pf.metadata.num_row_groups == 4
        group = pf.read_row_group(2, columns=["label"])
    assert group.column("label").to_pylist() == list(saved["label"][2 * ROWS // 4 : 3 * ROWS // 4])
    import pyarrow.dataset as pads

    ds = pads.dataset("tables:v1/parts", filesystem=fs, format="parquet")
    assert ds.to_table().num_rows == 300
    assert pq.read_table("tables/big.parquet", filesystem=fs, columns=["x"]).column("x").to_pylist() == list(saved["x"])
    assert pq.read_table("gradient://tables/big.parquet", filesystem=fs).num_rows == ROWS


def test_polars(saved):
    """Polars reads fsspec files it is handed (its own URL handling knows only the cloud schemes it ships)."""
    import polars as pl

    with fsspec.open("gradient://tables/small.csv") as f:
        assert pl.read_csv(f)["label"].to_list() == list(saved["label"][:100])
    with fsspec.open("gradient://tables/big.parquet") as f:
        assert pl.read_parquet(f, columns=["id"])["id"].sum() == saved["id"].sum()


def test_duckdb_register_filesystem(saved):
    import duckdb

    con = duckdb.connect()
    con.register_filesystem(fsspec.filesystem("gradient"))
    assert con.execute("SELECT count(*), sum(id) FROM 'gradient://tables/big.parquet'").fetchone() == (
        ROWS,
        int(saved["id"].sum()),
    )
    assert con.execute("SELECT count(*) FROM read_csv('gradient://tables:v1/small.csv')").fetchone() == (100,)
    assert con.execute("SELECT count(*) FROM 'gradient://tables/parts/*.parquet'").fetchone() == (300,)


def test_dask_threaded(saved):
    import dask
    import dask.dataframe as dd

    with dask.config.set(scheduler="threads"):
        df = dd.read_parquet("gradient://tables/parts/*.parquet")
        assert df.npartitions == 3
        assert int(df["id"].sum().compute()) == int(saved["id"][:300].sum())
        assert len(dd.read_csv("gradient://tables/small.csv").compute()) == 100


def test_dask_distributed_processes_reopen_the_registry(engine, s3_bucket, table, tmp_path):
    """Workers are other processes: the pickled filesystem carries no secret and they read the registry
    (and the shared content cache) of the data home themselves."""
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    endpoint, bucket = s3_bucket
    engine.registry.create(
        "moto",
        {
            "bucket": bucket,
            "endpoint": endpoint,
            "region": "us-east-1",
            "accessKey": "testing",
            "secretAccessKey": SECRET,
        },
    )
    folder = tmp_path / "parts"
    folder.mkdir()
    for i in range(4):
        pq.write_table(table.slice(i * 1000, 1000), folder / f"part-{i}.parquet")
    transfer.save(engine, "spread", folder, provider="moto")
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        df = dd.read_parquet("gradient://spread/*.parquet", columns=["id"])
        assert int(df["id"].sum().compute()) == int(np.arange(4000).sum())
        pids = set(client.run(os.getpid).values())
    assert len(pids) == 2 and os.getpid() not in pids
    assert engine.content_cache.info()["entries"] >= 4  # the workers filled the one cache of the data home


def test_one_row_group_costs_its_blocks_not_the_file(engine, seaweed_bucket, table, tmp_path):
    server, bucket = seaweed_bucket
    proxy = CountingProxy(server.endpoint)
    try:
        engine.registry.create(
            "seaweed",
            {
                "bucket": bucket,
                "endpoint": proxy.endpoint,
                "region": "us-east-1",
                "accessKey": server.access_key,
                "secretAccessKey": server.secret_key,
            },
        )
        folder = tmp_path / "one"
        folder.mkdir()
        pq.write_table(table, folder / "big.parquet", row_group_size=ROWS // 2, compression="none")
        size = (folder / "big.parquet").stat().st_size
        transfer.save(engine, "partial", folder, provider="seaweed")
        fs = fsspec.filesystem("gradient", skip_instance_cache=True)
        fs.info("gradient://partial/big.parquet")
        proxy.reset()
        with fs.open("gradient://partial/big.parquet") as f:
            got = pq.ParquetFile(f).read_row_group(1, columns=["x"])
        assert got.column("x").to_pylist() == table.column("x").to_pylist()[ROWS // 2 :]
        fetched = proxy.reset()
        print(f"one row group, one column: {fetched} of {size} bytes fetched")
        assert fetched < size / 4, (fetched, size)  # footer and one column chunk: a few blocks, not the file
        # pandas with columns= reads only those columns' chunks
        assert pd.read_parquet("gradient://partial/big.parquet", columns=["id"])["id"].sum() == ROWS * (ROWS - 1) // 2
        fetched = proxy.reset()
        print(f"pandas, columns=['id']: {fetched} of {size} bytes fetched")
        assert fetched < size / 2
    finally:
        proxy.close()
