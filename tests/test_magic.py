"""`%gradient_storage` in a real IPython shell: the console script's words, IPython's errors, no secret anywhere."""

from __future__ import annotations

import getpass
import re
import sqlite3

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config

from gradient_jupyter.api import default_engine

from .helpers import SECRET

CREATE = "storageProviders create s3 --name test --bucket my-bucket --accessKey AK"


@pytest.fixture
def ip(tmp_path):
    """A fresh IPython shell that logs inputs and outputs to its own history file, with the extension loaded."""
    InteractiveShell.clear_instance()
    config = Config()
    config.HistoryManager.hist_file = str(tmp_path / "history.sqlite")
    config.HistoryManager.db_log_output = True
    shell = InteractiveShell.instance(config=config)
    shell.run_line_magic("load_ext", "gradient_jupyter")
    yield shell
    shell.history_manager.end_session()
    InteractiveShell.clear_instance()


def run(ip, text):
    with capture_output() as cap:
        result = ip.run_cell(text, store_history=True)
    return result, cap


def providers():
    return [p.name for p in default_engine().registry.list()]


def everything_recorded(ip) -> str:
    """Every trace a cell leaves in the shell: history database, output cache, user namespace."""
    ip.history_manager.writeout_cache()
    with sqlite3.connect(ip.history_manager.hist_file) as db:
        rows = db.execute("SELECT source_raw FROM history").fetchall()
        rows += db.execute("SELECT output FROM output_history").fetchall()
    outputs = [repr(v) for v in ip.history_manager.output_hist.values()]
    names = [repr(v) for k, v in ip.user_ns.items() if not k.startswith("__")]
    return "\n".join([repr(rows), *outputs, *names])


def test_line_magic_creates_and_lists_with_the_seed_words(ip):
    ip.user_ns["secret"] = SECRET  # IPython expands $secret in a magic's line
    result, cap = run(ip, f"%gradient_storage {CREATE} --secretAccessKey=$secret")
    assert result.success, cap.stdout + cap.stderr
    assert result.result is None  # what the command did is shown at once, not returned as well
    (shown,) = [o.data["text/plain"] for o in cap.outputs]
    assert re.fullmatch(r"Created storage provider: sp[a-z0-9]{13}", shown)
    listing = ip.run_line_magic("gradient_storage", "storageProviders list")
    assert "<table>" in listing._repr_html_() and "my-bucket" in listing._repr_html_()
    assert [r[0] for r in listing.rows] == ["Gradient Managed", "test"]
    assert default_engine().registry.get("test").config["secretAccessKey"] == SECRET
    assert SECRET not in cap.stdout + cap.stderr


def test_secret_on_the_line_works_but_warns(ip):
    result, cap = run(ip, f"%gradient_storage {CREATE} --secretAccessKey {SECRET}")
    assert result.success
    assert "the secret access key is now in this notebook's text" in cap.stderr
    assert default_engine().registry.get("test").config["secretAccessKey"] == SECRET
    shown = "".join(str(o.data) for o in cap.outputs)
    assert "Created storage provider" in shown and SECRET not in cap.stdout + cap.stderr + shown


def test_without_the_secret_a_hidden_prompt_asks_and_nothing_keeps_it(ip, monkeypatch):
    asked = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt: asked.append(prompt) or SECRET)
    result, cap = run(ip, f"%gradient_storage {CREATE}")
    assert result.success and asked == ["Secret access key for AK: "]
    assert "warning" not in cap.stderr.lower()
    assert default_engine().registry.get("test").config["secretAccessKey"] == SECRET
    run(ip, "%gradient_storage storageProviders details --id test")
    run(ip, "_")
    record = everything_recorded(ip)
    # The record is really there: the input and the details with the masked secret ("Created ..." was displayed).
    assert f"%gradient_storage {CREATE}" in record and "********" in record
    shown = "".join(str(o.data) for o in cap.outputs)
    assert "Created storage provider" in shown and SECRET not in record + cap.stdout + cap.stderr + shown


def test_usage_error_is_ipythons_usage_error_with_the_commands_usage(ip):
    with pytest.raises(UsageError) as caught:
        ip.run_line_magic("gradient_storage", "storageProviders create s3 --bucket b")
    text = str(caught.value)
    assert text.startswith("usage: %gradient_storage storageProviders create s3")
    assert "the following arguments are required: --name" in text
    result, cap = run(ip, "%gradient_storage storageProviders frobnicate")
    assert isinstance(result.error_in_exec, UsageError) and "invalid choice" in cap.stderr
    assert "Traceback" not in cap.stdout + cap.stderr
    assert providers() == ["Gradient Managed"]


def test_unclosed_quote_is_a_usage_error(ip):
    with pytest.raises(UsageError, match="cannot split"):
        ip.run_line_magic("gradient_storage", "storageProviders details --id 'open")


@pytest.mark.parametrize(
    "words", ["--help", "storageProviders --help", "storageProviders create s3 -h", "storageProviders update s3 --help"]
)
def test_help_at_every_level(ip, words):
    result, cap = run(ip, f"%gradient_storage {words}")
    assert result.success and result.result is None
    assert cap.stdout.startswith("usage: %gradient_storage")
    assert "options:" in cap.stdout


def test_no_words_show_the_words(ip):
    result, cap = run(ip, "%gradient_storage")
    assert result.success and cap.stdout.startswith("usage: %gradient_storage")
    assert "storageProviders" in cap.stdout


def test_engine_refusal_is_one_plain_error_line_and_fails_the_cell(ip):
    result, cap = run(ip, "%gradient_storage storageProviders details --id nope")
    assert not result.success
    assert type(result.error_in_exec).__name__ == "CommandFailed"
    assert cap.stdout.strip() == "Error: Unknown storage provider 'nope': list them with 'storageProviders list'."
    bad, cap = run(ip, f"%gradient_storage {CREATE} --bucket Bad_Bucket --secretAccessKey {SECRET}")
    assert not bad.success and "Invalid bucket name" in cap.stdout and SECRET not in cap.stdout + cap.stderr
    assert providers() == ["Gradient Managed"]


def test_cell_runs_each_line_after_the_prefix_and_displays_each_result(ip, monkeypatch):
    monkeypatch.setattr(getpass, "getpass", lambda prompt: SECRET)
    cell = """
# lines starting with # are comments
create s3 --name one --bucket bucket-one --accessKey AK
create s3 --name two --bucket bucket-two \\
    --accessKey AK --region eu-west-1
list
"""
    with capture_output() as cap:
        result = ip.run_cell_magic("gradient_storage", "storageProviders", cell)
    assert result is None
    texts = [o.data["text/plain"] for o in cap.outputs]
    assert texts[0].startswith("Created storage provider: sp") and texts[1].startswith("Created storage provider: sp")
    assert "bucket-two" in texts[2] and "text/html" in cap.outputs[2].data
    assert default_engine().registry.get("two").config["region"] == "eu-west-1"
    assert SECRET not in "".join(texts) + cap.stdout + cap.stderr


def test_a_usage_error_anywhere_in_a_cell_runs_nothing(ip):
    cell = f"{CREATE} --secretAccessKey x\nstorageProviders details\n"
    with pytest.raises(UsageError, match="required: --id"):
        ip.run_cell_magic("gradient_storage", "", cell)
    assert providers() == ["Gradient Managed"]


def test_a_cell_stops_at_the_first_refusal(ip):
    cell = "storageProviders details --id nope\nstorageProviders create s3 --name later --bucket later-bucket\n"
    result, cap = run(ip, "%%gradient_storage\n" + cell)
    assert not result.success and "Unknown storage provider 'nope'" in cap.stdout
    assert providers() == ["Gradient Managed"]


def test_save_and_load_round_trip_through_the_magic(ip, tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.csv").write_bytes(b"x,y\n")
    (data / "sub" / "b.bin").write_bytes(bytes(range(256)) * 8)
    ip.user_ns["folder"] = str(data)
    result, cap = run(ip, "saved = %gradient_storage save flowers $folder -m 'first cut' --tag v1")
    assert result.success, cap.stdout + cap.stderr
    saved = ip.user_ns["saved"]
    assert re.fullmatch(r"ds[a-z0-9]{13}:[a-z0-9]{7}", saved.ref)
    assert str(saved).splitlines()[0] == f"Saved {saved.ref} (dataset flowers, tag v1)"
    assert str(saved).splitlines()[1].startswith("2 files, 2.0 KiB sent")
    html = saved._repr_html_()
    assert saved.ref in html and "flowers" in html and "v1" in html and "2.0 KiB" in html and "first cut" in html
    assert "Hashing" in cap.stderr and "Uploading" in cap.stderr  # tqdm.auto outside a kernel: text bars

    dest = tmp_path / "restored"
    loaded = ip.run_line_magic("gradient_storage", f"load flowers:v1 {dest}")
    assert str(loaded).startswith(f"Loaded {saved.ref} (dataset flowers, tag v1) into {dest}")
    assert (dest / "a.csv").read_bytes() == b"x,y\n" and (dest / "sub" / "b.bin").read_bytes() == bytes(range(256)) * 8

    with capture_output() as cap:
        ip.run_cell_magic("gradient_storage", "datasets", "versions list --id flowers\ntags list --id flowers\n")
    versions, tags = (o.data["text/plain"] for o in cap.outputs)
    assert saved.ref in versions and "first cut" in versions and "v1" in tags


def test_refused_load_leaves_no_folder(ip, tmp_path):
    result, cap = run(ip, f"%gradient_storage load nothing-here {tmp_path / 'dest'}")
    assert not result.success and cap.stdout.startswith("Error: Unknown dataset 'nothing-here'")
    assert not (tmp_path / "dest").exists()


def test_local_file_problems_are_plain_errors_too(ip, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"1")
    ip.run_line_magic("gradient_storage", f"save one {tmp_path / 'd'}")
    (tmp_path / "occupied").write_bytes(b"mine")
    result, cap = run(ip, f"%gradient_storage load one {tmp_path / 'occupied'}")
    assert not result.success and cap.stdout.strip() == (
        f"Error: Cannot load 'f': '{tmp_path / 'occupied'}' exists and is not a folder. Move it away or load into "
        "another folder."
    )
