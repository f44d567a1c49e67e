"""The panel's widgets, driven as a user would (set values, click), against moto and the embedded store."""
from __future__ import annotations

import http.server
import json
import os
import threading

import ipywidgets
import pytest

from gradient_jupyter import panel
from gradient_jupyter.engine import Engine, GradientStorage

from .conftest import SECRET


def widget_tree(root: ipywidgets.Widget) -> list[ipywidgets.Widget]:
    """Every widget reachable from `root` through its synced traits (children, layout, style...)."""
    seen, todo = {}, [root]
    while todo:
        widget = todo.pop()
        if id(widget) in seen:
            continue
        seen[id(widget)] = widget
        for name in widget.keys:
            value = getattr(widget, name)
            todo += [v for v in (value if isinstance(value, (list, tuple)) else [value])
                     if isinstance(v, ipywidgets.Widget)]
    return list(seen.values())


def state_text(root) -> str:
    return "\n".join(json.dumps(w.get_state(), default=str) for w in widget_tree(root))


def fill_provider_form(tab, endpoint, bucket, *, name="moto", secret=SECRET):
    tab.name.value, tab.bucket.value, tab.endpoint.value = name, bucket, endpoint
    tab.region.value, tab.access_key.value, tab.secret.value = "us-east-1", "testing", secret


@pytest.fixture
def shown(engine):
    """The panel as `panel()` shows it, once its first load has finished."""
    p = panel(engine)
    p.wait()
    return p


def test_panel_lists_gradient_managed_first_with_its_quota(aws_env):
    engine = Engine(GradientStorage(managed_quota=4000))
    engine.store(engine.registry.managed()).put_bytes(f"{engine.team_id}/probe", b"x" * 1000)
    p = panel(engine)
    p.wait()
    tab = p.providers
    assert "gj-panel" in p._dom_classes
    assert tab.table.value.index("Gradient Managed") < tab.table.value.index("</tbody>")
    assert tab.quota.value == pytest.approx(0.25)
    assert tab.quota_label.value == "1000 B used of 3.9 KiB (25.0%)"
    assert tab.choice.value == engine.registry.managed().id
    assert "gj-error" not in tab.status.value


def test_add_provider_via_the_form_clears_the_secret(engine, shown, s3_bucket):
    endpoint, bucket = s3_bucket
    tab = shown.providers
    fill_provider_form(tab, endpoint, bucket)
    tab.add_button.click()
    assert tab.secret.value == ""  # cleared at once, before the work even runs
    shown.wait()
    provider = engine.registry.get("moto")
    assert tab.status.value.endswith(f"Created storage provider: {provider.id}</span>")
    assert provider.config == {"bucket": bucket, "endpoint": endpoint, "region": "us-east-1",
                               "accessKey": "testing", "secretAccessKey": SECRET}
    assert "moto" in tab.table.value and bucket in tab.table.value and endpoint in tab.table.value
    assert tab.choice.value == provider.id
    assert ("moto", provider.id) in shown.datasets.provider.options  # a new dataset may go there now
    assert tab.name.value == tab.bucket.value == tab.access_key.value == ""
    assert SECRET not in state_text(shown)


@pytest.mark.parametrize("change, words", [
    ({"bucket": "Bad_Bucket"}, "Invalid bucket name"),
    ({"secret": ""}, "secret access key is empty"),
    ({"endpoint": "ftp://example.com"}, "endpoint"),
])
def test_bad_form_input_shows_plain_words_and_adds_nothing(engine, shown, s3_bucket, change, words):
    endpoint, bucket = s3_bucket
    tab = shown.providers
    fill_provider_form(tab, change.get("endpoint", endpoint), change.get("bucket", bucket),
                       secret=change.get("secret", SECRET))
    tab.add_button.click()
    shown.wait()
    assert "gj-error" in tab.status.value and words in tab.status.value
    assert "Traceback" not in tab.status.value and SECRET not in tab.status.value
    assert [p.name for p in engine.registry.list()] == ["Gradient Managed"]
    assert tab.secret.value == "" and SECRET not in state_text(shown)
    assert tab.bucket.value  # the rest of the form stays, to be corrected
    assert not tab.add_button.disabled


def test_duplicate_name_is_refused_in_plain_words(engine, shown, s3_bucket):
    endpoint, bucket = s3_bucket
    engine.registry.create("moto", {"bucket": bucket})
    fill_provider_form(shown.providers, endpoint, bucket, name="MOTO")
    shown.providers.add_button.click()
    shown.wait()
    assert "exists already" in shown.providers.status.value
    assert len(engine.registry.list()) == 2


def test_an_unreachable_bucket_does_not_hide_the_others(engine, s3_bucket):
    engine.registry.create("gone", {"bucket": "no-such-bucket-here", "endpoint": s3_bucket[0]})
    p = panel(engine)
    p.wait()
    assert "gone" in p.providers.table.value and "unreachable" in p.providers.table.value
    assert "Gradient Managed" in p.providers.table.value


class HeldBucket(http.server.BaseHTTPRequestHandler):
    """An S3 endpoint that holds every request until `release` is set, then says the bucket does not exist."""

    release = threading.Event()

    def do_GET(self):
        self.release.wait(120)
        body = b"<Error><Code>NoSuchBucket</Code><Message>no such bucket</Message></Error>"
        self.send_response(404)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


def test_panel_returns_at_once_while_a_bucket_holds_its_answer(aws_env):
    engine = Engine(GradientStorage(store_timeout=300))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HeldBucket)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    HeldBucket.release.clear()
    try:
        engine.registry.create("held", {"bucket": "quiet", "endpoint": f"http://127.0.0.1:{server.server_port}"})
        p = panel(engine)  # the first load waits on the held bucket, in the panel's thread
        assert "Loading" in p.providers.status.value and p.providers.add_button.disabled
        p.providers.check_button.click()
        assert "Wait: the panel is still working" in p.providers.status.value
        HeldBucket.release.set()
        p.wait()
    finally:
        HeldBucket.release.set()
        server.shutdown()
        server.server_close()
    assert "held" in p.providers.table.value and "unreachable" in p.providers.table.value
    assert not p.providers.add_button.disabled


# -- the bucket-setup check --------------------------------------------------------------------------------------
def test_check_setup_shows_the_report_and_applies_the_cors_fix(engine, shown, s3_bucket):
    import boto3

    endpoint, bucket = s3_bucket
    provider = engine.registry.create("moto", {"bucket": bucket, "endpoint": endpoint, "region": "us-east-1"})
    shown.refresh()
    shown.wait()
    tab = shown.providers
    tab.choice.value = provider.id
    tab.origins.value = "http://127.0.0.1:8888"
    tab.check_button.click()
    shown.wait()
    assert "gradient-doctor" in tab.report.value and "data-check='cors'" in tab.report.value
    assert "put-bucket-cors" in tab.report.value  # the fix, in the doctor's words
    assert tab.cors_button.layout.display is None  # offered, because the CORS checks fail
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    with pytest.raises(s3.exceptions.ClientError):
        s3.get_bucket_cors(Bucket=bucket)  # checking changed nothing

    tab.cors_button.click()
    shown.wait()
    rules = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert any("http://127.0.0.1:8888" in r["AllowedOrigins"] for r in rules)
    assert "No check failed" in tab.report.value
    assert tab.cors_button.layout.display == "none"


def test_check_setup_of_the_embedded_store_offers_no_cors_fix(engine, shown, monkeypatch, tmp_path):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "no-servers"))
    shown.providers.check_button.click()
    shown.wait()
    assert "embedded Gradient Managed store" in shown.providers.report.value
    assert shown.providers.cors_button.layout.display == "none"
    assert "gj-error" not in shown.providers.status.value


# -- datasets ----------------------------------------------------------------------------------------------------
def make_folder(path, files=None):
    files = files or {"a.csv": b"x,y\n1,2\n", "sub/b.bin": bytes(range(256)) * 40}
    for rel, data in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_bytes(data)
    return path


def save_with_panel(p, folder, name, *, message="", tag="", provider=""):
    tab = p.datasets
    tab.folder.value, tab.name.value, tab.message.value, tab.tag.value = str(folder), name, message, tag
    tab.provider.value = provider
    tab.save_button.click()
    p.wait()


def test_save_a_folder_see_the_new_version_and_load_it(engine, shown, tmp_path):
    folder = make_folder(tmp_path / "data")
    tab = shown.datasets
    assert "none yet" in tab.table.value and tab.version.options == ()
    save_with_panel(shown, folder, "flowers", message="first cut", tag="v1")
    assert "gj-ok" in tab.status.value, tab.status.value
    ds = engine.datasets.get("flowers")
    (version,) = engine.datasets.list_versions(ds)
    assert f"Saved {ds.id}:{version.version}: 2 files" in tab.status.value
    assert ds.storage_provider_id == engine.registry.managed().id  # the team default
    assert "flowers" in tab.table.value and tab.choice.value == ds.id
    for cell in (version.version, "v1", "first cut", "10.0 KiB", "<td style='text-align:left'>2</td>"):
        assert cell in tab.versions.value
    assert tab.version.value == f"{ds.id}:{version.version}"
    assert tab.save_progress.bar.value == 1.0 and tab.save_progress.bar.bar_style == "success"

    tab.dest.value = str(tmp_path / "restored")
    tab.load_button.click()
    shown.wait()
    assert "gj-ok" in tab.status.value and f"Loaded {ds.id}:{version.version} into" in tab.status.value
    for rel in ("a.csv", "sub/b.bin"):
        assert (tmp_path / "restored" / rel).read_bytes() == (folder / rel).read_bytes()
    assert tab.load_progress.bar.bar_style == "success"


def test_refresh_shows_what_other_doors_did(engine, shown, tmp_path, s3_bucket):
    from gradient_jupyter.engine import transfer

    engine.registry.create("elsewhere", {"bucket": s3_bucket[1], "endpoint": s3_bucket[0]})
    transfer.save(engine, "from-the-magic", make_folder(tmp_path / "data"))
    shown.refresh_button.click()
    shown.wait()
    assert "elsewhere" in shown.providers.table.value and "from-the-magic" in shown.datasets.table.value


def test_a_second_version_lists_first_and_the_chosen_dataset_switches(engine, shown, tmp_path):
    folder = make_folder(tmp_path / "data")
    save_with_panel(shown, folder, "flowers", message="one")
    (folder / "c.txt").write_text("new file\n")
    save_with_panel(shown, folder, "flowers", message="two", tag="best")
    assert ": 3 files, 9 B sent" in shown.datasets.status.value  # only the new file travelled
    save_with_panel(shown, make_folder(tmp_path / "other", {"x": b"1"}), "other")
    tab = shown.datasets
    assert "Versions of other" in tab.versions.value
    tab.choice.value = engine.datasets.get("flowers").id
    shown.wait()
    html = tab.versions.value
    assert "Versions of flowers" in html and html.index("two") < html.index("one")
    assert "(best" in tab.version.options[0][0]


def test_save_into_an_s3_provider_chosen_in_the_form(engine, shown, s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    provider = engine.registry.create("moto", {"bucket": bucket, "endpoint": endpoint, "region": "us-east-1"})
    shown.refresh()
    shown.wait()
    save_with_panel(shown, make_folder(tmp_path / "data"), "in-s3", provider=provider.id)
    assert "gj-ok" in shown.datasets.status.value, shown.datasets.status.value
    assert engine.datasets.get("in-s3").storage_provider_id == provider.id


@pytest.mark.parametrize("name, folder, tag, words", [
    ("flowers", "missing", "", "is not a folder"),
    ("bad name!", "data", "", "invalid dataset name"),
    ("flowers", "data", "Bad Tag", "invalid tag name"),
])
def test_bad_save_input_shows_plain_words_and_saves_nothing(engine, shown, tmp_path, name, folder, tag, words):
    make_folder(tmp_path / "data")
    save_with_panel(shown, tmp_path / folder, name, tag=tag)
    status = shown.datasets.status.value
    assert "gj-error" in status and words in status.lower() and "Traceback" not in status
    assert engine.datasets.list() == []
    assert shown.datasets.save_progress.bar.bar_style == "danger"
    assert not shown.datasets.save_button.disabled


def test_quota_refusal_names_used_quota_and_needed(aws_env, tmp_path):
    engine = Engine(GradientStorage(managed_quota=1000))
    p = panel(engine)
    p.wait()
    save_with_panel(p, make_folder(tmp_path / "data"), "big")
    assert "quota exceeded" in p.datasets.status.value and "needs" in p.datasets.status.value


def test_load_without_a_version_says_what_to_do(shown):
    shown.datasets.load_button.click()
    shown.wait()
    assert "Choose a dataset and a version" in shown.datasets.status.value


# -- in a real kernel ---------------------------------------------------------------------------------------------
def test_the_magic_without_words_shows_the_panel_in_a_kernel(tmp_path):
    from jupyter_client.manager import start_new_kernel

    outputs = []
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path), env=os.environ.copy())
    try:
        reply = kc.execute_interactive("%load_ext gradient_jupyter\n%gradient_storage", timeout=120,
                                       output_hook=outputs.append)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok"
    shown = [o["content"]["data"] for o in outputs if o["msg_type"] == "display_data"]
    assert shown and "application/vnd.jupyter.widget-view+json" in shown[0]
    assert not [o for o in outputs if o["msg_type"] == "error" or o["msg_type"] == "stream"]
