"""Benchmark gradient-jupyter's save and load against the tools users would pick instead, in one run on one machine.

    python benchmarks/run.py [--quick] [--files 20000] [--runs 3] [--workloads small,large] [--tools ours,aws]

Starts a SeaweedFS S3 server on 127.0.0.1 (`--server moto` for moto instead) and a TCP latency proxy in front of it
(20 ms round trip), makes the data in a temporary folder, runs every workload straight to the server ("local") and
through the proxy ("proxy"), and prints the median of the runs, the ratio of each baseline to ours, CPU per file,
and the targets of issue 16. Baselines: `aws s3 sync`, `s5cmd cp`, a plain sequential boto3 loop, and `sha256sum`
for the hashing floor.
Ours and the boto3 loop run in fresh processes (benchmarks/worker.py), so their times include interpreter start and
imports as the command line tools' do, and ours' peak RSS is that process's high-water mark (VmHWM).

The parts: data.py makes the files, servers.py starts moto and the latency proxy (SeaweedFS, as the tests do:
tests/helpers/seaweed.py), this file runs the workloads (`Bench`), results.py keeps what was measured and prints the
tables.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]  # benchmarks/ for its modules, the repo for tests/helpers/seaweed.py

from data import MIB, Data, fresh_copy, generate  # noqa: E402 - benchmarks/ is on sys.path only from here
from results import TOOL_NAMES, Failed, Result, table, targets  # noqa: E402
from servers import ProxyProcess, start_moto  # noqa: E402

from tests.helpers.seaweed import Seaweed  # noqa: E402

WORKLOADS = ("small", "large", "change", "reload", "hash")
TOOLS = ("ours", "aws", "s5cmd", "boto3", "sha256sum")


# -- the bench ---------------------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args, work: Path, data: Data, server_url: str):
        self.args = args
        self.work = work
        self.data = data
        self.server_url = server_url
        self.results: dict[tuple[str, str, str], Result] = {}
        self.env = bench_env(work)
        self.ours_ok = True
        self.counter = 0
        self.tools = find_tools()

    # -- running one thing ---------------------------------------------------------------------------------------
    def result(self, workload: str, mode: str, tool: str) -> Result:
        key = (workload, mode, tool)
        if key not in self.results:
            self.results[key] = Result(workload, mode, tool)
        return self.results[key]

    def command(self, argv: list[str], env: dict | None = None) -> dict:
        argv = [self.tools.get(argv[0], argv[0]), *argv[1:]]
        cpu = children_cpu()
        start = time.perf_counter()
        proc = subprocess.run(argv, env=env or self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode:
            raise Failed(f"{' '.join(argv[:4])}... exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
        return {"total": seconds, "cpu": children_cpu() - cpu}

    def worker(self, spec: dict, mode: str, profile_label: str = "") -> dict:
        spec = {
            "bucket": bucket(mode),
            "endpoint": self.endpoint(mode),
            **spec,
            "t0": time.time(),
            "engine_options": self.args.engine_options,
        }
        env = {**self.env, "GRADIENT_JUPYTER_HOME": str(self.work / f"home-{mode}")}
        argv = [sys.executable, str(HERE / "worker.py"), json.dumps(spec)]
        if self.args.profile and spec["kind"] == "ours" and profile_label:
            self.args.profile.mkdir(parents=True, exist_ok=True)
            out = self.args.profile / f"{profile_label}-{mode}-{self.name('p')}.txt"
            # Blocking sampling (py-spy pauses the process for each sample) is slower but attributes time to the
            # right frames; --nonblocking was seen to blame functions that did not run.
            argv = ["py-spy", "record", "--gil", "--format", "raw", "--rate", "50", "--output", str(out), "--", *argv]
        cpu = children_cpu()
        start = time.perf_counter()
        proc = subprocess.run(argv, env=env, capture_output=True, text=True)
        total, cpu = time.perf_counter() - start, children_cpu() - cpu
        if proc.returncode:
            raise Failed(f"worker {spec['kind']} failed: {proc.stderr.strip()[-1500:]}")
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]  # py-spy talks too
        if not lines:
            raise Failed(f"worker {spec['kind']} printed no result: {proc.stdout[-500:]} {proc.stderr[-500:]}")
        out = json.loads(lines[-1])
        if "error" in out:
            raise Failed(out["error"])
        return {**out, "total": total, "cpu": cpu}

    def endpoint(self, mode: str) -> str:
        return self.server_url if mode == "local" else self.proxy_url

    def measure(self, workload: str, mode: str, tool: str, fn, *, cleanup=None, needs_transfer=True) -> None:
        """One run of one tool: fn() returns seconds or a worker's dict; errors are recorded, not raised."""
        if {"aws-incr": "aws", "ours-cli": "ours"}.get(tool, tool) not in self.args.tools:
            return
        r = self.result(workload, mode, tool)
        if r.error or (tool in ("ours", "ours-cli") and needs_transfer and not self.ours_ok):
            return
        try:
            out = fn()
        except Failed as exc:
            r.error = str(exc)
            if tool == "ours" and "not available" in str(exc):
                self.ours_ok = False
            print(f"  {workload:17} {mode:5} {TOOL_NAMES.get(tool, tool):26} FAILED: {exc}", flush=True)
            return
        finally:
            if cleanup:
                cleanup()
        r.cpu.append(out["cpu"])
        if "seconds" in out:  # a worker: its start-up plus the call; not the clean-up after it
            r.seconds.append(out["startup"] + out["seconds"])
            r.call.append(out["seconds"])
            if tool == "ours":
                r.rss.append(out["maxrss"])
            for k, v in out.get("summary", {}).items():
                r.extra.setdefault(k, []).append(v)
            shown = f"{r.seconds[-1]:8.2f} s (call {out['seconds']:.2f} s), cpu {out['cpu']:.2f} s"
        else:
            r.seconds.append(out["total"])
            shown = f"{out['total']:8.2f} s, cpu {out['cpu']:.2f} s"
        print(f"  {workload:17} {mode:5} {TOOL_NAMES.get(tool, tool):26} {shown}", flush=True)

    def name(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}-{self.counter}"

    def s3(self, mode: str, prefix: str) -> str:
        return f"s3://{bucket(mode)}/{prefix}"

    def aws(self, mode: str, src: str, dst: str) -> list[str]:
        return [
            "aws",
            "--endpoint-url",
            self.endpoint(mode),
            "s3",
            "sync",
            src,
            dst,
            "--only-show-errors",
            "--no-progress",
        ]

    def s5cmd(self, mode: str, src: str, dst: str) -> list[str]:
        return ["s5cmd", "--endpoint-url", self.endpoint(mode), "--log", "error", "cp", src, dst]

    def delete_prefix(self, mode: str, prefix: str) -> None:
        client = self.client
        keys = [
            o["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket(mode), Prefix=prefix)
            for o in page.get("Contents", [])
        ]
        for i in range(0, len(keys), 1000):
            client.delete_objects(
                Bucket=bucket(mode), Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True}
            )

    def forget_content(self, mode: str) -> None:
        """Empty ours' content cache (engine/content/cache.py: verified file bytes by SHA-256, and where loads wrote
        such bytes, which load copies from) in the data home of `mode`: a first load fetches every byte from the
        store."""
        shutil.rmtree(self.work / f"home-{mode}" / "cache" / "content", ignore_errors=True)

    def forget_hashes(self, mode: str) -> None:
        """Empty ours' cache of file hashes (engine/hashcache.py) in the data home of `mode`."""
        for p in (self.work / f"home-{mode}" / "cache").glob("hashes.sqlite3*"):
            p.unlink()

    def delete_datasets(self, mode: str, names: list[str]) -> None:
        if names and self.ours_ok:
            try:
                self.worker({"kind": "delete-datasets", "names": names}, mode)
            except Failed as exc:
                print(f"  (cleanup of datasets failed: {exc})")

    def tmpdir(self, stem: str) -> Path:
        path = self.work / "out" / self.name(stem)
        if path.exists():
            shutil.rmtree(path)
        return path

    def upload(self, folder: Path, mode: str, prefix: str) -> None:
        """Untimed set-up: put a folder under a prefix, straight to the server, as fast as we can."""
        if shutil.which(self.tools["s5cmd"]):
            self.command(
                [
                    "s5cmd",
                    "--endpoint-url",
                    self.server_url,
                    "--log",
                    "error",
                    "cp",
                    f"{folder}/",
                    self.s3(mode, prefix),
                ]
            )
        else:
            self.worker(
                {"kind": "boto3-put", "folder": str(folder), "prefix": prefix, "endpoint": self.server_url}, mode
            )

    # -- set-up ----------------------------------------------------------------------------------------------------
    def setup(self, modes: list[str]) -> None:
        import boto3
        from botocore.config import Config

        self.client = boto3.client(
            "s3",
            endpoint_url=self.server_url,
            region_name="us-east-1",
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            config=Config(request_checksum_calculation="when_required", response_checksum_validation="when_required"),
        )
        for mode in modes:
            self.client.create_bucket(Bucket=bucket(mode))
            # Fixtures the baselines load from (the same bytes as ours loads), sent straight to the server.
            for kind in ("small", "large"):
                if kind in self.args.needs:
                    folder = getattr(self.data, kind)
                    self.upload(folder, mode, f"fixture/{kind}/")
                    if "ours" in self.args.tools and self.ours_ok:
                        try:
                            self.worker(
                                {"kind": "ours", "op": "save", "name": f"fixture-{kind}", "folder": str(folder)}, mode
                            )
                        except Failed as exc:
                            print(f"  ours is not measured: {exc}")
                            self.ours_ok = False

    # -- workloads -------------------------------------------------------------------------------------------------
    def transfer(self, kind: str, mode: str) -> None:
        """Save and load of (1) or (2): upload the folder to a fresh place, download the fixture to an empty one."""
        folder = getattr(self.data, kind)
        for _ in range(self.args.runs):
            if "save" in self.args.ops:
                self.save_once(kind, folder, mode)
            if "load" in self.args.ops:
                self.load_once(kind, mode)

    def save_once(self, kind: str, folder: Path, mode: str) -> None:
        names = []  # ours' datasets of this run, deleted after it

        def ours_save():
            names.append(self.name(f"{kind}-save"))
            self.forget_hashes(mode)  # a first save: nothing of this folder was hashed before
            return self.worker(
                {"kind": "ours", "op": "save", "name": names[-1], "folder": str(folder)}, mode, f"{kind}-save"
            )

        self.measure(f"{kind} save", mode, "ours", ours_save, cleanup=lambda: self.delete_datasets(mode, names))
        for tool, argv in (("aws", self.aws), ("s5cmd", self.s5cmd)):
            prefix = self.name(f"{tool}/{kind}-save") + "/"
            src = str(folder) + ("/" if tool == "s5cmd" else "")
            self.measure(
                f"{kind} save",
                mode,
                tool,
                lambda argv=argv, src=src, prefix=prefix: self.command(argv(mode, src, self.s3(mode, prefix))),
                cleanup=functools.partial(self.delete_prefix, mode, prefix),
            )
        prefix = self.name(f"boto3/{kind}-save") + "/"
        self.measure(
            f"{kind} save",
            mode,
            "boto3",
            lambda: self.worker({"kind": "boto3-put", "folder": str(folder), "prefix": prefix}, mode),
            cleanup=functools.partial(self.delete_prefix, mode, prefix),
        )

    def load_once(self, kind: str, mode: str) -> None:
        fixture = f"fixture/{kind}/"
        for tool in ("ours", "aws", "s5cmd", "boto3"):
            dest = self.tmpdir(f"{tool}-{kind}-load")
            if tool == "ours":
                self.forget_content(mode)
            run = {
                "ours": lambda dest=dest: self.worker(
                    {"kind": "ours", "op": "load", "ref": f"fixture-{kind}", "dest": str(dest)}, mode, f"{kind}-load"
                ),
                "aws": lambda dest=dest: self.command(self.aws(mode, self.s3(mode, fixture), str(dest))),
                "s5cmd": lambda dest=dest: self.command(
                    self.s5cmd(mode, self.s3(mode, fixture + "*"), str(dest) + "/")
                ),
                "boto3": lambda dest=dest: self.worker(
                    {"kind": "boto3-get", "prefix": fixture, "dest": str(dest)}, mode
                ),
            }[tool]
            self.measure(f"{kind} load", mode, tool, run, cleanup=lambda d=dest: shutil.rmtree(d, True))

    def reload(self, kind: str, mode: str) -> None:
        """(4): load again into a folder already holding the same files; compared with ours' full load.

        Ours knows a file is the same by its SHA-256, taken from its hash cache when the file's size, mtime and inode
        are unchanged: "cold" empties the cache first (every file is read and hashed), "warm" is the next reload."""
        src = getattr(self.data, kind)
        ours_dest = fresh_copy(src, self.work / "out" / f"ours-{kind}-{mode}-held", settled=True)
        aws_dest = fresh_copy(src, self.work / "out" / f"aws-{kind}-{mode}-held")  # newer than the objects
        ref = f"fixture-{kind}"
        # the console script a user types, in the same data home (its provider 'bench' is the team default)
        cli = [sys.executable, "-m", "gradient_jupyter.cli", "load", ref, str(ours_dest)]
        cli_env = {**self.env, "GRADIENT_JUPYTER_HOME": str(self.work / f"home-{mode}")}
        for _ in range(self.args.runs):
            self.forget_hashes(mode)
            self.measure(
                f"{kind} reload cold",
                mode,
                "ours",
                lambda: self.worker(
                    {"kind": "ours", "op": "load", "ref": ref, "dest": str(ours_dest)}, mode, f"{kind}-reload-cold"
                ),
            )
            self.measure(
                f"{kind} reload warm",
                mode,
                "ours",
                lambda: self.worker(
                    {"kind": "ours", "op": "load", "ref": ref, "dest": str(ours_dest)}, mode, f"{kind}-reload-warm"
                ),
            )
            self.forget_hashes(mode)
            self.measure(f"{kind} reload cold", mode, "ours-cli", lambda: self.command(cli, cli_env))
            self.measure(f"{kind} reload warm", mode, "ours-cli", lambda: self.command(cli, cli_env))
            self.measure(
                f"{kind} reload warm",
                mode,
                "aws-incr",
                lambda: self.command(self.aws(mode, self.s3(mode, f"fixture/{kind}/"), str(aws_dest))),
            )
        for d in (ours_dest, aws_dest):
            shutil.rmtree(d, True)

    def change(self, mode: str) -> None:
        """(3): a new version of (1) with 1% of the files changed in place, as a user edits a folder and saves again.

        Per run: a settled copy of (1) is saved as the first version (untimed; this fills ours' hash cache as any
        earlier save would), then 1% of its files are overwritten with new bytes and sizes, then the timed save."""
        for _ in range(self.args.runs):
            work = fresh_copy(self.data.small, self.work / "out" / self.name(f"change-{mode}"), settled=True)
            name = self.name("change")
            prepared = False
            if "ours" in self.args.tools and self.ours_ok:
                self.forget_hashes(mode)
                try:
                    self.worker({"kind": "ours", "op": "save", "name": name, "folder": str(work)}, mode)
                    prepared = True
                except Failed as exc:
                    print(f"  (first version for the change workload failed: {exc})")
            for rel in self.data.changed_paths:
                shutil.copyfile(self.data.changed / rel, work / rel)
            if prepared:
                self.measure(
                    "change save",
                    mode,
                    "ours",
                    lambda name=name, work=work: self.worker(
                        {"kind": "ours", "op": "save", "name": name, "folder": str(work)}, mode, "change-save"
                    ),
                    cleanup=lambda name=name: self.delete_datasets(mode, [name]),
                )
            prefix = self.name("aws/change-new") + "/"
            self.measure(
                "change save",
                mode,
                "aws",
                lambda work=work, prefix=prefix: self.command(self.aws(mode, str(work), self.s3(mode, prefix))),
                cleanup=functools.partial(self.delete_prefix, mode, prefix),
            )
            # aws s3 sync onto a prefix holding the first version: what a user of plain tools would do.
            prefix = self.name("aws/change-incr") + "/"
            if "aws" in self.args.tools:
                self.upload(self.data.small, mode, prefix)
            self.measure(
                "change save",
                mode,
                "aws-incr",
                lambda work=work, prefix=prefix: self.command(self.aws(mode, str(work), self.s3(mode, prefix))),
                cleanup=functools.partial(self.delete_prefix, mode, prefix),
            )
            shutil.rmtree(work, True)

    def hashing(self) -> None:
        files = sorted(str(p) for p in self.data.large.iterdir())
        for _ in range(self.args.runs):
            self.measure(
                "large hash",
                "-",
                "ours",
                lambda: self.worker({"kind": "hash", "files": files}, "local"),
                needs_transfer=False,
            )
            self.measure("large hash", "-", "sha256sum", lambda: self.command(["sha256sum", *files]))
            self.measure(
                "small hash",
                "-",
                "sha256sum",
                lambda: self.command(
                    ["sh", "-c", 'find "$0" -type f -print0 | xargs -0 sha256sum', str(self.data.small)]
                ),
            )


def children_cpu() -> float:
    """User + system seconds of the child processes waited for so far."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def find_tools() -> dict[str, str]:
    """The real aws and s5cmd next to this Python if there, not a version manager's shim that costs a start-up."""
    found = {}
    for name in ("aws", "s5cmd"):
        beside = Path(sys.executable).parent / name
        found[name] = str(beside) if beside.exists() else (shutil.which(name) or name)
    return found


def bucket(mode: str) -> str:
    return f"bench-{mode}"


def bench_env(work: Path) -> dict:
    """Dummy credentials and empty AWS config files, our worktree first on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in ("GRADIENT_JUPYTER_HOME",)}
    (work / "aws-config").write_text("")
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_CONFIG_FILE=str(work / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(work / "aws-config"),
        PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
    )
    return env


# -- main --------------------------------------------------------------------------------------------------------
def parse(argv: list[str] | None = None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes and 1 run, to check the harness end to end")
    p.add_argument("--files", type=int, help="files in workload (1) (default 2000; the opt-in size is 20000)")
    p.add_argument("--large-files", type=int, help="files in workload (2) (default 4)")
    p.add_argument("--large-mib", type=int, help="MiB per large file (default 128)")
    p.add_argument("--runs", type=int, help="runs per measurement; the median is reported (default 3)")
    p.add_argument("--rtt-ms", type=float, default=20.0, help="round trip time the proxy adds (default 20)")
    p.add_argument(
        "--server",
        choices=("seaweed", "moto"),
        default="seaweed",
        help="the S3 server: SeaweedFS (default) or moto (slow: about 270 small requests a second)",
    )
    p.add_argument("--modes", default="local,proxy", help="local, proxy or both (default)")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help=f"subset of {','.join(WORKLOADS)}")
    p.add_argument("--tools", default=",".join(TOOLS), help=f"subset of {','.join(TOOLS)}")
    p.add_argument("--ops", default="save,load", help="save, load or both (default), for the small and large workloads")
    p.add_argument(
        "--engine-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a GradientStorage setting for ours, e.g. max_concurrency=64 (repeatable)",
    )
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record ours' runs with py-spy (collapsed stacks in DIR) and print where the time goes; "
        "profiled times are slower, not for the table",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (data and downloads)")
    p.add_argument("--no-moto-speedups", action="store_true", help="leave moto's per-request folder scan as it is")
    args = p.parse_args(argv)
    quick = args.quick
    args.files = args.files or (60 if quick else 2000)
    args.large_files = args.large_files or (2 if quick else 4)
    args.large_mib = args.large_mib or (6 if quick else 128)
    args.runs = args.runs or (1 if quick else 3)
    args.modes = [m for m in args.modes.split(",") if m]
    args.workloads = [w for w in args.workloads.split(",") if w]
    args.tools = [t for t in args.tools.split(",") if t]
    args.ops = [o for o in args.ops.split(",") if o]
    for name, values, known in (
        ("mode", args.modes, ("local", "proxy")),
        ("workload", args.workloads, WORKLOADS),
        ("tool", args.tools, TOOLS),
        ("op", args.ops, ("save", "load")),
    ):
        bad = [v for v in values if v not in known]
        if bad:
            p.error(f"unknown {name}(s) {', '.join(bad)}: choose from {', '.join(known)}")
    args.engine_options = {}
    for item in args.engine_option:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--engine-option {item!r}: expected NAME=VALUE")
        args.engine_options[key] = json.loads(value) if value[:1].isdigit() or value in ("true", "false") else value
    # which fixtures (uploaded before the measurements) the loads need
    args.needs = {w for w in args.workloads if w in ("small", "large")} if "load" in args.ops else set()
    args.needs |= {"small", "large"} if "reload" in args.workloads else set()
    return args


def check_tools(args) -> None:
    missing = {"aws": "awscli", "s5cmd": "s5cmd", "sha256sum": "coreutils"}
    for tool in list(args.tools):
        if tool in missing and not shutil.which(tool):
            print(f"note: {tool} is not installed (pip install -r benchmarks/requirements.txt); skipping it")
            args.tools.remove(tool)


def compile_package() -> None:
    """Compile this worktree's gradient_jupyter (the one ours' processes import) to bytecode once, as installing it
    from a wheel does. With PYTHONDONTWRITEBYTECODE set (as on the development machine), every process of ours (the
    worker and the console script alike) would otherwise compile each module it imports: about 0.1 s of every whole
    command."""
    import compileall

    compileall.compile_dir(ROOT / "gradient_jupyter", quiet=1)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    check_tools(args)
    compile_package()
    work = Path(tempfile.mkdtemp(prefix="gradient-bench-"))
    started = time.time()
    load_start = os.getloadavg()[1]
    server = proxy = None
    try:
        large = args.large_files if {"large", "reload", "hash"} & set(args.workloads) else 0
        print(f"data: {args.files} files of 4-64 KiB, {large} x {args.large_mib} MiB, in {work}", flush=True)
        data = generate(work / "data", args.files, large, args.large_mib)
        if args.server == "seaweed":
            server = Seaweed(work / "seaweed", "testing", "testing")
            server.start()
            server_url = server.url
        else:
            server, server_url = start_moto(not args.no_moto_speedups)
        bench = Bench(args, work, data, server_url)
        bench.server = server
        if "proxy" in args.modes:
            proxy = ProxyProcess(server_url, args.rtt_ms)
            bench.proxy_url = proxy.url
        print(
            f"{args.server} at {server_url}"
            + (f", latency proxy ({args.rtt_ms:g} ms round trip) at {proxy.url}" if proxy else ""),
            flush=True,
        )
        bench.setup(args.modes)
        for mode in args.modes:
            for kind in ("small", "large"):
                if kind in args.workloads:
                    bench.transfer(kind, mode)
            if "change" in args.workloads:
                bench.change(mode)
            if "reload" in args.workloads:
                for kind in ("small", "large"):
                    bench.reload(kind, mode)
        if "hash" in args.workloads:
            bench.hashing()
        if proxy:
            stats = proxy.stop()
            proxy = None
            if stats:
                print(f"latency proxy: {stats}")
        minutes = (time.time() - started) / 60
        command = "python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
        lines = [
            f"`{command.strip()}`: {args.server}, {args.files} files ({data.small_bytes / MIB:.0f} MiB), "
            f"{large} x {args.large_mib} MiB, {data.changed_files} files changed "
            f"({data.changed_bytes} bytes), median of {args.runs} run(s), {minutes:.0f} min, "
            f"{os.cpu_count()} CPUs, load average {load_start:.1f} at the start and {os.getloadavg()[1]:.1f} "
            "(5 min) at the end",
            "",
            *table(bench, args.files),
            "",
            *targets(bench, args.files),
        ]
        print("\n" + "\n".join(lines))
        if args.profile:
            from profile_summary import summarize

            for path in sorted(args.profile.glob("*.txt")):
                print("\n" + "\n".join(summarize(path)))
        if args.json:
            args.json.write_text(
                json.dumps(
                    {"command": command, "results": [vars(r) for r in bench.results.values()], "table": lines}, indent=1
                )
            )
        return 0
    finally:
        if proxy:
            proxy.stop()
        if server:
            server.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, True)


if __name__ == "__main__":
    sys.exit(main())
