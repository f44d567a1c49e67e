"""Gradient's compat API of a test's Jupyter server: presigned URLs, and blocking calls run off the event loop."""

from __future__ import annotations

import asyncio


async def presign(compat, ds, version, *calls):
    code, urls = await compat("POST", f"datasets/{ds}/versions/{version}/s3/preSignedUrls", {"calls": list(calls)})
    assert code == 200, urls
    return [u["url"] for u in urls]


async def in_thread(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


def upload_id(answer) -> str:
    return answer["UploadId"] if isinstance(answer, dict) else answer
