"""Datasets on a Dask cluster (SPEC 9.1): a real `distributed` scheduler with worker processes, each with a data
home of its own, on SeaweedFS: verified reads of a partitioned Parquet version, a tampered object failing the
read, a version written by the workers in one transaction, and an abandoned one leaving nothing."""

from __future__ import annotations

import json
import os
import uuid

import pytest

import gradient_jupyter
from gradient_jupyter.api import default_engine

from .helpers.providers import seaweed_provider

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

pytestmark = pytest.mark.slow

ROWS = 60_000


@pytest.fixture(scope="module")
def cluster():
    """A scheduler and two worker processes (spawned: nothing of this process is inherited but the environment)."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=":0", worker_dashboard_address=":0"
        ) as local,
        distributed.Client(local) as client,
    ):
        yield client


def setup_worker(base: str, source: str, team_file: str, key: str, secret: str, dask_worker=None) -> str:
    """Give this worker a data home of its own (and, by `source`, where it finds the provider `weed`)."""
    home = os.path.join(base, f"worker-{dask_worker.name}")
    os.environ["GRADIENT_JUPYTER_HOME"] = home
    os.environ["WEED_KEY"], os.environ["WEED_SECRET"] = key, secret
    os.environ.pop("GRADIENT_JUPYTER_TEAM_FILE", None)
    if source == "team file":
        os.environ["GRADIENT_JUPYTER_TEAM_FILE"] = team_file
    if source == "own data home":
        from gradient_jupyter.api import default_engine

        provider = json.loads(open(team_file).read())["providers"][0]
        default_engine().registry.create(
            "weed", {**{k: provider[k] for k in ("bucket", "endpoint")}, "accessKey": key, "secretAccessKey": secret}
        )
    return home


@pytest.fixture(params=["team file", "own data home", "given"])
def workers(request, cluster, seaweed_bucket, tmp_path):
    """The workers, each with its own data home, find provider `weed` (this process's) their own way; yields the
    storage_options the client passes (the provider given whole only for "given", its secret by reference)."""
    server, bucket = seaweed_bucket
    seaweed_provider(default_engine(), server, bucket)
    team_file = tmp_path / "team.json"
    provider = {
        "name": "weed",
        "bucket": bucket,
        "endpoint": server.endpoint,
        "accessKey": {"env": "WEED_KEY"},
        "secretAccessKey": {"env": "WEED_SECRET"},
    }
    team_file.write_text(json.dumps({"teamId": "te" + uuid.uuid4().hex[:7], "providers": [provider]}))
    homes = cluster.run(
        setup_worker, str(tmp_path / "workers"), request.param, str(team_file), server.access_key, server.secret_key
    )
    assert len(set(homes.values())) == 2 and os.environ["GRADIENT_JUPYTER_HOME"] not in homes.values()
    os.environ["WEED_KEY"], os.environ["WEED_SECRET"] = server.access_key, server.secret_key
    yield (server, bucket, {"provider": provider} if request.param == "given" else {})
    os.environ.pop("WEED_KEY"), os.environ.pop("WEED_SECRET")


def table(rows=ROWS):
    return pd.DataFrame(
        {"id": range(rows), "x": [i * 0.5 for i in range(rows)], "g": [f"g{i % 7}" for i in range(rows)]}
    )


def saved_table(tmp_path):
    folder = tmp_path / "table"
    dd.from_pandas(table(), npartitions=6).to_parquet(folder, write_index=False, compute_kwargs={"scheduler": "sync"})
    gradient_jupyter.save("table", folder, provider="weed", progress=False)
    return sorted(p.name for p in folder.iterdir())


def test_the_workers_read_a_partitioned_parquet_version_exactly(workers, tmp_path):
    _, _, options = workers
    assert len(saved_table(tmp_path)) == 6
    ddf = dd.read_parquet("gradient://table/", storage_options=options)
    assert ddf.npartitions == 6
    got = ddf.compute()
    assert len(got) == ROWS and got["id"].sum() == table()["id"].sum() and got["x"].sum() == table()["x"].sum()
    assert got.groupby("g")["id"].count().to_dict() == table().groupby("g")["id"].count().to_dict()


def test_a_tampered_object_fails_the_cluster_read_naming_the_file(workers, tmp_path):
    server, bucket, options = workers
    names = saved_table(tmp_path)
    ds, version = default_engine().datasets.resolve("table")
    entry = next(f for f in default_engine().datasets.manifest(ds, version.version)["files"] if f["path"] == names[3])
    client = server.client()
    body = bytearray(client.get_object(Bucket=bucket, Key=entry["key"])["Body"].read())
    body[len(body) // 2] ^= 0xFF  # one byte in the middle of a row group, same size
    client.put_object(Bucket=bucket, Key=entry["key"], Body=bytes(body))
    with pytest.raises(Exception, match=names[3]) as failed:
        dd.read_parquet("gradient://table/", storage_options=options).compute()
    assert "does not match" in str(failed.value) or "changed" in str(failed.value)


def test_the_workers_write_a_version_in_one_transaction(workers):
    _, _, options = workers
    with gradient_jupyter.transaction("written", message="by the workers", tag="t1", provider="weed") as tx:
        dd.from_pandas(table(), npartitions=4).to_parquet(
            tx.url + "table/", storage_options={**tx.storage_options, **options}, write_index=False
        )
    assert tx.committed.file_count == 4 and tx.committed.tags == ("t1",)
    back = dd.read_parquet("gradient://written:t1/table/", storage_options=options).compute()
    pd.testing.assert_frame_equal(back.sort_values("id").reset_index(drop=True), table(), check_dtype=False)


def test_an_abandoned_transaction_leaves_nothing(workers):
    server, bucket, options = workers
    client = server.client()
    before = {o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}
    with pytest.raises(ZeroDivisionError), gradient_jupyter.transaction("abandoned", provider="weed") as tx:
        dd.from_pandas(table(), npartitions=4).to_parquet(
            tx.url + "table/", storage_options={**tx.storage_options, **options}, write_index=False
        )
        raise ZeroDivisionError("a worker failed")
    after = {o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert [k for k in after - before if "/names/" not in k] == []
    assert "abandoned" not in [d.name for d in default_engine().datasets.list()]
