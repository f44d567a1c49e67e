"""A provider or a store on the session's SeaweedFS server (the `seaweed` fixture, tests/conftest.py)."""

from __future__ import annotations

from gradient_jupyter.engine.stores import S3Store

# Parts of 5 MiB from 6 MiB, so tests show multipart uploads with small files.
PARTS = {"multipart_threshold": 6 * 1024**2, "part_size": 5 * 1024**2}


def seaweed_provider(engine, seaweed, bucket, name="weed"):
    """A provider named `name` in `engine`'s registry for `bucket` on the SeaweedFS server."""
    return engine.registry.create(
        name,
        {
            "bucket": bucket,
            "endpoint": seaweed.endpoint,
            "accessKey": seaweed.access_key,
            "secretAccessKey": seaweed.secret_key,
        },
    )


def seaweed_store(seaweed, bucket, **options) -> S3Store:
    """An S3Store for `bucket` on the SeaweedFS server, with PARTS and `options`."""
    return S3Store(
        bucket,
        **{
            "endpoint": seaweed.endpoint,
            "access_key": seaweed.access_key,
            "secret_key": seaweed.secret_key,
            **PARTS,
            **options,
        },
    )
