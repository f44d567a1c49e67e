"""Every message the panel shows names the panel's own fields and buttons, never the console's flags and words.

The panel is driven through its error paths as a user would (type, click) against moto and the embedded store;
every text any of its widgets shows on the way is collected and read for console language: a flag (`--to`,
`--force`), `?force=true`, a word in CAPITALS such as PATH, or a setting named as the console and REST name it
(secretAccessKey) instead of by its field's label.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import ipywidgets as W
import pytest

from gradient_jupyter import panel
from gradient_jupyter.engine import Engine, GradientStorage

from .helpers import SECRET, make_folder
from .helpers.cors import foreign_cors
from .helpers.widgets import typed, widget_tree

DEAD = "http://127.0.0.1:1"
# Words in capitals that are names, not a console's placeholders: acronyms a person meets in the panel as such.
ACRONYMS = {
    "S3",
    "AWS",
    "CORS",
    "IAM",
    "URL",
    "HTTP",
    "HTTPS",
    "JSON",
    "ID",
    "STS",
    "DNS",
    "SHA",
    "GET",
    "PUT",
    "OPTIONS",
    "API",
    "R2",
}
STATUSES = {"PASS", "WARN", "FAIL", "SKIP"}  # the bucket check's badges
FLAG = re.compile(r"(?<![\w-])--[a-zA-Z]|\?force=")
CAPITALS = re.compile(r"(?<![\w.-])[A-Z][A-Z0-9]+(?![\w-])")  # PATH, KEY, ID...; not MINIO_API_CORS (an env var)
CAMEL = re.compile(r"\b[a-z]+[A-Z]\w*")  # secretAccessKey, signatureVersion, storageProviders, isTeamDefault


class Text(HTMLParser):
    """The text a browser shows for some HTML, without another tool's command an administrator runs
    (`aws s3api ...` in <code>) and JSON to paste (<pre>)."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0
        self._code: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "pre":
            self._skip += 1
        elif tag == "code":
            self._code = []

    def handle_endtag(self, tag):
        if tag == "pre":
            self._skip -= 1
        elif tag == "code" and self._code is not None:
            code, self._code = "".join(self._code), None
            if not code.startswith("aws "):
                self.parts.append(code)

    def handle_data(self, data):
        if self._skip:
            return
        (self._code if self._code is not None else self.parts).append(data)


def shown_text(value: str) -> str:
    parser = Text()
    parser.feed(value)
    text = " ".join(parser.parts)
    # A fix's JSON (the CORS rules, an IAM statement) is pasted into another tool's settings, as it is.
    return re.sub(r"[\[{][^\n]*[\]}]", " ", text)


def console_words(text: str) -> list[str]:
    """The console's language in `text`: flags, capitals that are not acronyms, camelCase field names."""
    found = FLAG.findall(text) + CAMEL.findall(text)
    found += [w for w in CAPITALS.findall(text) if w not in ACRONYMS | STATUSES]
    return found


def test_the_check_finds_what_the_panel_said_before():
    """The check itself: the messages the panel showed in its second round are caught."""
    for said in [
        "The parent of ds:v, version a, no longer exists (it was deleted): compare with another version instead, "
        "with --to.",
        "1 dataset(s) use storage provider 'x': delete them first, or delete the provider anyway with --force "
        "(REST: ?force=true); their data stays in the bucket.",
        "Give the secret that belongs to the access key: correct secretAccessKey before adding the provider.",
        "Give the folder to save: an empty PATH would save the whole working directory.",
        "Unknown signatureVersion 'v9': use one of s3, s3v4.",
    ]:
        assert console_words(shown_text(said)), said
    assert not console_words(shown_text("Check the Endpoint of AWS S3 (CORS, HTTP); set MINIO_API_CORS_ALLOW_ORIGIN"))
    assert not console_words(shown_text('<code>aws s3api put-bucket-cors --bucket b</code><pre>[{"a": 1}]</pre>'))


class Seen:
    """Every text any widget of the panel shows, as it changes: results, hints, questions, reports, labels."""

    def __init__(self, p: W.Widget):
        self.texts: dict[str, str] = {}
        for widget in widget_tree(p):
            if isinstance(widget, (W.HTML, W.Label)):
                widget.observe(self._seen, "value")
            if isinstance(widget, W.Button):
                widget.observe(self._seen, "description")

    def _seen(self, change) -> None:
        if change["new"]:
            self.texts[shown_text(change["new"])] = change["new"]

    def console_language(self) -> dict[str, list[str]]:
        return {text: words for text in self.texts if (words := console_words(text))}


def click(p, button) -> None:
    button.click()
    p.wait()


def fill(tab, **fields) -> None:
    for key in tab.fields:
        if key != "secretAccessKey":
            typed(tab.fields[key], "")
    for key, value in fields.items():
        typed(tab.fields[key], value)


@pytest.fixture
def watched(aws_env, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "no-servers"))  # no origin found for CORS
    monkeypatch.chdir(tmp_path)
    engine = Engine(GradientStorage(managed_quota=30_000))
    p = panel(engine)
    seen = Seen(p)  # before the first reading ends: its lines are seen too
    p.wait()
    return engine, p, seen


def test_every_message_of_the_panel_s_error_paths_is_in_its_own_words(watched, s3_bucket, tmp_path):
    engine, p, seen = watched
    endpoint, bucket = s3_bucket
    tab = p.providers
    base = {"bucket": bucket, "endpoint": endpoint, "region": "us-east-1", "accessKey": "testing"}

    # -- the provider form: each field refused, then Add and check against what does not answer -----------------
    for name, change in [
        ("", {}),
        ("ok", {"bucket": "MyBucket"}),
        ("ok", {"endpoint": "ftp://example.com"}),
        ("ok", {"signatureVersion": "v9"}),
        ("ok", {"profile": "team"}),
        ("ok", {"accessKey": ""}),
    ]:
        fill(tab, name=name, **{**base, **change})
        typed(tab.secret, SECRET)
        click(p, tab.add_button)
    fill(tab, name="ok", **base)
    click(p, tab.add_button)  # an access key without its secret
    fill(tab, name="dead", **{**base, "endpoint": DEAD})
    typed(tab.secret, SECRET)
    click(p, tab.add_check_button)
    assert "could not connect to http://127.0.0.1:1" in tab.form_result.value
    fill(tab, name="nobucket", **{**base, "bucket": "no-such-" + bucket})
    typed(tab.secret, SECRET)
    click(p, tab.add_check_button)
    assert "Not added" in tab.form_result.value

    # -- added without a check, then one more on the same bucket; unreachable; check setup; CORS; delete --------
    fill(tab, name="dead", **{**base, "endpoint": DEAD})
    typed(tab.secret, SECRET)
    click(p, tab.add_button)
    assert "nothing was checked" in tab.form_result.value
    for name in ("moto", "twin"):
        fill(tab, name=name, **base)
        typed(tab.secret, SECRET)
        click(p, tab.add_check_button)
    assert "already uses bucket" in tab.form_result.value
    foreign_cors(endpoint, bucket)
    moto, dead = engine.registry.get("moto"), engine.registry.get("dead")
    tab.choice.value = moto.id
    click(p, tab.check_button)  # no origin known: the CORS checks say where to give one
    click(p, tab.cors_button)
    typed(tab.origins, "http://127.0.0.1:8888")
    click(p, tab.check_button)
    assert "Apply CORS fix" in tab.report.value
    tab.choice.value = dead.id
    click(p, tab.check_button)
    tab.delete_button.click()
    click(p, tab.confirm.yes)  # its bucket cannot be read to tell whether datasets use it
    assert "Delete anyway" in tab.provider_result.value and tab.confirm.box.layout.display == "flex"
    tab.start_edit()
    fill(tab, name="dead", **{**base, "endpoint": "ftp://x"})
    click(p, tab.save_button)
    click(p, tab.cancel_button)

    # -- datasets: save's refusals, a tag in use, another provider, the quota; load; diff; tags; mount ----------
    d = p.datasets
    folder = make_folder(tmp_path / "data", {"a.csv": b"x,y\n1,2\n", "sub/b.txt": b"b\n"})
    (tmp_path / "a-file").write_text("x")

    def save(name, path, tag="", provider=""):
        typed(d.save_fields["folder"], str(path))
        typed(d.save_fields["name"], name)
        typed(d.save_fields["tag"], tag)
        d.provider.value = provider
        click(p, d.save_button)

    save("flowers", "")
    save("flowers", tmp_path / "missing")
    save("flowers", tmp_path / "a-file")
    save("bad name!", folder)
    save("flowers", folder, tag="Bad Tag")
    save("flowers", folder, tag="v1", provider=moto.id)
    (folder / "two.txt").write_text("two\n")
    save("flowers", folder, tag="v2", provider=moto.id)
    (folder / "three.txt").write_text("three\n")
    save("flowers", folder, tag="v1", provider=moto.id)  # v1 names another version: asked
    assert d.save_confirm.box.layout.display == "flex"
    save("flowers", folder)  # the dataset lives in moto; the managed provider is the team default
    (folder / "big.bin").write_bytes(b"\0" * 40_000)
    save("big", folder)  # over the managed quota
    save("flowers", folder, provider=engine.registry.managed().id)  # lives elsewhere
    tab.delete_button.click()
    tab.choice.value = moto.id
    tab.delete_button.click()
    click(p, tab.confirm.yes)  # datasets use it
    assert "Delete anyway" in tab.provider_result.value

    d.choice.value = engine.datasets.get("flowers").id
    p.wait()
    versions = engine.datasets.list_versions("flowers")
    assert len(versions) == 3
    engine.datasets.delete_version("flowers", versions[1].version)  # the parent of the latest
    p.refresh()
    p.wait()
    d.version.value = versions[0].ref
    p.wait()
    assert d.compare.value is None and "choose a version to compare with" in d.changes_result.value
    typed(d.dest, "work")
    click(p, d.load_button)
    (tmp_path / "work" / "a.csv").write_text("mine\n")
    click(p, d.load_button)  # local changes: asked
    assert d.load_confirm.box.layout.display == "flex"
    typed(d.tag, "Bad Tag")
    click(p, d.set_tag_button)
    typed(d.tag, "")
    click(p, d.set_tag_button)
    typed(d.mount_dir, str(folder))
    click(p, d.mount_button)  # a folder of files, not a mount
    d.delete_version_button.click()
    d.delete_dataset_button.click()

    assert len(seen.texts) > 60, len(seen.texts)  # the walk really showed messages
    found = seen.console_language()
    assert not found, "\n\n".join(f"{words}: {text}" for text, words in found.items())
