"""The retired `gradient` CLI (PyPI gradient==2.0.6), unchanged, against the extension's Gradient API.

A real `jupyter server` subprocess with the extension, a moto S3 server over HTTP, and the real CLI as a subprocess in
its own virtual environment (built once under ~/.cache/gradient-jupyter; the test is skipped only when pip cannot
reach a package index to build it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from .helpers import free_port, make_folder
from .helpers import read_folder as tree  # without the record loads keep in .gradient/

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "compat-test-token-5d1e"
SECRET = "secret-key"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gradient-jupyter"
VENV = Path(os.environ.get("GRADIENT_CLI_VENV") or CACHE / "gradient-cli-venv")
# Installing gradient 2.0.6 on Python 3.11 needs these pins (PyYAML 5.4.1 builds only with Cython < 3).
PIP_STEPS = [
    ["cython<3", "wheel", "setuptools"],
    ["--no-build-isolation", "pyyaml==5.4.1"],
    ["gradient==2.0.6", "click<8.2"],
]
NO_NETWORK = (
    "No matching distribution",
    "Could not find a version",
    "NewConnectionError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "ConnectionError",
    "timed out",
)
BIG = 15_001_000  # just over the CLI's 15 MB multipart threshold: two parts


@pytest.fixture(scope="session")
def gradient_cli() -> Path:
    """bin/gradient of a virtual environment holding exactly the retired CLI; built once, then reused."""
    gradient, done = VENV / "bin" / "gradient", VENV / ".gradient-jupyter-complete"
    if done.exists() and gradient.exists():
        return gradient
    shutil.rmtree(VENV, ignore_errors=True)
    VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for step in PIP_STEPS:
        r = subprocess.run(pip + step, capture_output=True, text=True, env=env)
        if r.returncode:
            shutil.rmtree(VENV, ignore_errors=True)
            if any(sign in r.stdout + r.stderr for sign in NO_NETWORK):
                pytest.skip(f"cannot build the gradient CLI venv (no package index?): pip said: {r.stderr[-800:]}")
            pytest.fail(f"pip install {' '.join(step)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    done.write_text("gradient==2.0.6\n")
    return gradient


@pytest.fixture(scope="module")
def bucket(moto_server):
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        s3.create_bucket(Bucket="my-bucket")  # the seed document's bucket name
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    return s3


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real `jupyter server` with the extension (this worktree's code), on 127.0.0.1 with a token."""
    base = tmp_path_factory.mktemp("compat-server")
    config = base / "config"
    config.mkdir()
    (config / "jupyter_server_config.json").write_text(
        json.dumps(
            {"ServerApp": {"jpserver_extensions": {"gradient_jupyter": True}}, "IdentityProvider": {"token": TOKEN}}
        )
    )
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "GRADIENT_JUPYTER_HOME": str(base / "gradient-home"),
        "HOME": str(base),
        "JUPYTER_CONFIG_DIR": str(config),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(base / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(base / "aws-creds"),
    }
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        env.pop(var, None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "server",
            "--allow-root",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
        ],
        env=env,
        cwd=base,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    log: list[str] = []
    for line in proc.stderr:  # wait for the server to say it is up
        log.append(line)
        if "is running at" in line:
            break
    else:
        proc.wait()
        pytest.fail("jupyter server did not start:\n" + "".join(log[-40:]))
    threading.Thread(target=lambda: log.extend(proc.stderr), daemon=True).start()
    yield {"url": f"http://127.0.0.1:{port}", "home": base / "gradient-home", "log": log}
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def api(server):
    """PAPERSPACE_CONFIG_HOST for the CLI."""
    return server["url"] + "/gradient/compat"


@pytest.fixture
def gradient(gradient_cli, api, tmp_path):
    """Run the real CLI; returns (stdout, stderr). Its errors go to stderr (exit status stays 0, as in 2.0.6)."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PAPERSPACE_CONFIG_HOST": api,
        "PAPERSPACE_API_KEY": TOKEN,
        "PAPERSPACE_CLI_DEV": "true",
        "PAPERSPACE_USE_CONSOLE_COLORS": "false",
        "LINES": "1000",
        "COLUMNS": "200",
        "LC_ALL": "C.UTF-8",
    }

    def run(*args, key=None):
        r = subprocess.run(
            [str(gradient_cli), *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
            env={**env, **({"PAPERSPACE_API_KEY": key} if key is not None else {})},
        )
        assert r.returncode == 0, r.stderr
        return r.stdout, r.stderr

    return run


def example_files(root: Path) -> dict[str, bytes]:
    """Write the folder the CLI uploads (small, empty, nested and multipart files); returns its files."""
    files = {"a.csv": b"x,y\n1,2\n", "sub/b.bin": os.urandom(3000), "empty.txt": b"", "big.bin": os.urandom(BIG)}
    make_folder(root, files)
    return files


def only(pattern: str, text: str) -> str:
    m = re.search(pattern, text)
    assert m, f"{pattern!r} not in:\n{text}"
    return m.group(1)


def engine_on(server, monkeypatch):
    from gradient_jupyter.engine import Engine, GradientStorage

    monkeypatch.setenv("GRADIENT_JUPYTER_HOME", str(server["home"]))
    return Engine(GradientStorage())


def presign(api, ds, version, *calls):
    return requests.post(
        f"{api}/datasets/{ds}/versions/{version}/s3/preSignedUrls",
        headers={"X-API-Key": TOKEN},
        json={"calls": [dict(c) for c in calls]},
    )


# --------------------------------------------------------------------------------------------------------------
def test_seed_flow_and_dataset_round_trip_on_s3(gradient, server, api, bucket, moto_server, tmp_path, monkeypatch):
    out, err = gradient(
        "storageProviders",
        "create",
        "s3",
        "--name",
        "test",
        "--bucket",
        "my-bucket",
        "--accessKey=access-key",
        f"--secretAccessKey={SECRET}",
        "--endpoint",
        moto_server,
    )
    sp = only(r"^Created new storage provider with id: (sp[a-z0-9]{13})$", out.strip())
    out, err = gradient("storageProviders", "details", "--id", sp)
    assert "bucket: my-bucket" in out and "secretAccessKey: ********" in out and SECRET not in out + err
    out, _ = gradient("storageProviders", "list")
    assert re.search(rf"\| test +\| {sp} \| s3 ", out) and "Gradient Managed" in out and SECRET not in out
    assert (
        gradient("storageProviders", "update", "s3", "--id", sp, "--region", "us-east-1")[0].strip()
        == "Updated storage provider"
    )

    out, _ = gradient("datasets", "create", "--name", "mnist", "--storageProviderId", sp, "--description", "digits")
    ds = only(r"Created dataset: (ds[a-z0-9]{13})", out)
    out, _ = gradient("datasets", "list")
    assert re.search(rf"\| mnist +\| {ds} \| test \({sp}\)", out)

    folder = tmp_path / "folder"
    files = example_files(folder)
    out, err = gradient(
        "datasets", "versions", "create", "--id", ds, "--message", "first", "--source-path", str(folder)
    )
    version = only(rf"Created dataset version: {ds}:([a-z0-9]{{7}})", out)
    assert f"Committed dataset version: {ds}:{version}" in out, out + err
    out, _ = gradient("datasets", "versions", "details", "--id", f"{ds}:{version}")
    assert re.search(r"\| Committed +\| true", out) and re.search(r"\| Message +\| first", out)
    out, _ = gradient("datasets", "versions", "list", "--id", ds)
    assert f"{ds}:{version}" in out
    assert (
        gradient("datasets", "tags", "set", "--id", f"{ds}:{version}", "--name", "prod")[0].strip()
        == f"Set dataset tag: {ds}:prod"
    )
    out, _ = gradient("datasets", "tags", "list", "--id", ds)
    assert re.search(rf"\| {ds}:{version} +\| prod", out)

    out, _ = gradient("datasets", "files", "list", "--id", f"{ds}:prod")
    assert re.search(r"\| folder/ +\|", out) and "a.csv" not in out  # one level, like Gradient
    out, _ = gradient("datasets", "files", "list", "--id", f"{ds}:prod", "--recursive", "true")
    for path, data in files.items():
        assert re.search(rf"\| folder/{re.escape(path)} +\| {len(data)} ", out), out

    # The CLI's uploads went by presigned URL to the version's uploads/; the commit copied them to data/, hashed.
    team = engine_on(server, monkeypatch).team_id
    prefix = f"{team}/datasets/{ds}/versions/{version}/"
    manifest = json.loads(bucket.get_object(Bucket="my-bucket", Key=prefix + "manifest.json")["Body"].read())
    assert {f["path"]: (f["size"], f["sha256"], f["key"]) for f in manifest["files"]} == {
        f"folder/{p}": (len(d), hashlib.sha256(d).hexdigest(), f"{prefix}data/folder/{p}") for p, d in files.items()
    }

    gradient("datasets", "files", "get", "--id", f"{ds}:prod", "--target-path", str(tmp_path / "got"))
    assert tree(tmp_path / "got") == {f"folder/{p}": d for p, d in files.items()}
    gradient(
        "datasets",
        "files",
        "get",
        "--id",
        f"mnist:{version}",
        "--source-path",
        "folder/sub",
        "--target-path",
        str(tmp_path / "one"),
    )
    assert tree(tmp_path / "one") == {"folder/sub/b.bin": files["sub/b.bin"]}

    # The same version through the engine, verified while it streams.
    from gradient_jupyter.engine import transfer

    engine = engine_on(server, monkeypatch)
    summary = transfer.load(engine, "mnist:prod", tmp_path / "loaded")
    assert summary.version.version == version and summary.files == len(files)
    assert tree(tmp_path / "loaded") == {f"folder/{p}": d for p, d in files.items()}

    # And through the magic, in an IPython shell on the same data home.
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "gradient_jupyter")
        loaded = shell.run_line_magic("gradient_storage", f"load mnist:prod {tmp_path / 'magic'}")
    finally:
        InteractiveShell.clear_instance()
    assert str(loaded).startswith(f"Loaded {ds}:{version} (dataset mnist, tag prod) into {tmp_path / 'magic'}")
    assert tree(tmp_path / "magic") == {f"folder/{p}": d for p, d in files.items()}

    # A committed version refuses writes, and nothing reaches the bucket.
    before = [o["Key"] for o in bucket.list_objects_v2(Bucket="my-bucket", Prefix=prefix)["Contents"]]
    out, err = gradient("datasets", "files", "put", "--id", f"{ds}:{version}", "--source-path", str(folder / "a.csv"))
    assert f"Version {ds}:{version} is committed and cannot change" in err
    assert [o["Key"] for o in bucket.list_objects_v2(Bucket="my-bucket", Prefix=prefix)["Contents"]] == before

    # Deleting: tag, version, dataset, provider; a provider in use is refused with the engine's message.
    assert "Deleted dataset tag" in gradient("datasets", "tags", "delete", "--id", f"{ds}:prod")[0]
    out, err = gradient("storageProviders", "delete", "--id", sp)
    assert "1 dataset(s) use storage provider 'test'" in err
    assert "Deleted dataset version" in gradient("datasets", "versions", "delete", "--id", f"{ds}:{version}")[0]
    assert "Deleted dataset" in gradient("datasets", "delete", "--id", ds)[0]
    assert "Deleted storage provider" in gradient("storageProviders", "delete", "--id", sp)[0]
    assert "Unknown dataset" in gradient("datasets", "details", "--id", ds)[1]
    assert not bucket.list_objects_v2(Bucket="my-bucket", Prefix=f"{team}/datasets/{ds}/").get("Contents")
    assert SECRET not in "".join(server["log"])


def test_embedded_managed_round_trip(gradient, server, api, tmp_path, monkeypatch):
    """Gradient Managed has no S3 endpoint: the extension signs and serves the upload URLs too (multipart included)."""
    managed = requests.get(f"{api}/storageProviders", headers={"X-API-Key": TOKEN}).json()
    managed = next(p["id"] for p in managed if p["isGradientManaged"])
    ds = only(
        r"Created dataset: (ds[a-z0-9]{13})",
        gradient("datasets", "create", "--name", "local", "--storageProviderId", managed)[0],
    )
    folder = tmp_path / "folder"
    files = example_files(folder)
    out, err = gradient("datasets", "versions", "create", "--id", "local", "--source-path", f"{folder}/")
    v1 = only(r"Created dataset version: local:([a-z0-9]{7})", out)
    assert f"Committed dataset version: local:{v1}" in out, err

    # files put/delete on an uncommitted version, then commit: a second version.
    out, _ = gradient("datasets", "versions", "create", "--id", ds, "--message", "second")
    v2 = only(rf"Created dataset version: {ds}:([a-z0-9]{{7}})", out)
    (tmp_path / "new.csv").write_bytes(b"new\n")
    gradient(
        "datasets",
        "files",
        "put",
        "--id",
        f"{ds}:{v2}",
        "--source-path",
        str(tmp_path / "new.csv"),
        "--target-path",
        "/x/",
    )
    gradient("datasets", "files", "put", "--id", f"{ds}:{v2}", "--source-path", str(folder / "a.csv"))
    assert "x/new.csv" in gradient("datasets", "files", "list", "--id", f"{ds}:{v2}", "--recursive", "true")[0]
    gradient("datasets", "files", "delete", "--id", f"{ds}:{v2}", "--path", "/a.csv")
    out, _ = gradient("datasets", "versions", "list", "--id", ds, "--isCommitted", "false")
    assert re.search(rf"{ds}:{v2} +\| second", out)
    out, _ = gradient("datasets", "versions", "commit", "--id", f"{ds}:{v2}")
    assert f"Committed dataset version: {ds}:{v2}" in out
    assert "already committed" in gradient("datasets", "versions", "commit", "--id", f"{ds}:{v2}")[0]

    gradient("datasets", "files", "get", "--id", f"local:{v1}", "--target-path", str(tmp_path / "got"))
    assert tree(tmp_path / "got") == files
    from gradient_jupyter.engine import transfer

    engine = engine_on(server, monkeypatch)
    transfer.load(engine, f"local:{v1}", tmp_path / "v1")
    transfer.load(engine, f"local:{v2}", tmp_path / "v2")
    assert tree(tmp_path / "v1") == files and tree(tmp_path / "v2") == {"x/new.csv": b"new\n"}
    assert not list((server["home"] / "tmp" / "compat-uploads").iterdir())  # multipart parts cleaned up


def test_refusals(server, api, bucket, moto_server, tmp_path, monkeypatch):
    """Nothing is open; URLs cannot be bent to another version; committed versions refuse writes."""
    assert requests.get(f"{api}/datasets").status_code == 403
    r = requests.get(f"{api}/storageProviders", headers={"X-API-Key": "wrong"})
    assert r.status_code == 403 and "PAPERSPACE_API_KEY" in r.json()["error"]["message"]
    assert requests.get(f"{api}/s3").status_code == 403

    engine = engine_on(server, monkeypatch)
    managed = engine.registry.managed().id
    sp = engine.registry.create(
        "refusals", {"bucket": "my-bucket", "endpoint": moto_server, "accessKey": "k", "secretAccessKey": SECRET}
    ).id
    head = {"X-API-Key": TOKEN}
    listing = requests.get(f"{api}/storageProviders?filter[order][]=name%20ASC", headers=head)
    assert SECRET not in listing.text and "********" in listing.text
    # Bad input: a clear error naming the problem, and nothing changes.
    before = requests.get(f"{api}/datasets", headers=head).json()
    r = requests.post(f"{api}/datasets", headers=head, json={"name": "x", "colour": "red"})
    assert r.status_code == 400 and "colour" in r.json()["error"]["message"]
    r = requests.post(f"{api}/datasets", headers=head, json={"name": "bad name"})
    assert r.status_code == 400 and "Invalid dataset name 'bad name'" in r.json()["error"]["message"]
    assert requests.get(f"{api}/datasets?filter[limit]=many", headers=head).status_code == 400
    assert requests.get(f"{api}/datasets", headers=head).json() == before
    r = requests.get(f"{api}/projects", headers=head)
    assert r.status_code == 404 and "not part of the Gradient API" in r.json()["error"]["message"]
    for provider in (managed, sp):
        ds = requests.post(
            f"{api}/datasets", headers=head, json={"name": f"r-{provider}", "storageProviderId": provider}
        ).json()["id"]
        other = requests.post(f"{api}/datasets", headers=head, json={"name": f"o-{provider}"}).json()["id"]
        v1 = requests.post(f"{api}/datasets/{ds}/versions", headers=head, json={}).json()["version"]
        v2 = requests.post(f"{api}/datasets/{ds}/versions", headers=head, json={}).json()["version"]

        put = presign(api, ds, v1, {"method": "putObject", "params": {"Key": "/a/b.csv", "ContentType": "text/csv"}})
        assert put.status_code == 200, put.text
        url = put.json()[0]["url"]
        if provider == sp:  # a real presigned URL of the bucket, for a fresh key under this version's uploads/
            assert re.fullmatch(
                f"/my-bucket/{engine.team_id}/datasets/{ds}/versions/{v1}/uploads/[0-9a-f]{{32}}", urlsplit(url).path
            )
        assert requests.put(url, data=b"1,2\n", headers={"Content-Type": "text/csv"}).status_code == 200
        committed = requests.post(f"{api}/datasets/{ds}/versions/{v1}", headers=head, json={"isCommitted": True})
        assert committed.json()["isCommitted"] is True and committed.json()["fileCount"] == 1

        get = presign(api, ds, v1, {"method": "getObject", "params": {"Key": "a/b.csv"}}).json()[0]["url"]
        assert requests.get(get).content == b"1,2\n"
        # The same URL bent to another version, or to another method, is refused.
        query = parse_qs(urlsplit(get).query)
        grant = json.loads(base64.urlsafe_b64decode(query["grant"][0] + "=="))
        bent = base64.urlsafe_b64encode(json.dumps({**grant, "v": v2}).encode()).decode().rstrip("=")
        r = requests.get(get.replace(query["grant"][0], bent))
        assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text
        assert requests.delete(get).status_code == 405
        # An expired URL, signed with the server's own key, is refused.
        from gradient_jupyter.server.compat import UrlSigner

        expired = UrlSigner(server["home"]).sign(grant, seconds=-1)
        assert requests.get(f"{api}/s3?{expired}").status_code == 403

        # Writes to a committed version, keys outside the version, versions of other datasets: all refused.
        r = presign(api, ds, v1, {"method": "putObject", "params": {"Key": "c.csv"}})
        assert r.status_code == 409 and "is committed" in r.json()["error"]["message"]
        assert presign(api, ds, v2, {"method": "putObject", "params": {"Key": "../v1/data/x"}}).status_code == 400
        assert presign(api, other, v2, {"method": "getObject", "params": {"Key": "a/b.csv"}}).status_code == 404
        assert presign(api, ds, v2, {"method": "copyObject", "params": {}}).status_code == 400
        assert (
            presign(api, ds, v2, {"method": "putObject", "params": {"Key": "x", "ACL": "public-read"}}).status_code
            == 400
        )
        assert (
            requests.post(f"{api}/datasets/{ds}/versions/{v1}", headers=head, json={"isCommitted": False}).status_code
            == 409
        )

        # A write URL handed out before the commit is refused after it (the extension's own URLs).
        delete = presign(api, ds, v2, {"method": "deleteObject", "params": {"Key": "z"}}).json()[0]["url"]
        requests.put(presign(api, ds, v2, {"method": "putObject", "params": {"Key": "z"}}).json()[0]["url"], data=b"z")
        requests.post(f"{api}/datasets/{ds}/versions/{v2}", headers=head, json={"isCommitted": True})
        r = requests.delete(delete)
        assert r.status_code == 409 and "is committed" in r.text
        listing = presign(api, ds, v2, {"method": "listObjectsV2", "params": {"Prefix": "/"}}).json()[0]["url"]
        assert "<Key>/z</Key><Size>1</Size>" in requests.get(listing).text

        if provider == managed:  # bytes the extension streams itself are checked against the manifest first
            stored = server["home"] / "managed" / engine.team_id / "datasets" / ds / "versions" / v1 / "data/a/b.csv"
            stored.write_bytes(b"1,3\n")
            r = requests.get(get)
            assert r.status_code == 502 and "does not match its manifest" in r.text and b"1,3" not in r.content
