"""The magic in a real kernel: the walkthrough notebook end to end, the hidden prompt, widget progress bars."""

from __future__ import annotations

import json
import os
import queue
import re
import uuid
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import start_new_kernel
from nbclient import NotebookClient

from .helpers import SECRET

WALKTHROUGH = Path(__file__).parent.parent / "notebooks" / "walkthrough.ipynb"
WIDGET = "application/vnd.jupyter.widget-view+json"


def texts(cell) -> str:
    out = []
    for o in cell.get("outputs", []):
        out.append(o.get("text", ""))
        out += [str(v) for k, v in o.get("data", {}).items() if k.startswith("text/")]
        out += o.get("traceback", [])
    return "\n".join(out)


@pytest.mark.slow
def test_walkthrough_runs_against_a_local_s3_endpoint(moto_server, tmp_path, monkeypatch):
    bucket = "walkthrough-" + uuid.uuid4().hex[:8]
    monkeypatch.setenv("GRADIENT_DEMO_S3_ENDPOINT", moto_server)
    monkeypatch.setenv("GRADIENT_DEMO_BUCKET", bucket)
    nb = nbformat.read(WALKTHROUGH, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    by_source = {c.source.splitlines()[0]: c for c in code}
    created = texts(
        by_source[
            "%gradient_storage storageProviders create s3 --name demo --bucket $bucket "
            "--endpoint $endpoint --region us-east-1"
        ]
    )
    assert re.search(r"Created storage provider: sp[a-z0-9]{13}", created)
    report = texts(by_source["%gradient_storage storageProviders check --id demo --origin http://127.0.0.1:8888 --fix"])
    for check in ("credentials", "bucket", "list", "read-write", "conditional-writes", "cors", "preflight"):
        assert f"[PASS] {check}:" in report, (check, report)

    save = by_source['saved = %gradient_storage save flowers $data --provider demo -m "first cut"']
    ref = re.search(r"Saved (ds[a-z0-9]{13}:[a-z0-9]{7}) \(dataset flowers\)", texts(save)).group(1)
    assert "4 files, 146.5 KiB sent" in texts(save)
    assert any(WIDGET in o.get("data", {}) for o in save.outputs)  # tqdm.auto drew a widget bar in the kernel
    assert any(ref in o.get("data", {}).get("text/html", "") for o in save.outputs)

    assert f"Set dataset tag: {ref.split(':')[0]}:reviewed" in texts(
        by_source["%gradient_storage datasets tags set --id {saved.ref} --name reviewed"]
    )
    second = texts(by_source['(data / "notes.txt").write_text("added in the second version\\n")'])
    assert "5 files, 28 B sent" in second and "146.5 KiB skipped" in second
    listed = texts(by_source["%%gradient_storage datasets"])
    assert "with notes" in listed and f"reviewed  {ref}" in listed
    assert "Loaded " + ref in texts(by_source['restored = workdir / "restored"'])
    assert "restored matches the first version: True | notes.txt absent: True" in texts(
        by_source[
            'same = all((restored / p).read_bytes() == (data / p).read_bytes() for p in ["iris.csv", '
            '"images/0.bin", "images/2.bin"])'
        ]
    )
    assert "added in the second version" in texts(code[-1])

    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(k.endswith("/manifest.json") for k in keys)  # the versions really live in the demo bucket


@pytest.fixture
def kernel(tmp_path):
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path), env=os.environ.copy())
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def execute(kc, code: str, answer: str | None = None) -> tuple[list[dict], list[dict]]:
    """Run code in the kernel; answer an input request with `answer`. Returns (iopub messages, input requests)."""
    msg_id = kc.execute(code, allow_stdin=answer is not None)
    asked = []
    if answer is not None:
        request = kc.get_stdin_msg(timeout=60)
        asked.append(request["content"])
        kc.input(answer)
    messages = []
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=60)
        except queue.Empty:  # pragma: no cover - a hung kernel fails the test below
            break
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    return messages, asked


def test_hidden_prompt_in_a_real_kernel_keeps_the_secret_out_of_every_message(kernel, tmp_path):
    execute(kernel, "%load_ext gradient_jupyter")
    messages, asked = execute(
        kernel, "%gradient_storage storageProviders create s3 --name p --bucket my-bucket --accessKey AK", answer=SECRET
    )
    assert asked == [{"prompt": "Secret access key for AK: ", "password": True}]
    shown = json.dumps([m["content"] for m in messages])
    assert re.search(r"Created storage provider: sp[a-z0-9]{13}", shown)
    more, _ = execute(kernel, "%gradient_storage storageProviders details --id p")
    history, _ = execute(kernel, "_, get_ipython().history_manager.output_hist, In")
    everything = shown + json.dumps([m["content"] for m in more + history])
    assert "********" in everything and SECRET not in everything
    from gradient_jupyter.engine import Engine, GradientStorage

    assert Engine(GradientStorage()).registry.get("p").config["secretAccessKey"] == SECRET


def test_engine_errors_in_a_kernel_are_one_line_without_traceback(kernel):
    execute(kernel, "%load_ext gradient_jupyter")
    messages, _ = execute(kernel, "%gradient_storage datasets details --id nope")
    errors = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert errors and errors[0]["traceback"] == ["Error: Unknown dataset 'nope': list datasets with 'datasets list'."]
    usage, _ = execute(kernel, "%gradient_storage datasets details")
    shown = json.dumps([m["content"] for m in usage])
    assert "UsageError" in shown and "usage: %gradient_storage datasets details" in shown


def test_a_kernel_that_cannot_ask_for_the_secret_says_what_to_give(kernel):
    """Run where no one can answer an input request (nbconvert, papermill): one plain error naming
    --secretAccessKey, not StdinNotImplementedError, and no provider is made."""
    execute(kernel, "%load_ext gradient_jupyter")
    messages, _ = execute(kernel, "%gradient_storage storageProviders create s3 --name p --bucket b --accessKey AK")
    errors = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert errors and len(errors[0]["traceback"]) == 1, errors
    assert errors[0]["traceback"][0].startswith("Error: No secret access key was given")
    assert "--secretAccessKey" in errors[0]["traceback"][0] and "StdinNotImplemented" not in json.dumps(errors)
    from gradient_jupyter.engine import Engine, GradientStorage

    assert [p.name for p in Engine(GradientStorage()).registry.list()] == ["Gradient Managed"]


def test_what_a_magic_line_did_shows_once_wherever_it_stands(s3_bucket, tmp_path, monkeypatch):
    """IPython shows only a cell's last value: a create followed by Python still shows its `Created ...` line, a
    create that ends the cell shows it once (not twice), and a listing stays the value `x = %...` keeps."""
    endpoint, bucket = s3_bucket
    monkeypatch.setenv("DEMO_SECRET", SECRET)  # the kernel's environment: the secret is in no cell's text
    sources = [
        "%load_ext gradient_jupyter\nimport os\nsecret = os.environ.pop('DEMO_SECRET')",
        f"%gradient_storage storageProviders create s3 --name demo --bucket {bucket} --endpoint {endpoint} "
        "--region us-east-1 --accessKey AK --secretAccessKey $secret\nprint('the next line ran')",
        "%gradient_storage datasets create --name made --storageProviderId demo",
        "providers = %gradient_storage storageProviders list\nprint([row[0] for row in providers.rows])",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    _, create, dataset, listing = nb.cells

    def shown(cell, text: str) -> list[str]:
        return [o.output_type for o in cell.outputs if text in json.dumps(o)]

    assert shown(create, "Created storage provider: sp") == ["display_data"], create.outputs
    said = [o.output_type for o in create.outputs if o.output_type != "stream" or o.name == "stdout"]
    assert said == ["display_data", "stream"] and "the next line ran" in create.outputs[-1].text  # in line order
    assert shown(dataset, "Created dataset: ds") == ["display_data"], dataset.outputs
    assert "['Gradient Managed', 'demo']" in texts(listing)
    assert SECRET not in json.dumps(nb)
