"""The regions AWS buckets answered, remembered in the data home (`<data home>/cache/bucket-regions.json`, bucket
name -> region): a bucket's region is asked once per machine, not once per process. Only a hint: a request signed
for a remembered region that S3 calls wrong makes the store ask again (s3.py `_run`); anything unreadable in the
file is ignored."""

from __future__ import annotations

import re

from ..hints import HintFile

REGION = re.compile(r"[a-z0-9-]{1,32}")  # the file is ours, but a hint is checked like anything read


class BucketRegions(HintFile):
    """Bucket name -> the region it answered (engine/hints.py: read and written whole)."""

    def get(self, bucket: str) -> str | None:
        region = self._read().get(bucket)
        return region if isinstance(region, str) and REGION.fullmatch(region) else None

    def remember(self, bucket: str, region: str | None) -> None:
        """Remember `region` for `bucket` (None: forget it). Two processes at once may lose one entry, which costs
        one more question; a data home that cannot be written costs the same."""
        regions = self._read()
        if regions.get(bucket) == region:
            return
        if region is None:
            regions.pop(bucket, None)
        else:
            regions[bucket] = region
        try:
            self._write(regions)
        except OSError:
            pass
