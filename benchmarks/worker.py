"""One measured operation in a fresh process, for benchmarks/run.py: ours (save, load), the boto3 loop, hashing.

    python benchmarks/worker.py '<json spec>'      # prints one JSON line: seconds, startup, peak RSS, summary

Every process pays interpreter start and imports like a command line tool does: `startup` is the time from the
parent's spawn (`spec["t0"]`, a time.time()) to the start of the measured call, `seconds` the call itself.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path


def engine(spec: dict):
    """An Engine on the data home in GRADIENT_JUPYTER_HOME with one provider 'bench' at spec['endpoint']."""
    from gradient_jupyter.engine import Engine, GradientStorage, NotFound

    eng = Engine(GradientStorage(**spec.get("engine_options", {})))
    config = {
        "bucket": spec["bucket"],
        "endpoint": spec["endpoint"],
        "region": "us-east-1",
        "accessKey": os.environ["AWS_ACCESS_KEY_ID"],
        "secretAccessKey": os.environ["AWS_SECRET_ACCESS_KEY"],
    }
    try:
        eng.registry.get("bench")
    except NotFound:
        eng.registry.create("bench", config, is_team_default=True)
    return eng


def summary_json(s) -> dict:
    out = {
        k: getattr(s, k)
        for k in ("files", "bytes_sent", "bytes_resumed", "bytes_skipped", "files_skipped", "requests", "seconds")
        if hasattr(s, k)
    }
    if getattr(s, "version", None) is not None:
        out["ref"] = s.version.ref
    return out


def ours(spec: dict, t0: float) -> dict:
    try:
        from gradient_jupyter.engine import transfer
    except ImportError as exc:
        return {"error": f"gradient_jupyter.engine.transfer is not available yet ({exc})"}
    eng = engine(spec)
    eng.store("bench").head(".bench-warm-up")  # a kernel keeps its engine: the call is timed with a ready store
    start = time.time()
    if spec["op"] == "save":
        summary = transfer.save(eng, spec["name"], spec["folder"], provider="bench")
    else:
        summary = transfer.load(eng, spec["ref"], spec["dest"])
    end = time.time()
    return {"startup": start - t0, "seconds": end - start, "summary": summary_json(summary)}


def delete_datasets(spec: dict, t0: float) -> dict:
    eng = engine(spec)
    gone = []
    for name in spec["names"]:
        try:
            eng.datasets.delete(name)
            gone.append(name)
        except Exception as exc:  # cleaning up must not stop the benchmark
            print(f"could not delete {name}: {exc}", file=sys.stderr)
    return {"deleted": gone}


def boto3_client(spec: dict):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=spec["endpoint"], region_name="us-east-1", config=Config(s3={"addressing_style": "path"})
    )


def boto3_put(spec: dict, t0: float) -> dict:
    """A plain sequential loop: one put_object per file, one client."""
    client = boto3_client(spec)
    folder = Path(spec["folder"])
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    start = time.time()
    for p in files:
        with open(p, "rb") as f:
            client.put_object(Bucket=spec["bucket"], Key=spec["prefix"] + p.relative_to(folder).as_posix(), Body=f)
    return {"startup": start - t0, "seconds": time.time() - start, "files": len(files)}


def boto3_get(spec: dict, t0: float) -> dict:
    """A plain sequential loop: list the prefix, then one get_object per object into the destination."""
    client = boto3_client(spec)
    dest, prefix = Path(spec["dest"]), spec["prefix"]
    start = time.time()
    n = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=spec["bucket"], Prefix=prefix):
        for obj in page.get("Contents", []):
            target = dest / obj["Key"][len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            body = client.get_object(Bucket=spec["bucket"], Key=obj["Key"])["Body"]
            with open(target, "wb") as f:
                while chunk := body.read(1024 * 1024):
                    f.write(chunk)
            n += 1
    return {"startup": start - t0, "seconds": time.time() - start, "files": n}


def hash_files(spec: dict, t0: float) -> dict:
    """SHA-256 of the files one after the other, with the engine's own hashing function."""
    from gradient_jupyter.engine.hashing import sha256_file

    start = time.time()
    total = sum(sha256_file(p)[1] for p in spec["files"])
    return {"startup": start - t0, "seconds": time.time() - start, "bytes": total}


def peak_rss() -> int:
    """This process's peak resident memory in bytes. Not ru_maxrss: Linux carries that over from the parent
    across fork and exec, so a child of a big parent would report the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux: KiB or bytes, good enough


OPS = {
    "ours": ours,
    "delete-datasets": delete_datasets,
    "boto3-put": boto3_put,
    "boto3-get": boto3_get,
    "hash": hash_files,
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    result = OPS[spec["kind"]](spec, spec.get("t0", time.time()))
    result["maxrss"] = peak_rss()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
