"""A bucket with a CORS rule of its own, for the doctor's tests (tests/test_doctor.py, the panel, the server)."""

from __future__ import annotations

import boto3

FOREIGN_RULE = {"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}


def foreign_cors(endpoint: str, bucket: str) -> None:
    """A bucket that already has a rule of its own (read-only, from anywhere): moto then enforces it, so a browser's
    PUT truly fails (with no rules at all, moto answers every preflight and `cors` is only a warning)."""
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").put_bucket_cors(
        Bucket=bucket, CORSConfiguration={"CORSRules": [FOREIGN_RULE]}
    )
