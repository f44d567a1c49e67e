"""A bucket that stalls never starves another provider (docs/threat-model.md): the bytes of REST and compat
downloads and uploads run on a bounded pool per provider (server/base.py `TransferPools`), never on the API's
threads. Twenty downloads from a stalled bucket once held all 16 API threads for ~75 s, and a request to a healthy
provider took 72.7 s."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from tornado.httpclient import AsyncHTTPClient

from .helpers import SECRET
from .helpers.faultproxy import FaultProxy

pytestmark = pytest.mark.reliability

API_THREADS, TRANSFER_THREADS, DOWNLOADS = 4, 8, 20


@pytest.fixture
def jp_server_config():
    # Fewer API threads than one provider's transfer threads: were downloads on the API's threads, no more than
    # API_THREADS of them could ever reach the bucket. Store timeouts far above the test's length: the stalled
    # downloads stay in flight until released.
    return {
        "ServerApp": {"jpserver_extensions": {"gradient_jupyter": True}},
        "GradientExtension": {"api_threads": API_THREADS, "transfer_threads": TRANSFER_THREADS},
        "GradientStorage": {"store_timeout": 600.0, "lookup_timeout": 60.0},
    }


async def committed_file(api, name: str, data: bytes, provider: str | None = None) -> str:
    """A dataset `name` with one committed file `f.bin`; its download path under gradient/api/."""
    code, ds = await api("POST", "datasets", {"name": name, **({"storageProviderId": provider} if provider else {})})
    assert code == 201, ds
    code, v = await api("POST", f"datasets/{ds['id']}/versions", {})
    base = f"datasets/{ds['id']}/versions/{v['version']}"
    assert (await api("PUT", f"{base}/files/f.bin", data=data))[0] == 200
    assert (await api("POST", f"{base}/commit", {}))[0] == 200
    return f"{base}/files/f.bin"


async def test_downloads_held_by_a_stalled_bucket_never_delay_another_provider(
    api, engine_of, jp_serverapp, jp_fetch, s3_bucket
):
    endpoint, bucket = s3_bucket
    proxy = FaultProxy(endpoint).start()
    held, release, lock = [], threading.Event(), threading.Lock()

    def stall_the_bytes(method, path):  # the bucket answers every request but for a file's bytes
        if method == "GET" and "/data/" in path:
            with lock:
                held.append(path)
            release.wait()

    client = AsyncHTTPClient(force_instance=True, max_clients=DOWNLOADS + 4)
    try:
        stalled = engine_of.registry.create(
            "stalled", {"accessKey": "testing", "secretAccessKey": SECRET, "bucket": bucket, "endpoint": proxy.url}
        )
        slow = await committed_file(api, "slow", b"s" * 100_000, stalled.id)
        fast = await committed_file(api, "fast", b"f" * 100_000)  # Gradient Managed
        proxy.rule = stall_the_bytes
        url = f"{jp_serverapp.connection_url.rstrip('/')}/gradient/api/{slow}"
        headers = {"Authorization": f"token {jp_serverapp.identity_provider.token}"}
        downloads = [
            asyncio.ensure_future(client.fetch(url, headers=headers, raise_error=False, request_timeout=600))
            for _ in range(DOWNLOADS)
        ]
        ceiling = time.monotonic() + 120  # a condition waited for; the time is only a ceiling
        while len(held) < TRANSFER_THREADS:  # as many as the provider's pool runs: more than the API's threads
            assert time.monotonic() < ceiling, f"only {len(held)} downloads reached the bucket"
            await asyncio.sleep(0.05)

        started = time.monotonic()
        answer = await asyncio.wait_for(jp_fetch("gradient", "api", *fast.split("/")), timeout=120)
        took = time.monotonic() - started
        assert answer.code == 200 and answer.body == b"f" * 100_000
        assert not any(d.done() for d in downloads)  # answered while all twenty were still held
        assert len(held) == TRANSFER_THREADS  # the stalled provider's bound: the others wait in its queue
        print(f"a healthy provider's download answered in {took:.3f} s with {DOWNLOADS} downloads held")

        release.set()
        for r in await asyncio.gather(*downloads):
            assert r.code == 200 and r.body == b"s" * 100_000
    finally:
        release.set()
        client.close()
        proxy.stop()
