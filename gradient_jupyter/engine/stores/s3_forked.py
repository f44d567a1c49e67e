"""The data plane of an S3Store in a process forked after obstore was used (multiprocessing's default start
method on Linux, Dask's forking pools): obstore's Tokio runtime lives in the parent's threads, which a fork does
not copy, so every obstore call of the child would wait forever. Such a child sends the same requests through a
boto3 client of its own (made after the fork): same keys, metadata, create-only writes and SHA-256 checksums."""

from __future__ import annotations

import base64
import uuid

from ..errors import Conflict, IntegrityError, NotFound, StoreError
from .contract import CHUNK, ObjectInfo, check_range
from .s3 import S3Store


class ForkedS3Store(S3Store):
    """S3Store whose data plane is boto3 (see the module docstring); everything else is S3Store's."""

    def _run(self, op, key, work, checksums=None, retry=True):
        """work(whether to send SHA-256 checksums), its botocore errors translated."""
        try:
            return work(self._checksums is not False if checksums is None else checksums)
        except (StoreError, Conflict, NotFound, IntegrityError):
            raise
        except Exception as exc:
            raise self.translate(exc, op, key) from exc

    def _put_object(self, key, data, create_only, sha256):
        self._addressed(key)
        metadata = {"sha256": sha256} if sha256 else {}
        token = uuid.uuid4().hex
        if create_only:
            metadata[self.WRITE_TOKEN] = token

        def put(checksums: bool):
            extra = {"IfNoneMatch": "*"} if create_only else {}
            if checksums and sha256:
                extra["ChecksumSHA256"] = base64.b64encode(bytes.fromhex(sha256)).decode()
            return self.call("put_object", key, Body=bytes(data), Metadata=metadata, **extra)

        try:
            self._upload("put_object", key, put)
        except Conflict:
            if create_only and self._write_token(key) == token:  # a retry found its own first attempt
                return
            raise

    def _write_token(self, key):
        try:
            return self.call("head_object", key).get("Metadata", {}).get(self.WRITE_TOKEN)
        except NotFound:
            return None

    def _multipart(self, key, parts, size, attributes):
        self._addressed(key)
        with self._large_files:
            upload = self.call("create_multipart_upload", key, Metadata=dict(attributes or {}))["UploadId"]
            try:
                done = []
                for number, chunk in enumerate(parts(), 1):
                    sent = self.call("upload_part", key, UploadId=upload, PartNumber=number, Body=bytes(chunk))
                    done.append({"PartNumber": number, "ETag": sent["ETag"]})
                self.call("complete_multipart_upload", key, UploadId=upload, MultipartUpload={"Parts": done})
            except BaseException:
                try:
                    self.call("abort_multipart_upload", key, UploadId=upload)
                except StoreError:
                    pass  # the bucket's lifecycle rule ends it
                raise
        info = self.head(key)
        if info is None or info.size != size:
            raise IntegrityError(f"The store said the upload of {key!r} completed, but it does not hold {size} bytes.")

    # -- reads --------------------------------------------------------------------------------------------------------
    def get(self, key):
        self._addressed(key)
        return self._run("get_object", key, lambda _: self.call("get_object", key)["Body"].read())

    def get_range(self, key, start, end):
        check_range(start, end)
        self._addressed(key)
        if end == start:
            return b""
        return self.call("get_object", key, Range=f"bytes={start}-{end - 1}")["Body"].read()  # past the end: less

    def get_ranges(self, key, ranges):
        return [self.get_range(key, start, end) for start, end in ranges]

    def _stream(self, key, byte_range, chunk_size):
        self._addressed(key)
        extra = {"Range": f"bytes={byte_range[0]}-{byte_range[1] - 1}"} if byte_range else {}
        body = self.call("get_object", key, **extra)["Body"]
        return self._chunks(iter(body.iter_chunks(max(chunk_size, CHUNK))), key)

    def _chunks(self, chunks, key):
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except Exception as exc:
                raise self.translate(exc, "get_object", key) from exc
            yield bytes(chunk)

    def head(self, key):
        self._addressed(key)
        try:
            return ObjectInfo(key, self.call("head_object", key)["ContentLength"])
        except NotFound:
            return None

    # -- listing, copies, deletes -------------------------------------------------------------------------------------
    def list(self, prefix):
        return iter([ObjectInfo(k, size) for k, size in self._boto3_pages("list", prefix)])

    def list_prefixes(self, prefix):
        return sorted(self._boto3_pages("prefixes", prefix))

    def delete(self, keys):
        for key in keys:  # one request a key: DeleteObjects needs a Content-MD5 some stores check differently
            self.call("delete_object", key)

    def copy(self, src, dst):
        if self.head(src) is None:
            raise NotFound(f"Object {src!r} does not exist in the bucket.", reason="no-such-key")
        self._addressed(dst)
        try:
            self.client.copy({"Bucket": self.bucket, "Key": src}, self.bucket, dst)
        except Exception as exc:
            raise self.translate(exc, "copy", dst) from exc
