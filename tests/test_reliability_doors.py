"""Through every door: committed versions refuse change, secrets never leak, hostile input never gets a 500."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nbclient import NotebookClient

from .helpers.jupyter_process import Server

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

SECRETS = {door: f"{door}-s3cr3t-{os.urandom(6).hex()}" for door in ("rest", "patch", "cli", "magic", "nb", "bad")}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("doors"), "--log-level=DEBUG")
    yield s
    s.stop()


def cli(server, *words, input=None):
    return subprocess.run(
        [sys.executable, "-m", "gradient_jupyter.cli", *words],
        capture_output=True,
        text=True,
        env=server.env,
        timeout=120,
        input=input,
    )


def test_secrets_never_leak_through_any_door(server, s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    seen: list[str] = []  # everything a user, a log reader or a notebook file could see

    def keep(response):
        seen.append(response.text)
        return response

    base = {"bucket": bucket, "endpoint": endpoint, "accessKey": "testing"}
    created = keep(
        server(
            "POST",
            "storage-providers",
            json={"name": "rest", "type": "s3", "config": {**base, "secretAccessKey": SECRETS["rest"]}},
        )
    )
    assert created.status_code == 201
    pid = created.json()["id"]
    keep(server("PATCH", f"storage-providers/{pid}", json={"config": {"secretAccessKey": SECRETS["patch"]}}))
    keep(server("GET", "storage-providers"))
    keep(server("GET", f"storage-providers/{pid}"))
    keep(server("POST", f"storage-providers/{pid}/check", json={"origins": ["http://127.0.0.1:8888"]}))
    keep(server("GET", f"storage-providers/{pid}/policy"))
    bad = keep(
        server(
            "POST",
            "storage-providers",
            json={
                "name": "bad",
                "type": "s3",
                "config": {**base, "bucket": "Bad_Bucket", "secretAccessKey": SECRETS["bad"]},
            },
        )
    )
    assert bad.status_code == 400
    bad = keep(
        server(
            "POST",
            "storage-providers",
            json={"name": "bad", "type": "s3", "config": {**base, "secretAccessKey": [SECRETS["bad"]]}},
        )
    )
    assert bad.status_code == 400

    r = cli(
        server,
        "storageProviders",
        "create",
        "s3",
        "--name",
        "cli",
        "--bucket",
        bucket,
        "--endpoint",
        endpoint,
        "--accessKey",
        "testing",
        f"--secretAccessKey={SECRETS['cli']}",
    )
    assert r.returncode == 0, r.stderr
    seen += [r.stdout, r.stderr]
    for words in (
        ["storageProviders", "list"],
        ["storageProviders", "details", "--id", "cli"],
        ["storageProviders", "check", "--id", "cli", "--origin", "http://127.0.0.1:8888"],
    ):
        r = cli(server, *words)
        seen += [r.stdout, r.stderr]
    r = cli(
        server,
        "storageProviders",
        "create",
        "s3",
        "--name",
        "bad2",
        "--bucket",
        bucket,
        "--endpoint",
        "nope",
        "--accessKey",
        "k",
        f"--secretAccessKey={SECRETS['bad']}",
    )
    assert r.returncode == 1
    seen += [r.stdout, r.stderr]

    # A notebook run in a real kernel, saved with its outputs: the secret comes from an environment variable.
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(src)
        for src in (
            "%load_ext gradient_jupyter",
            "import os\nsecret = os.environ['NB_SECRET']",
            f"%gradient_storage storageProviders create s3 --name nb --bucket {bucket} --endpoint {endpoint} "
            "--accessKey testing --secretAccessKey $secret",
            "%gradient_storage storageProviders details --id nb",
            "%gradient_storage storageProviders list",
            "import gradient_jupyter\ngradient_jupyter.default_engine().registry.get('nb')",
            "gradient_jupyter.default_engine().registry.get('nb').to_json()",
            "%gradient_storage storageProviders update s3 --id nb --endpoint bad-url --secretAccessKey $secret",
        )
    ]
    env = {**server.env, "NB_SECRET": SECRETS["nb"]}
    old = os.environ.copy()
    os.environ.update(env)
    try:
        NotebookClient(
            nb, timeout=120, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(tmp_path)}}
        ).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    saved = tmp_path / "saved.ipynb"
    nbformat.write(nb, saved)
    seen.append(saved.read_text())
    assert "Created storage provider" in saved.read_text() and "Invalid endpoint" in saved.read_text()

    seen.append("".join(server.log))
    assert "DEBUG" in seen[-1]  # the log really is at debug level
    everything = "\n".join(seen)
    leaks = [door for door, secret in SECRETS.items() if secret in everything]
    assert leaks == [], f"secrets leaked from: {leaks}"
    assert "********" in everything
    home = Path(server.env["GRADIENT_JUPYTER_HOME"])
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "registry.sqlite3").stat().st_mode) == 0o600
    # and the secrets did arrive where they belong
    from gradient_jupyter.engine import Engine, GradientStorage

    os.environ["GRADIENT_JUPYTER_HOME"] = str(home)
    registry = Engine(GradientStorage()).registry
    assert registry.get("rest").config["secretAccessKey"] == SECRETS["patch"]
    assert registry.get("cli").config["secretAccessKey"] == SECRETS["cli"]
    assert registry.get("nb").config["secretAccessKey"] == SECRETS["nb"]


def test_a_committed_version_refuses_change_through_every_door(server, tmp_path):
    from gradient_jupyter.engine import Engine, GradientStorage, Immutable

    ds = server("POST", "datasets", json={"name": "frozen"}).json()
    v = server("POST", f"datasets/{ds['id']}/versions", json={}).json()["version"]
    assert server("PUT", f"datasets/{ds['id']}/versions/{v}/files/a.txt", data=b"original").status_code == 200
    assert server("POST", f"datasets/{ds['id']}/versions/{v}/commit").status_code == 200
    ref = f"{ds['id']}:{v}"

    refusals = {
        "REST PUT": server("PUT", f"datasets/{ds['id']}/versions/{v}/files/a.txt", data=b"changed").status_code,
        "REST PUT new": server("PUT", f"datasets/{ds['id']}/versions/{v}/files/b.txt", data=b"new").status_code,
        "REST DELETE": server("DELETE", f"datasets/{ds['id']}/versions/{v}/files/a.txt").status_code,
    }
    assert refusals == {"REST PUT": 409, "REST PUT new": 409, "REST DELETE": 409}
    (tmp_path / "b.txt").write_bytes(b"changed")
    for words in (
        ["datasets", "files", "put", "--id", ref, "--source-path", str(tmp_path / "b.txt")],
        ["datasets", "files", "delete", "--id", ref, "--path", "a.txt"],
    ):
        r = cli(server, *words)
        assert r.returncode == 1 and "committed" in r.stderr, r.stderr
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "gradient_jupyter")
    os.environ["GRADIENT_JUPYTER_HOME"] = server.env["GRADIENT_JUPYTER_HOME"]
    for line in (
        f"datasets files put --id {ref} --source-path {tmp_path / 'b.txt'}",
        f"datasets files delete --id {ref} --path a.txt",
    ):
        with pytest.raises(Exception, match="committed"):
            ip.run_line_magic("gradient_storage", line)
    engine = Engine(GradientStorage())
    with pytest.raises(Immutable):
        engine.datasets.put_file(ds["id"], v, "a.txt", b"changed")
    with pytest.raises(Immutable):
        engine.datasets.delete_file(ds["id"], v, "a.txt")
    got = server("GET", f"datasets/{ds['id']}/versions/{v}/files/a.txt")
    assert got.status_code == 200 and got.content == b"original"
    assert [f["path"] for f in server("GET", f"datasets/{ds['id']}/versions/{v}/files").json()["files"]] == ["a.txt"]


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)
PATHS = TEXT | st.sampled_from(["../x", "a/../../b", "%2e%2e/x", "..%2fx", "a\\b", "a\x00b", "/abs", "./a", "a//b"])
statuses: list[int] = []


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=TEXT, tag=TEXT, ref=TEXT, path=PATHS, description=st.one_of(TEXT, st.integers(), st.none()))
def test_hostile_input_over_rest_gets_clear_4xx_or_success(server, name, tag, ref, path, description):
    ds = server("POST", "datasets", json={"name": "fuzz"})
    fuzz = ds.json()["id"] if ds.status_code == 201 else server("GET", "datasets/fuzz").json()["id"]
    calls = [
        server("POST", "datasets", json={"name": name, "description": description}),
        server("GET", "datasets/ref/" + quote(ref, safe="")),
        server("GET", "datasets/" + quote(name, safe="")),
        server("PUT", f"datasets/{fuzz}/tags/" + quote(tag, safe=""), json={"version": "aaaaaaa"}),
        server("PUT", f"datasets/{fuzz}/versions/aaaaaaa/files/" + quote(path, safe="/"), data=b"x"),
        server("GET", f"datasets/{fuzz}/versions/aaaaaaa/files/" + quote(path, safe="/")),
        server("POST", "datasets", data=name.encode("utf-8", "replace"), headers={"Content-Type": "application/json"}),
    ]
    for r in calls:
        statuses.append(r.status_code)
        assert r.status_code < 500, (r.request.method, r.request.url, r.status_code, r.text)
        if r.status_code >= 400:
            body = r.json()
            assert body["message"] and body["reason"] and "Traceback" not in r.text
    assert "Traceback" not in "".join(server.log)


def test_fuzz_really_ran(server):
    assert len(statuses) >= 7 * 50 and any(400 <= s < 500 for s in statuses)
