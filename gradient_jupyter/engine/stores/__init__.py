"""Stores: one contract over a bucket (README.md, "Stores").

contract.py      the Store contract every store implements, ObjectInfo, and the helpers they share
local.py         LocalStore: the embedded Gradient Managed store, a folder laid out like a bucket
s3.py            S3Store: an S3-compatible bucket (obstore for bytes, boto3 for the control plane)
credentials.py   an S3 store's credentials and boto3 clients
s3_errors.py     how an S3 store's failures read to the user (with the store's request id)

LocalStore and S3Store are imported on first use: a process that uses one kind of store does not import the other.
"""

from typing import TYPE_CHECKING

from .contract import CHUNK, ObjectInfo, Progress, Store

if TYPE_CHECKING:
    from .local import LocalStore
    from .s3 import S3Store


def __getattr__(name: str):
    if name == "LocalStore":
        from .local import LocalStore

        return LocalStore
    if name == "S3Store":
        from .s3 import S3Store

        return S3Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CHUNK", "Store", "LocalStore", "S3Store", "ObjectInfo", "Progress"]
