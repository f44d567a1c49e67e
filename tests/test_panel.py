"""The panel's widgets, driven as a user would (type, blur, click), against moto and the embedded store."""

from __future__ import annotations

import http.server
import json
import threading

import boto3
import pytest

import gradient_jupyter
from gradient_jupyter import panel
from gradient_jupyter.engine import Engine, GradientStorage, history, transfer
from gradient_jupyter.engine.formatting import human_bytes, human_time
from gradient_jupyter.notebook.panel import words

from .helpers import SECRET, make_folder
from .helpers.cors import FOREIGN_RULE, foreign_cors
from .helpers.widgets import state_text, typed

DEAD = "http://127.0.0.1:1"  # refuses connections at once: a provider nobody can reach, quickly


def fill_provider_form(tab, endpoint, bucket, *, name="moto", secret=SECRET):
    for key, value in {
        "name": name,
        "bucket": bucket,
        "endpoint": endpoint,
        "region": "us-east-1",
        "accessKey": "testing",
        "secretAccessKey": secret,
    }.items():
        typed(tab.fields[key], value)


def words_of(widget) -> str:
    """A result line's text as read: a number and its unit are joined by a no-break space there."""
    return widget.value.replace("\xa0", " ")


def shown_panel(engine):
    p = panel(engine)
    p.wait()
    return p


@pytest.fixture
def shown(engine):
    """The panel as `panel()` shows it, once its first reading has finished."""
    return shown_panel(engine)


def click(p, button) -> None:
    button.click()
    p.wait()


def data_folder(path):
    """A small folder to save: a CSV file, a binary file, one nested folder."""
    return make_folder(path, {"a.csv": b"x,y\n1,2\n", "sub/b.bin": bytes(range(256)) * 40, "sub/deep/c.txt": b"deep\n"})


# -- providers ---------------------------------------------------------------------------------------------------
def test_gradient_managed_first_with_its_quota_and_usage(aws_env):
    engine = Engine(GradientStorage(managed_quota=4000))
    engine.store(engine.registry.managed()).put_bytes(f"{engine.team_id}/probe", b"x" * 1000)
    p = shown_panel(engine)
    tab = p.providers
    assert "gj-panel" in p._dom_classes
    assert tab.table.value.index("Gradient Managed") < tab.table.value.index("</tbody>")
    assert f"title='{engine.registry.managed().id}'" in tab.table.value  # the id on hover, the name shown
    assert "1000 B" in tab.table.value and ">ok<" in tab.table.value
    assert tab.quota.value == pytest.approx(0.25)
    assert tab.quota_label.value == "1000 B used of 3.9 KiB (25.0%)"
    assert tab.choice.value == engine.registry.managed().id
    assert tab.edit_button.disabled and tab.delete_button.disabled  # built in
    assert p.refresh_result.value == ""


def test_the_secret_leaves_widget_state_the_moment_it_is_typed(engine, shown):
    tab = shown.providers
    typed(tab.secret, SECRET)
    assert tab.secret.value == "" and SECRET not in state_text(shown)  # what a notebook saved now would keep
    assert "kernel's memory" in tab.secret.hint.value
    assert tab.secret.trait_metadata("value", "echo_update") is False  # never sent back to the browser


def test_add_provider_via_the_form(engine, shown, s3_bucket):
    endpoint, bucket = s3_bucket
    tab = shown.providers
    fill_provider_form(tab, endpoint, bucket)
    click(shown, tab.add_button)
    provider = engine.registry.get("moto")
    assert f"Created storage provider moto ({provider.id})" in tab.form_result.value
    assert provider.config == {
        "bucket": bucket,
        "endpoint": endpoint,
        "region": "us-east-1",
        "accessKey": "testing",
        "secretAccessKey": SECRET,
    }
    assert "moto" in tab.table.value and bucket in tab.table.value and endpoint in tab.table.value
    assert tab.choice.value == provider.id and not tab.edit_button.disabled
    assert ("moto", provider.id) in shown.datasets.provider.options  # a new dataset may go there now
    assert all(field.value == "" for field in tab.fields.values()) and tab.secret.held == ""
    assert SECRET not in state_text(shown)


def test_adding_a_second_provider_on_the_same_bucket_warns(engine, shown, s3_bucket):
    endpoint, bucket = s3_bucket
    engine.registry.create("first", {"bucket": bucket, "endpoint": endpoint})
    fill_provider_form(shown.providers, endpoint, bucket, name="second")
    click(shown, shown.providers.add_button)
    assert "Created storage provider second" in shown.providers.form_result.value
    assert "'first' already uses bucket" in shown.providers.form_result.value


def test_add_a_provider_with_an_aws_profile_then_switch_it_to_keys(engine, shown, s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    (tmp_path / "aws-config").write_text(  # AWS_CONFIG_FILE of this test (conftest)
        "[profile team]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    tab = shown.providers
    for key, value in {"name": "prof", "bucket": bucket, "endpoint": endpoint, "profile": "nobody"}.items():
        typed(tab.fields[key], value)
    click(shown, tab.add_check_button)  # a profile that does not exist: the check says so, nothing is added
    assert "Not added" in tab.form_result.value and "nobody" in tab.form_report.value
    typed(tab.fields["profile"], "team")
    click(shown, tab.add_check_button)
    assert "its bucket answers as it should" in tab.form_result.value, tab.form_result.value
    config = engine.registry.get("prof").config
    assert config["profile"] == "team" and not config.get("accessKey")

    tab.choice.value = engine.registry.get("prof").id
    tab.edit_button.click()
    assert tab.fields["profile"].value == "team"
    typed(tab.fields["accessKey"], "testing")
    typed(tab.secret, SECRET)
    click(shown, tab.save_button)  # keys and the profile: refused, next to the profile field, the rest kept
    assert "not both" in tab.field_hints["profile"].value and tab.field_hints["profile"].layout.display is None
    assert tab.fields["accessKey"].value == "testing" and engine.registry.get("prof").config["profile"] == "team"
    typed(tab.fields["profile"], "")
    typed(tab.secret, SECRET)
    click(shown, tab.save_button)
    assert "Updated storage provider prof" in tab.form_result.value, tab.form_result.value
    config = engine.registry.get("prof").config
    assert config["accessKey"] == "testing" and config["secretAccessKey"] == SECRET and not config.get("profile")
    assert SECRET not in state_text(shown)


def test_an_unknown_signature_version_is_named_next_to_its_field(engine, shown, s3_bucket):
    endpoint, bucket = s3_bucket
    tab = shown.providers
    fill_provider_form(tab, endpoint, bucket)
    typed(tab.fields["signatureVersion"], "v9")
    click(shown, tab.add_button)
    assert "Unknown Signature 'v9'" in tab.field_hints["signatureVersion"].value
    assert [p.name for p in engine.registry.list()] == ["Gradient Managed"]
    typed(tab.fields["signatureVersion"], "v2")
    typed(tab.secret, SECRET)
    click(shown, tab.add_button)
    assert engine.registry.get("moto").config["signatureVersion"] == "v2"


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"bucket": "MyBucket"}, "bucket", "Invalid bucket name"),
        ({"secretAccessKey": ""}, "secretAccessKey", "secret access key is empty"),
        ({"endpoint": "ftp://example.com"}, "endpoint", "Invalid endpoint"),
    ],
)
def test_a_failed_validation_keeps_the_form_except_the_secret_and_names_the_field(
    engine, shown, s3_bucket, change, field, words
):
    endpoint, bucket = s3_bucket
    tab = shown.providers
    fill_provider_form(
        tab,
        change.get("endpoint", endpoint),
        change.get("bucket", bucket),
        secret=change.get("secretAccessKey", SECRET),
    )
    click(shown, tab.add_button)
    assert "gj-error" in tab.form_result.value and words in tab.form_result.value
    assert words in tab.field_hints[field].value and tab.field_hints[field].layout.display is None
    assert all(tab.field_hints[k].layout.display == "none" for k in tab.field_hints if k != field)
    assert "Traceback" not in tab.form_result.value and SECRET not in state_text(shown)
    assert [p.name for p in engine.registry.list()] == ["Gradient Managed"]
    assert tab.fields["name"].value == "moto" and tab.fields["bucket"].value == change.get("bucket", bucket)
    assert tab.secret.held == ""  # used once: typed again for the next try
    assert not tab.add_button.disabled


def test_add_and_check_keeps_a_provider_only_when_its_bucket_answers(engine, shown, s3_bucket, monkeypatch, tmp_path):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "no-servers"))
    endpoint, bucket = s3_bucket
    tab = shown.providers
    fill_provider_form(tab, DEAD, bucket, name="dead")
    click(shown, tab.add_check_button)
    assert f"Not added: could not connect to {DEAD}" in tab.form_result.value
    assert "gradient-doctor" in tab.form_report.value  # the report says why, next to the form
    assert [p.name for p in engine.registry.list()] == ["Gradient Managed"]
    assert tab.fields["endpoint"].value == DEAD  # kept, to be corrected
    # Not added yet: the fix points at the form's field, not at a command for a provider no command knows.
    assert "correct Endpoint in the form" in tab.form_report.value
    assert "--id" not in tab.form_report.value

    fill_provider_form(tab, endpoint, "no-such-" + bucket, name="nobucket")
    click(shown, tab.add_check_button)
    assert "Not added" in tab.form_result.value and "correct Bucket in the form" in tab.form_report.value
    assert "--id" not in tab.form_report.value and SECRET not in state_text(shown)

    fill_provider_form(tab, endpoint, bucket, name="alive")
    click(shown, tab.add_check_button)
    assert "its bucket answers as it should" in tab.form_result.value, tab.form_result.value
    assert engine.registry.get("alive").config["secretAccessKey"] == SECRET


def test_edit_a_provider_keeps_the_secret_unless_a_new_one_is_typed(engine, shown, s3_bucket):
    endpoint, bucket = s3_bucket
    provider = engine.registry.create(
        "moto", {"bucket": bucket, "endpoint": endpoint, "accessKey": "testing", "secretAccessKey": SECRET}
    )
    shown.wait()  # the registry's change event brought it in
    tab = shown.providers
    tab.choice.value = provider.id
    tab.edit_button.click()
    assert tab.fields["bucket"].value == bucket and tab.fields["name"].value == "moto"
    assert SECRET not in state_text(shown) and "keep the current secret" in tab.secret.placeholder
    assert tab.add_button.layout.display == "none" and tab.save_button.layout.display is None
    typed(tab.fields["region"], "eu-west-1")
    typed(tab.fields["name"], "moto-eu")
    click(shown, tab.save_button)
    assert "Updated storage provider moto-eu" in tab.form_result.value, tab.form_result.value
    updated = engine.registry.get(provider.id)
    assert updated.name == "moto-eu" and updated.config["region"] == "eu-west-1"
    assert updated.config["secretAccessKey"] == SECRET
    assert "moto-eu" in tab.table.value and tab.add_button.layout.display is None

    tab.edit_button.click()
    typed(tab.secret, "a-new-secret")
    click(shown, tab.save_button)
    assert engine.registry.get(provider.id).config["secretAccessKey"] == "a-new-secret"


def test_delete_a_provider_after_confirming(engine, shown, s3_bucket):
    provider = engine.registry.create("doomed", {"bucket": s3_bucket[1], "endpoint": s3_bucket[0]})
    shown.wait()
    tab = shown.providers
    tab.choice.value = provider.id
    tab.delete_button.click()
    assert tab.confirm.box.layout.display == "flex" and "doomed" in tab.confirm.question.value
    click(shown, tab.confirm.no)
    assert engine.registry.get(provider.id) and tab.confirm.box.layout.display == "none"
    tab.delete_button.click()
    click(shown, tab.confirm.yes)
    assert "Deleted storage provider doomed" in tab.provider_result.value
    assert "doomed" not in tab.table.value and provider.id not in dict(shown.datasets.provider.options).values()


def test_make_a_provider_the_team_default(engine, shown, s3_bucket, tmp_path):
    provider = engine.registry.create("team-s3", {"bucket": s3_bucket[1], "endpoint": s3_bucket[0]})
    shown.wait()
    tab, managed = shown.providers, engine.registry.managed()
    assert tab.choice.value == managed.id and tab.default_button.disabled  # already the default
    tab.choice.value = provider.id
    assert not tab.default_button.disabled
    click(shown, tab.default_button)
    assert "team-s3 is now the team default" in tab.provider_result.value
    assert engine.registry.get(provider.id).is_team_default and not engine.registry.managed().is_team_default
    assert tab.default_button.disabled
    assert ("team-s3 (team default)", provider.id) in shown.datasets.provider.options
    save_with_panel(shown, data_folder(tmp_path / "data"), "flowers")  # no provider chosen: the new default
    assert engine.datasets.get("flowers").storage_provider_id == provider.id
    tab.choice.value = managed.id  # and back, as from the console
    click(shown, tab.default_button)
    assert engine.registry.managed().is_team_default and not engine.registry.get(provider.id).is_team_default


def test_a_provider_whose_bucket_cannot_be_read_is_deleted_only_when_asked_again(engine, shown, moto_server):
    provider = engine.registry.create("broken", {"bucket": "no-such-bucket", "endpoint": moto_server})
    shown.wait()
    tab = shown.providers
    tab.choice.value = provider.id
    tab.delete_button.click()
    click(shown, tab.confirm.yes)
    assert "Could not check whether datasets use" in tab.provider_result.value  # the engine's words
    assert engine.registry.get(provider.id) and "Delete broken anyway?" in tab.confirm.question.value
    click(shown, tab.confirm.yes)
    assert "Deleted storage provider broken" in tab.provider_result.value
    assert [p.name for p in engine.registry.list()] == ["Gradient Managed"]


def test_an_unreachable_bucket_says_so_and_does_not_hide_the_others(engine, s3_bucket):
    engine.registry.create("gone", {"bucket": "no-such-bucket-here", "endpoint": s3_bucket[0]})
    p = shown_panel(engine)
    assert "gone" in p.providers.table.value and ">unreachable<" in p.providers.table.value
    assert "gone cannot be reached: Bucket 'no-such-bucket-here' does not exist" in p.providers.problems.value
    assert "Gradient Managed" in p.providers.table.value and ">ok<" in p.providers.table.value


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


def test_a_bucket_that_holds_its_answer_blocks_no_control(aws_env, tmp_path, monkeypatch, moto_server):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "no-servers"))
    engine = Engine(GradientStorage(store_timeout=300))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HeldBucket)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    HeldBucket.release.clear()
    try:
        engine.registry.create("held", {"bucket": "quiet", "endpoint": f"http://127.0.0.1:{server.server_port}"})
        p = panel(engine)  # its reading waits on the held bucket, in the panel's thread
        assert "Reading" in p.refresh_result.value and not p.providers.add_button.disabled
        typed(p.providers.fields["name"], "meanwhile")
        typed(p.providers.fields["bucket"], "another-bucket")
        typed(p.providers.fields["endpoint"], moto_server)
        p.providers.add(check=False).join()  # what the Add button does, joined while the bucket still holds
        assert "Created storage provider meanwhile" in p.providers.form_result.value
        assert "Reading" in p.refresh_result.value
    finally:
        HeldBucket.release.set()
        p.wait()
        server.shutdown()
        server.server_close()
    assert "held" in p.providers.table.value and "unreachable" in p.providers.table.value
    assert "meanwhile" in p.providers.table.value


# -- the bucket-setup check --------------------------------------------------------------------------------------
def test_check_setup_shows_the_report_and_applies_the_cors_fix(engine, shown, s3_bucket):
    endpoint, bucket = s3_bucket
    provider = engine.registry.create("moto", {"bucket": bucket, "endpoint": endpoint, "region": "us-east-1"})
    foreign_cors(endpoint, bucket)  # CORS rules that leave our origin out: the CORS checks fail
    shown.wait()
    tab = shown.providers
    tab.choice.value = provider.id
    typed(tab.origins, "http://127.0.0.1:8888")
    tab.check_button.click()
    assert "Checking the bucket's setup of moto" in tab.check_result.value and tab.check_button.disabled
    shown.wait()
    assert "gradient-doctor" in tab.report.value and "data-check='cors'" in tab.report.value
    assert "<code>" in tab.report.value and "`" not in tab.report.value  # commands shown as code, not backticks
    assert "gj-error" in tab.check_result.value and "check(s) failed" in tab.check_result.value
    assert tab.cors_button.layout.display is None  # offered, because the CORS checks fail
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == [FOREIGN_RULE]  # checking changed nothing

    tab.cors_button.click()
    assert tab.report.value == ""  # the old report goes while the new one is made
    shown.wait()
    rules = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert any("http://127.0.0.1:8888" in r["AllowedOrigins"] for r in rules)
    assert "No check failed" in tab.report.value and "gj-ok" in tab.check_result.value
    assert tab.cors_button.layout.display == "none"


def test_check_setup_of_the_embedded_store_offers_no_cors_fix(engine, shown, monkeypatch, tmp_path):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "no-servers"))
    click(shown, shown.providers.check_button)
    assert "embedded Gradient Managed store" in shown.providers.report.value
    assert shown.providers.cors_button.layout.display == "none"
    assert "gj-ok" in shown.providers.check_result.value


# -- datasets ----------------------------------------------------------------------------------------------------
def save_with_panel(p, folder, name, *, message="", tag="", provider=""):
    tab = p.datasets
    for key, value in {"folder": str(folder), "name": name, "message": message, "tag": tag}.items():
        typed(tab.save_fields[key], value)
    tab.provider.value = provider
    click(p, tab.save_button)


def test_save_a_folder_see_the_version_browse_its_files_and_load_it(engine, shown, tmp_path):
    folder = data_folder(tmp_path / "data")
    tab = shown.datasets
    assert "none yet" in tab.table.value and tab.dataset_box.layout.display == "none"
    save_with_panel(shown, folder, "flowers", message="first cut", tag="v1")
    ds = engine.datasets.get("flowers")
    (version,) = engine.datasets.list_versions(ds)
    assert f"Saved flowers:{version.version} (tag v1). 3 files" in words_of(
        tab.save_result
    )  # names where a person looks
    assert f"title='{version.ref}'" in tab.save_result.value  # the ids on hover
    assert tab.save_fields["tag"].value == tab.save_fields["message"].value == ""  # not carried to the next save
    assert ds.storage_provider_id == engine.registry.managed().id  # the team default
    assert "flowers" in tab.table.value and tab.choice.value == ds.id
    for cell in (version.version, "v1", "first cut", "10.0 KiB", history.who(version.created_by)):
        assert cell in tab.versions_table.value
    # the table's date as the version list above it shows it, not the stored ISO stamp
    readable = human_time(version.dt_committed)
    assert readable in tab.versions_table.value and readable in tab.version.options[0][0]
    assert version.dt_committed not in tab.versions_table.value
    assert "Changes from nothing" in tab.changes.value and "3 added" in tab.changes.value
    assert tab.version.value == version.ref and "(v1)" in tab.version.options[0][0]
    assert tab.save_progress.bar.value == 1.0 and tab.save_progress.bar.bar_style == "success"

    assert [v for _, v in tab.files.options] == ["a.csv", "sub/"]
    assert "10.0 KiB in 2 files" in tab.files.options[1][0]
    tab.files.value = "sub/"
    assert [v for _, v in tab.files.options] == ["..", "sub/b.bin", "sub/deep/"] and "in /sub/" in tab.files_title.value
    assert tab.read_files(tab.chosen_version()) is not None  # a refresh reads the files again: the folder stays open
    shown.wait()
    assert [v for _, v in tab.files.options] == ["..", "sub/b.bin", "sub/deep/"]
    tab.files.value = ".."
    tab.files.value = "a.csv"
    shown.wait()
    assert "x,y\n1,2" in tab.preview.value  # a small text file, read verified

    typed(tab.dest, str(tmp_path / "restored"))
    click(shown, tab.load_button)
    assert f"Loaded flowers:{version.version} (tag v1) into" in words_of(tab.load_result)
    for rel in ("a.csv", "sub/b.bin", "sub/deep/c.txt"):
        assert (tmp_path / "restored" / rel).read_bytes() == (folder / rel).read_bytes()
    assert tab.load_progress.bar.bar_style == "success"


def test_changes_made_in_this_kernel_show_in_every_panel_at_once(engine, tmp_path, s3_bucket):
    first, second = shown_panel(engine), shown_panel(engine)
    engine.registry.create("elsewhere", {"bucket": s3_bucket[1], "endpoint": s3_bucket[0]})
    transfer.save(engine, "from-the-api", data_folder(tmp_path / "data"))  # as the magic or Python API would
    for p in (first, second):
        p.wait()
        assert "elsewhere" in p.providers.table.value and "from-the-api" in p.datasets.table.value
        assert "elsewhere" in [label for label, _ in p.providers.choice.options]


def test_changes_made_elsewhere_show_after_an_action_and_when_shown_again(engine, tmp_path, moto_server):
    p = shown_panel(engine)
    p._repr_mimebundle_()  # shown in a notebook
    p.wait()
    other = Engine(GradientStorage())  # another process's engine: no event reaches this panel
    transfer.save(other, "from-elsewhere", data_folder(tmp_path / "data"))
    assert "from-elsewhere" not in p.datasets.table.value
    p._repr_mimebundle_()  # shown again
    p.wait()
    assert "from-elsewhere" in p.datasets.table.value
    other.registry.create("elsewhere", {"bucket": "no-such-bucket", "endpoint": moto_server})
    click(p, p.providers.check_button)  # any action of the panel's own
    assert "elsewhere" in p.providers.table.value


def test_a_folder_chosen_while_a_reading_shows_the_lists_opens(engine, shown, tmp_path):
    """A person's choice arrives in the kernel's own thread while a reading (after an action, Refresh) is changing
    the other lists: it is theirs, not the panel's, and the folder opens."""
    save_with_panel(shown, data_folder(tmp_path / "data"), "flowers")
    tab = shown.datasets
    entered, go = threading.Event(), threading.Event()

    def hold(change):  # the reading stops while it changes the list of versions
        if threading.current_thread() is not threading.main_thread():
            entered.set()
            go.wait(30)

    tab.version.observe(hold, "options")
    try:
        engine.datasets.set_tag("flowers", "v1", tab.chosen_version().version)  # elsewhere: the panel reads again
        assert entered.wait(30)
        tab.files.value = "sub/"
    finally:
        go.set()
        shown.wait()
        tab.version.unobserve(hold, "options")
    assert [v for _, v in tab.files.options] == ["..", "sub/b.bin", "sub/deep/"]


def test_the_save_form_follows_the_chosen_dataset(engine, shown, tmp_path):
    save_with_panel(shown, data_folder(tmp_path / "one"), "one")
    save_with_panel(shown, data_folder(tmp_path / "two"), "two")
    tab = shown.datasets
    tab.choice.value = engine.datasets.get("one").id
    shown.wait()
    assert tab.save_fields["name"].value == "one" and "Versions of one" in tab.versions_table.value


def test_the_save_form_follows_the_dataset_shown_when_the_panel_opens(engine, tmp_path):
    folder = data_folder(tmp_path / "data")
    gradient_jupyter.save("flowers", folder, progress=False)
    shown = shown_panel(engine)  # nothing chosen by hand: the first dataset is the one shown
    tab = shown.datasets
    assert tab.dataset().name == "flowers" and tab.save_fields["name"].value == "flowers"
    (folder / "c.txt").write_text("new file\n")
    typed(tab.save_fields["folder"], str(folder))
    click(shown, tab.save_button)
    assert "Saved flowers:" in tab.save_result.value, tab.save_result.value
    assert len(engine.datasets.list_versions("flowers")) == 2
    typed(tab.save_fields["name"], "petals")  # what a person typed stays through the readings that follow
    click(shown, shown.refresh_button)
    assert tab.save_fields["name"].value == "petals"


def test_a_second_version_lists_first_and_sends_only_what_changed(engine, shown, tmp_path):
    folder = data_folder(tmp_path / "data")
    save_with_panel(shown, folder, "flowers", message="one")
    (folder / "c.txt").write_text("new file\n")
    save_with_panel(shown, folder, "flowers", message="two", tag="best")
    assert ". 4 files, 9 B sent" in words_of(shown.datasets.save_result)
    html = shown.datasets.versions_table.value
    assert html.index("two") < html.index("one") and "(best)" in shown.datasets.version.options[0][0]
    assert ">A<" in shown.datasets.changes.value and "c.txt" in shown.datasets.changes.value  # since the one before
    assert "1 added, 0 removed" in shown.datasets.changes.value
    two, one = engine.datasets.list_versions("flowers")  # the newest first
    # Names and tags where a person looks, the ids on hover.
    assert f"Changes from flowers:{one.version} to flowers:{two.version} (best)" in shown.datasets.changes.value
    assert f"title='{one.ref} -&gt; {two.ref}'" in shown.datasets.changes.value


def test_the_changes_heading_follows_the_tags(engine, shown, tmp_path):
    folder = data_folder(tmp_path / "data")
    save_with_panel(shown, folder, "flowers")
    (folder / "c.txt").write_text("new file\n")
    save_with_panel(shown, folder, "flowers")
    two, one = engine.datasets.list_versions("flowers")
    assert f"Changes from flowers:{one.version} to flowers:{two.version}<" in shown.datasets.changes.value
    typed(shown.datasets.tag, "best")
    click(shown, shown.datasets.set_tag_button)  # the diff is not read again: its heading is worded again
    assert f"Changes from flowers:{one.version} to flowers:{two.version} (best)<" in shown.datasets.changes.value


def test_set_move_and_delete_tags(engine, shown, tmp_path):
    folder = data_folder(tmp_path / "data")
    save_with_panel(shown, folder, "flowers", tag="v1")
    (folder / "c.txt").write_text("more\n")
    save_with_panel(shown, folder, "flowers")
    tab = shown.datasets
    first, latest = [v.version for v in reversed(engine.datasets.list_versions("flowers"))]
    assert tab.version.value.endswith(latest)
    typed(tab.tag, "v1")
    click(shown, tab.set_tag_button)  # v1 names the first version: asked, not moved
    assert (
        tab.tag_confirm.box.layout.display == "flex" and f"is on flowers:{first} (v1)" in tab.tag_confirm.question.value
    )
    assert {t.name: t.version for t in engine.datasets.list_tags("flowers")} == {"v1": first}
    click(shown, tab.tag_confirm.yes)
    assert f"Tag v1 now names version flowers:{latest}" in tab.tag_result.value
    assert {t.name: t.version for t in engine.datasets.list_tags("flowers")} == {"v1": latest}
    assert "(v1)" in tab.version.options[0][0]

    typed(tab.tag, "prod")
    click(shown, tab.set_tag_button)
    assert {t.name for t in engine.datasets.list_tags("flowers")} == {"v1", "prod"}
    click(shown, tab.delete_tag_button)
    assert "Deleted tag prod" in tab.tag_result.value
    assert {t.name for t in engine.datasets.list_tags("flowers")} == {"v1"}
    typed(tab.tag, "Bad Tag")
    click(shown, tab.set_tag_button)
    assert "gj-error" in tab.tag_result.value and "Invalid tag name" in tab.tag_result.value


def test_delete_a_version_and_a_dataset_only_after_confirming(engine, shown, tmp_path):
    folder = data_folder(tmp_path / "data")
    save_with_panel(shown, folder, "flowers")
    (folder / "c.txt").write_text("more\n")
    save_with_panel(shown, folder, "flowers")
    tab = shown.datasets
    latest = tab.chosen_version()
    tab.delete_version_button.click()
    assert latest.version in tab.version_confirm.question.value and len(engine.datasets.list_versions("flowers")) == 2
    click(shown, tab.version_confirm.yes)
    assert f"Deleted version flowers:{latest.version}" in tab.version_result.value
    assert [v.version for v in engine.datasets.list_versions("flowers")] != [latest.version]
    assert latest.version not in tab.versions_table.value

    tab.delete_dataset_button.click()
    assert "flowers" in tab.dataset_confirm.question.value and "1 version" in tab.dataset_confirm.question.value
    click(shown, tab.dataset_confirm.no)
    assert engine.datasets.list()
    tab.delete_dataset_button.click()
    click(shown, tab.dataset_confirm.yes)
    assert "Deleted dataset flowers" in tab.dataset_result.value and engine.datasets.list() == []
    assert "none yet" in tab.table.value and tab.dataset_box.layout.display == "none"


def test_edit_the_description(engine, shown, tmp_path):
    save_with_panel(shown, data_folder(tmp_path / "data"), "flowers")
    tab = shown.datasets
    typed(tab.description, "petals, by colour")
    click(shown, shown.refresh_button)  # a reading while the user is typing keeps what is typed
    assert tab.description.value == "petals, by colour"
    click(shown, tab.description_button)
    assert "Saved the description of flowers" in tab.description_result.value
    assert engine.datasets.get("flowers").description == "petals, by colour"
    assert "petals, by colour" in tab.table.value


def test_save_into_an_s3_provider_chosen_in_the_form(engine, shown, s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    provider = engine.registry.create("moto", {"bucket": bucket, "endpoint": endpoint, "region": "us-east-1"})
    shown.wait()
    save_with_panel(shown, data_folder(tmp_path / "data"), "in-s3", provider=provider.id)
    assert "gj-ok" in shown.datasets.save_result.value, shown.datasets.save_result.value
    assert engine.datasets.get("in-s3").storage_provider_id == provider.id


@pytest.mark.parametrize(
    "name, folder, tag, words",
    [
        ("flowers", "missing", "", "is not a folder"),
        ("bad name!", "data", "", "invalid dataset name"),
        ("flowers", "data", "Bad Tag", "invalid tag name"),
    ],
)
def test_bad_save_input_shows_plain_words_next_to_save_and_saves_nothing(
    engine, shown, tmp_path, name, folder, tag, words
):
    data_folder(tmp_path / "data")
    save_with_panel(shown, tmp_path / folder, name, tag=tag)
    status = shown.datasets.save_result.value
    assert "gj-error" in status and words in status.lower() and "Traceback" not in status
    assert engine.datasets.list() == []
    assert shown.datasets.save_progress.box.layout.display == "none"  # refused before a byte moved: no bar
    assert not shown.datasets.save_button.disabled


def test_save_refuses_an_empty_folder_field_as_the_console_does(engine, shown, tmp_path, monkeypatch):
    monkeypatch.chdir(data_folder(tmp_path / "cwd"))  # what an empty field used to save
    save_with_panel(shown, "", "flowers")
    assert "Give the folder to save" in shown.datasets.save_result.value and engine.datasets.list() == []


def test_save_with_a_tag_in_use_asks_before_moving_it(engine, shown, tmp_path):
    folder = data_folder(tmp_path / "data")
    save_with_panel(shown, folder, "flowers", tag="v1")
    first = engine.datasets.resolve("flowers:v1")[1].version
    (folder / "c.txt").write_text("more\n")
    save_with_panel(shown, folder, "flowers", tag="v1")
    tab = shown.datasets
    assert "gj-error" in tab.save_result.value and "move" in tab.save_result.value
    assert tab.save_confirm.box.layout.display == "flex" and len(engine.datasets.list_versions("flowers")) == 1
    click(shown, tab.save_confirm.yes)
    assert "Saved" in tab.save_result.value, tab.save_result.value
    assert engine.datasets.resolve("flowers:v1")[1].version != first


def test_saving_an_unchanged_folder_makes_no_version_and_says_so(engine, shown, tmp_path):
    folder = data_folder(tmp_path / "data")
    save_with_panel(shown, folder, "flowers")
    save_with_panel(shown, folder, "flowers")
    assert "Unchanged" in shown.datasets.save_result.value and "gj-ok" in shown.datasets.save_result.value
    assert len(engine.datasets.list_versions("flowers")) == 1


def test_load_asks_before_overwriting_local_changes(engine, shown, tmp_path):
    save_with_panel(shown, data_folder(tmp_path / "data"), "flowers")
    tab = shown.datasets
    typed(tab.dest, str(tmp_path / "work"))
    click(shown, tab.load_button)
    (tmp_path / "work" / "a.csv").write_text("my own edit\n")
    click(shown, tab.load_button)
    assert "gj-error" in tab.load_result.value and "a.csv" in tab.load_confirm.question.value
    # the way on in the panel's words (its button), not the console's flag or the Python keyword
    assert words.OVERWRITE_AND_LOAD in tab.load_result.value and str(tmp_path / "work") in tab.load_result.value
    assert "--overwrite" not in tab.load_result.value and "overwrite=True" not in tab.load_result.value
    assert (tmp_path / "work" / "a.csv").read_text() == "my own edit\n"  # not assumed
    click(shown, tab.load_confirm.no)
    assert (tmp_path / "work" / "a.csv").read_text() == "my own edit\n"
    click(shown, tab.load_button)
    click(shown, tab.load_confirm.yes)
    assert "Loaded" in tab.load_result.value and (tmp_path / "work" / "a.csv").read_bytes() == b"x,y\n1,2\n"


def test_mount_a_version(engine, shown, tmp_path):
    save_with_panel(shown, data_folder(tmp_path / "data"), "flowers")
    tab = shown.datasets
    typed(tab.mount_dir, str(tmp_path / "mounted"))
    click(shown, tab.mount_button)
    assert "Mounted flowers" in tab.mount_result.value and "read-only" in tab.mount_result.value
    assert (tmp_path / "mounted" / "sub" / "deep" / "c.txt").read_bytes() == b"deep\n"


def test_datasets_of_an_unreachable_provider_are_said_to_be_missing(engine, moto_server):
    engine.registry.create("gone", {"bucket": "no-such-bucket-here", "endpoint": moto_server})
    p = shown_panel(engine)
    assert "Datasets in gone are not listed" in p.datasets.unlisted.value


def test_a_save_s_warnings_show_under_its_result(engine, moto_server, tmp_path):
    # A new dataset while a provider cannot be searched: saved in the default, with the console's warning.
    engine.registry.create("gone", {"bucket": "no-such-bucket-here", "endpoint": moto_server})
    p = shown_panel(engine)
    save_with_panel(p, data_folder(tmp_path / "data"), "flowers")
    status = p.datasets.save_result.value
    assert "gj-ok" in status and "Saved" in status, status
    assert "Warning: Storage provider 'gone' could not be searched" in status
    assert p.datasets.save_progress.bar.bar_style == "success"


def test_usage_is_read_again_only_when_it_can_have_changed(aws_env, tmp_path):
    """Asking every bucket how much it holds is the slowest reading: the panel keeps the last one until a save, a
    delete, a provider change, Refresh, or a change from outside the panel (here: the Python API)."""
    engine = Engine(GradientStorage(managed_quota=100_000))
    store, team = engine.store(engine.registry.managed()), engine.team_id
    p = shown_panel(engine)

    def shown_usage():
        return p.providers.quota_label.value

    def bucket_usage():
        used = engine.utilization()["managed"]["usedBytes"]
        return words.QUOTA_USED.format(used=human_bytes(used), quota=human_bytes(100_000), percent=used / 1000)

    save_with_panel(p, data_folder(tmp_path / "data"), "flowers")
    assert shown_usage() == bucket_usage()  # a save adds bytes: read again
    store.put_bytes(f"{team}/elsewhere", b"x" * 5000)  # another tool writes into the bucket
    before = shown_usage()
    typed(p.datasets.tag, "v1")
    click(p, p.datasets.set_tag_button)  # changes no bytes: the buckets are not asked
    assert "Tag v1 now names" in p.datasets.tag_result.value
    assert shown_usage() == before != bucket_usage()
    click(p, p.refresh_button)
    assert shown_usage() == bucket_usage() != before

    store.put_bytes(f"{team}/more", b"x" * 5000)
    engine.datasets.update(engine.datasets.get("flowers"), description="from the Python API")
    p.wait()
    assert shown_usage() == bucket_usage() and "from the Python API" in p.datasets.table.value


def test_quota_refusal_names_used_quota_and_needed(aws_env, tmp_path):
    engine = Engine(GradientStorage(managed_quota=1000))
    p = shown_panel(engine)
    save_with_panel(p, data_folder(tmp_path / "data"), "big")
    assert "quota exceeded" in p.datasets.save_result.value and "needs" in p.datasets.save_result.value
    assert engine.datasets.list() == []  # the refused save made no dataset


def test_drafts_are_shown_with_their_size_and_deleted_after_asking(engine, shown, tmp_path):
    latest, middle, first = three_versions(shown, tmp_path)
    tab = shown.datasets
    assert tab.drafts_box.layout.display == "none"  # none yet
    draft = engine.datasets.create_version("flowers")
    (tmp_path / "new.bin").write_bytes(bytes(range(256)) * 80 + b"new")  # bytes no version holds
    engine.datasets.put_file("flowers", draft.version, "big.bin", tmp_path / "new.bin")
    shown.refresh()
    shown.wait()
    assert tab.drafts_box.layout.display is None and tab.version.value == latest.ref  # the versions stay as they were
    assert [v for _, v in tab.version.options] == [latest.ref, middle.ref, first.ref]  # a draft is no version to load
    (listed,) = engine.datasets.drafts("flowers")
    size = human_bytes(listed.held_bytes)
    assert listed.held_bytes >= 20480 and f"1 draft(s) of flowers hold {size}" in words_of(tab.drafts_note)
    (label, ref), *_ = tab.draft.options
    assert ref == listed.ref and label.startswith(draft.version) and f"{size} held" in label

    tab.delete_draft_button.click()
    assert f"Delete draft flowers:{draft.version}?" in words_of(tab.draft_confirm.question)
    assert engine.datasets.drafts("flowers")  # asked, not deleted
    click(shown, tab.draft_confirm.yes)
    assert f"Deleted draft flowers:{draft.version}" in tab.draft_result.value
    assert engine.datasets.drafts("flowers") == [] and tab.drafts_box.layout.display == "none"
    assert len(engine.datasets.list_versions("flowers")) == 3


def test_team_providers_show_as_the_team_s_without_edit_or_delete(aws_env, s3_bucket, tmp_path, monkeypatch):
    endpoint, bucket = s3_bucket
    team = tmp_path / "team.json"
    provider = {"bucket": bucket, "endpoint": endpoint, "region": "us-east-1", "profile": "default"}
    team.write_text(
        json.dumps(
            {
                "teamId": "tepanel01",
                "providers": [{"name": "shared", **provider}, {"name": "archive", **provider, "readOnly": True}],
            }
        )
    )
    monkeypatch.setenv("GRADIENT_JUPYTER_TEAM_FILE", str(team))
    engine = Engine(GradientStorage())
    mine = engine.registry.create("mine", {"bucket": bucket, "endpoint": endpoint})
    p = shown_panel(engine)
    tab = p.providers
    shared, archive = engine.registry.get("shared"), engine.registry.get("archive")
    labels = dict((value, label) for label, value in tab.choice.options)
    assert labels[shared.id] == "shared (the team's)" and labels[mine.id] == "mine"
    tab.choice.value = shared.id
    assert tab.edit_button.layout.display == tab.delete_button.layout.display == "none"
    assert "shared is the team's" in tab.provider_result.value and str(team) in tab.provider_result.value
    assert "read-only" not in tab.provider_result.value
    tab.choice.value = archive.id
    assert "archive is the team's" in tab.provider_result.value and "read-only" in tab.provider_result.value
    tab.choice.value = mine.id  # a user provider: editable, and the team's words go
    assert tab.provider_result.value == "" and tab.edit_button.layout.display is None and not tab.edit_button.disabled


def three_versions(p, tmp_path):
    """flowers with three versions, newest first; the first tagged v1."""
    folder = data_folder(tmp_path / "data")
    save_with_panel(p, folder, "flowers", tag="v1")
    (folder / "two.txt").write_text("two\n")
    save_with_panel(p, folder, "flowers", message="two")
    (folder / "three.txt").write_text("three\n")
    save_with_panel(p, folder, "flowers", message="three")
    return p.datasets.versions


def test_results_belong_to_the_selection_they_answer(engine, shown, tmp_path, monkeypatch):
    """A result line goes when what it answered is no longer shown: another version, a tag moved, another
    dataset. A deleted version's line tells of its dataset, so it stays while that dataset is shown."""
    monkeypatch.chdir(tmp_path)
    latest, middle, first = three_versions(shown, tmp_path)
    tab = shown.datasets
    tab.version.value = first.ref
    shown.wait()
    typed(tab.dest, "work")
    click(shown, tab.load_button)
    click(shown, tab.mount_button)
    assert f"Loaded flowers:{first.version} (tag v1)" in words_of(tab.load_result)
    assert "Mounted flowers" in tab.mount_result.value
    tab.version.value = middle.ref  # another version: neither line answers it
    shown.wait()
    assert tab.load_result.value == tab.mount_result.value == ""
    tab.version.value = first.ref
    shown.wait()
    assert tab.load_result.value == ""  # gone, not hidden for a while

    click(shown, tab.load_button)
    assert "(tag v1)" in tab.load_result.value
    engine.datasets.set_tag("flowers", "v1", latest.version)  # elsewhere: the line's "(tag v1)" is no longer so
    shown.refresh()
    shown.wait()
    assert tab.version.value == first.ref and tab.load_result.value == ""

    (tmp_path / "work" / "a.csv").write_text("mine\n")
    click(shown, tab.load_button)  # refused: the question and the refusal go together with the selection
    assert tab.load_confirm.box.layout.display == "flex" and "gj-error" in tab.load_result.value
    tab.version.value = middle.ref
    shown.wait()
    assert tab.load_confirm.box.layout.display == "none" and tab.load_result.value == ""

    tab.delete_version_button.click()
    click(shown, tab.version_confirm.yes)
    assert f"Deleted version flowers:{middle.version}" in tab.version_result.value
    assert tab.version.value != middle.ref and "Deleted version" in tab.version_result.value  # still its dataset's
    typed(tab.description, "petals")
    click(shown, tab.description_button)
    assert "Saved the description" in tab.description_result.value
    save_with_panel(shown, data_folder(tmp_path / "other"), "other")
    tab.choice.value = engine.datasets.get("other").id
    shown.wait()
    assert tab.version_result.value == tab.description_result.value == ""


def test_compare_a_version_with_any_other_and_a_deleted_parent_is_a_choice(engine, shown, tmp_path):
    latest, middle, first = three_versions(shown, tmp_path)
    tab = shown.datasets
    assert tab.version.value == latest.ref
    assert tab.compare.value == "" and f"the version before: flowers:{middle.version}" in tab.compare.label
    assert "two.txt" not in tab.changes.value and "three.txt" in tab.changes.value  # from its parent
    assert [value for _, value in tab.compare.options] == ["", middle.ref, first.ref]
    tab.compare.value = first.ref
    shown.wait()
    changes = tab.changes.value
    assert f"flowers:{first.version} (v1)" in changes and "two.txt" in changes and "three.txt" in changes
    assert "2 added" in changes

    tab.version.value = first.ref  # the first version: compared with nothing by default
    shown.wait()
    assert tab.compare.value == "" and tab.compare.label == words.COMPARE_FIRST and "3 added" in tab.changes.value

    engine.datasets.delete_version("flowers", middle.version)  # the parent of the latest, elsewhere
    tab.version.value = latest.ref
    shown.refresh()
    shown.wait()
    assert tab.compare.value is None and [value for _, value in tab.compare.options] == [first.ref]
    assert "choose a version to compare with" in tab.changes_result.value and "gj-error" not in tab.changes_result.value
    assert tab.changes.value == ""
    tab.compare.value = first.ref
    shown.wait()
    assert "three.txt" in tab.changes.value and "two.txt" in tab.changes.value and tab.changes_result.value == ""


def test_mounts_of_the_dataset_are_listed_with_their_folders_and_unmounted(engine, shown, tmp_path, monkeypatch):
    from gradient_jupyter.engine.content.mount import mount

    monkeypatch.chdir(tmp_path)
    latest, middle, first = three_versions(shown, tmp_path)
    tab = shown.datasets
    assert tab.mounts.options == ((words.NO_MOUNTS, ""),) and tab.unmount_button.disabled
    click(shown, tab.mount_button)  # at ./datasets/flowers
    tab.version.value = first.ref
    shown.wait()
    typed(tab.mount_dir, str(tmp_path / "elsewhere"))
    click(shown, tab.mount_button)
    default = tmp_path / "datasets" / "flowers"
    assert [value for _, value in tab.mounts.options] == [str(default), str(tmp_path / "elsewhere")]
    labels = [label for label, _ in tab.mounts.options]
    assert labels[0].startswith(f"flowers:{latest.version}") and labels[0].endswith(f"at {default}")
    assert f"flowers:{first.version} (v1)" in labels[1] and not tab.unmount_button.disabled

    tab.mounts.value = str(tmp_path / "elsewhere")
    click(shown, tab.unmount_button)
    assert f"Unmounted {tmp_path / 'elsewhere'}" in tab.unmount_result.value
    assert not (tmp_path / "elsewhere").exists() and default.is_dir()
    assert [value for _, value in tab.mounts.options] == [str(default)]
    mount(engine, latest.ref, tmp_path / "by-the-api")  # any door's mount is listed: the data home records it
    shown.refresh()
    shown.wait()
    assert [value for _, value in tab.mounts.options] == [str(tmp_path / "by-the-api"), str(default)]
    save_with_panel(shown, data_folder(tmp_path / "other"), "other")  # another dataset: its own mounts (none)
    tab.choice.value = engine.datasets.get("other").id
    shown.wait()
    assert tab.mounts.options == ((words.NO_MOUNTS, ""),) and tab.unmount_result.value == ""


def test_add_and_check_is_the_primary_action_and_add_alone_says_nothing_was_checked(engine, shown, s3_bucket):
    endpoint, bucket = s3_bucket
    tab = shown.providers
    assert tab.add_check_button.button_style == "primary" and tab.add_button.button_style == ""
    fill_provider_form(tab, DEAD, bucket, name="dead")
    click(shown, tab.add_button)
    assert "Created storage provider dead" in tab.form_result.value
    assert "Warning: nothing was checked" in tab.form_result.value and "Check setup" in tab.form_result.value


def test_a_refusal_leaves_no_bar_and_the_question_is_where_the_refusal_says(engine, shown, tmp_path):
    """The load's refusal says "below": its question is below it; no bar of a check that moved nothing."""
    (latest,) = three_versions(shown, tmp_path)[:1]
    tab = shown.datasets
    parts = tab.version_parts.children
    assert parts.index(tab.load_confirm.box) == parts.index(tab.load_result) + 1
    box = tab.box.children
    assert box.index(tab.save_confirm.box) == box.index(tab.save_result) + 1
    dataset = tab.dataset_box.children
    assert dataset[1].children[0] is tab.description_button and dataset[2] is tab.description_result  # under it
    typed(tab.dest, str(tmp_path / "work"))
    click(shown, tab.load_button)
    (tmp_path / "work" / "a.csv").write_text("mine\n")
    click(shown, tab.load_button)
    assert "below" in tab.load_result.value and tab.load_confirm.box.layout.display == "flex"
    assert tab.load_progress.box.layout.display == "none"  # not a red "Checking" bar
    typed(tab.save_fields["tag"], "v1")
    typed(tab.save_fields["folder"], str(tmp_path / "data"))
    (tmp_path / "data" / "four.txt").write_text("4\n")
    click(shown, tab.save_button)  # the tag names another version: refused before anything is hashed or sent
    assert "Move the tag and save" in tab.save_result.value and tab.save_progress.box.layout.display == "none"
    assert f"flowers:{shown.datasets.versions[-1].version} (v1)" in tab.save_result.value


def test_a_number_and_its_unit_never_part(shown):
    from gradient_jupyter.notebook.panel.parts import note

    assert "in\xa00.0\xa0s" in note("Loaded x in 0.0 s") and "3\xa0files, 1.2\xa0MiB" in note("3 files, 1.2 MiB")


def test_load_without_a_version_says_what_to_do(shown):
    shown.datasets.load_button.click()
    assert "Choose a dataset with a committed version first" in shown.datasets.load_result.value


# -- in a real kernel ---------------------------------------------------------------------------------------------
def run_in_kernel(cwd, *cells) -> list[list[dict]]:
    """Run each cell in a fresh ipykernel; the iopub messages of each cell."""
    import os

    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(cwd), env=os.environ.copy())
    outputs = []
    try:
        for cell in cells:
            seen = []
            reply = kc.execute_interactive(cell, timeout=120, output_hook=seen.append)
            assert reply["content"]["status"] == "ok", seen
            outputs.append(seen)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return outputs


def test_the_magic_without_words_shows_the_panel_in_a_kernel(tmp_path):
    (shown,) = run_in_kernel(tmp_path, "%load_ext gradient_jupyter\n%gradient_storage")
    data = [o["content"]["data"] for o in shown if o["msg_type"] == "display_data"]
    assert data and "application/vnd.jupyter.widget-view+json" in data[0]
    assert not [o for o in shown if o["msg_type"] in ("error", "stream")]


def test_what_the_magic_changes_reaches_the_shown_panel_in_the_browser_s_messages(tmp_path):
    shown, changed, checked = run_in_kernel(
        tmp_path,
        "%load_ext gradient_jupyter\nimport gradient_jupyter\np = gradient_jupyter.panel()\ndisplay(p)\np.wait()",
        # p.wait() in the same cell: the panel's updates are sent before the cell ends, so they are this cell's
        "%gradient_storage datasets create --name from-the-magic --description 'made by a magic'\np.wait()",
        "print([label for label, _ in p.datasets.choice.options])",
    )
    updates = [json.dumps(o["content"]["data"]) for o in changed if o["msg_type"] == "comm_msg"]
    assert any("from-the-magic" in u and "made by a magic" in u for u in updates)  # the table, sent to the browser
    printed = "".join(o["content"].get("text", "") for o in checked if o["msg_type"] == "stream")
    assert "['from-the-magic']" in printed


def test_an_unreachable_provider_is_one_warning_in_the_magic_and_no_log_line_under_the_panel(aws_env, tmp_path):
    _, created, listed, shown = run_in_kernel(
        tmp_path,
        "%load_ext gradient_jupyter",
        f"%gradient_storage storageProviders create s3 --name dead --bucket dead-bucket --endpoint {DEAD} "
        "--accessKey k --secretAccessKey s",
        "%gradient_storage datasets list",
        "import gradient_jupyter\np = gradient_jupyter.panel()\ndisplay(p)\np.wait()",
    )

    def streams(messages):
        return "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")

    def shown_text(messages):
        return "".join(
            m["content"]["data"].get("text/plain", "")
            for m in messages
            if m["msg_type"] in ("execute_result", "display_data")
        )

    assert "Created storage provider: sp" in streams(created) + shown_text(created)
    out = streams(listed)
    assert out.count("Cannot connect to the storage endpoint") == 1, out  # the warning, not a log line too
    assert "while listing datasets" not in out and "storageProviders check --id dead" in out
    assert streams(shown) == ""  # the panel says it under its list, not on the cell's stderr


KERNEL_SETUP = """
import json, pathlib
import gradient_jupyter
p = gradient_jupyter.panel()
display(p)
p.wait()
P, D = p.providers, p.datasets
def typed(widget, value):  # what the browser sends when a field is left
    widget.set_state({"value": value})
def click(button):
    button.click()
    p.wait()
def text(widget):
    return widget.value
"""


def test_the_panel_s_actions_in_a_real_kernel(tmp_path, s3_bucket):
    """Each kind of action through the kernel's widgets and threads: add, save, a refusal with its question,
    load's question about local changes, and a delete that waits for its confirmation."""
    endpoint, bucket = s3_bucket
    data_folder(tmp_path / "data")
    _, added, saved, loaded, deleted = run_in_kernel(
        tmp_path,
        KERNEL_SETUP,
        f"""
for key, value in {{"name": "moto", "bucket": "{bucket}", "endpoint": "{endpoint}", "region": "us-east-1",
                   "accessKey": "testing", "secretAccessKey": "{SECRET}"}}.items():
    typed(P.fields[key], value)
print("state:", "{SECRET}" in json.dumps([w.get_state() for w in P.fields.values()], default=str))
click(P.add_button)
print("added:", text(P.form_result))
""",
        """
for key, value in {"folder": "data", "name": "flowers", "tag": "v1"}.items():
    typed(D.save_fields[key], value)
click(D.save_button)
pathlib.Path("data/new.txt").write_text("new\\n")
for key, value in {"folder": "data", "name": "flowers", "tag": "v1"}.items():
    typed(D.save_fields[key], value)
click(D.save_button)
print("refused:", text(D.save_result))
print("asked:", text(D.save_confirm.question))
click(D.save_confirm.yes)
print("saved:", text(D.save_result))
""",
        """
typed(D.dest, "work")
click(D.load_button)
pathlib.Path("work/a.csv").write_text("mine\\n")
click(D.load_button)
print("asked:", text(D.load_confirm.question), pathlib.Path("work/a.csv").read_text().strip())
click(D.load_confirm.yes)
print("loaded:", text(D.load_result), pathlib.Path("work/a.csv").read_text().strip())
""",
        """
D.delete_version_button.click()
print("asked:", text(D.version_confirm.question))
print("versions before:", len(D.versions))
click(D.version_confirm.yes)
print("deleted:", text(D.version_result))
print("versions after:", len(D.versions))
""",
    )

    def printed(messages):
        return "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")

    assert "state: False" in printed(added) and "Created storage provider moto" in printed(added)
    out = printed(saved)
    assert (
        "refused:" in out
        and "Move the tag and save" in out
        and "asked: " in out
        and "Tag v1 names another version" in out
    )
    assert "saved: " in out and "Saved flowers:" in out and "(tag v1)" in out
    out = printed(loaded)
    assert "a.csv" in out.split("asked:")[1].split("\n")[0] and " mine\n" in out
    assert "loaded: " in out and "Loaded" in out and out.rstrip().endswith("x,y\n1,2")  # overwritten, as asked
    out = printed(deleted)
    assert "asked: " in out and "Delete version" in out and "versions before: 2" in out
    assert "deleted: " in out and "Deleted version" in out and "versions after: 1" in out
