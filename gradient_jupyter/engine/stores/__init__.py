"""Stores: one contract over a bucket (README.md, "Stores").

contract.py      the Store contract every store implements, ObjectInfo, and the helpers they share
local.py         LocalStore: the embedded Gradient Managed store, a folder laid out like a bucket
s3.py            S3Store: an S3-compatible bucket (obstore for bytes, boto3 for the control plane)
credentials.py   an S3 store's credentials and boto3 clients
s3_errors.py     how an S3 store's failures read to the user (with the store's request id)
"""

from .contract import CHUNK, ObjectInfo, Progress, Store, file_chunks, sha256_file
from .local import LocalStore
from .s3 import S3Store

__all__ = ["CHUNK", "Store", "LocalStore", "S3Store", "ObjectInfo", "Progress", "file_chunks", "sha256_file"]
