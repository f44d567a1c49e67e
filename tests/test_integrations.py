"""Gradient's `.gradient/settings.yaml`: dataset integrations mounted at `datasets/<name>` when the server starts."""

from __future__ import annotations

import logging
import time

import pytest

from gradient_jupyter.engine import BadInput, transfer
from gradient_jupyter.engine.content.automount import dataset_integrations, mount_integrations

SETTINGS = """
integrations:
  pets:
    type: dataset
    ref: pets:v1
  pets-by-id:
    type: dataset
    id: {ds_id}
    version: {version}
  missing:
    type: dataset
    ref: no-such-dataset
  raw-bucket:
    type: s3
    url: s3://somewhere/raw
"""


@pytest.fixture
def settings_yaml(engine, jp_root_dir, tmp_path):
    """A dataset `pets` and a settings.yaml in the Jupyter root, written before the server starts."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "cat.txt").write_text("meow")
    saved = transfer.save(engine, "pets", src, tag="v1")
    (jp_root_dir / ".gradient").mkdir()
    (jp_root_dir / ".gradient" / "settings.yaml").write_text(
        SETTINGS.format(ds_id=saved.dataset.id, version=saved.version.version)
    )
    return jp_root_dir


def test_parsing_says_what_each_entry_is(tmp_path, caplog):
    (tmp_path / ".gradient").mkdir()
    (tmp_path / ".gradient" / "settings.yaml").write_text(
        SETTINGS.format(ds_id="dsabcdefghijklm", version="abc1234")
        + "  ../escape:\n    type: dataset\n    ref: pets\n  odd:\n    type: machine\n"
    )
    with caplog.at_level(logging.WARNING, logger="gradient_jupyter"):
        found = dataset_integrations(tmp_path)
    assert found == [("pets", "pets:v1"), ("pets-by-id", "dsabcdefghijklm:abc1234"), ("missing", "no-such-dataset")]
    assert "'raw-bucket' is a bucket (type: s3)" in caplog.text and "storageProviders create s3" in caplog.text
    assert "'../escape' ignored" in caplog.text and "'odd' has type 'machine'" in caplog.text
    assert dataset_integrations(tmp_path / "nowhere") == []
    (tmp_path / ".gradient" / "settings.yaml").write_text("integrations: [unclosed")
    with pytest.raises(BadInput, match="not valid YAML"):
        dataset_integrations(tmp_path)


async def test_the_server_mounts_integrations_in_the_background(settings_yaml, jp_serverapp, jp_fetch):
    ext = jp_serverapp.extension_manager.extension_apps["gradient_jupyter"]
    (app,) = ext
    for _ in range(600):  # a ceiling, not a timing: the mounts run on the extension's threads
        if app.integrations.done():
            break
        time.sleep(0.1)
    outcome = app.integrations.result()
    assert outcome["pets"].startswith("mounted ") and outcome["pets-by-id"].startswith("mounted ")
    assert "Unknown dataset 'no-such-dataset'" in outcome["missing"]
    assert "raw-bucket" not in outcome
    assert (settings_yaml / "datasets" / "pets" / "cat.txt").read_text() == "meow"
    assert (settings_yaml / "datasets" / "pets-by-id" / "cat.txt").read_text() == "meow"
    # the file browser's own API lists the mount like any folder
    listing = await jp_fetch("api", "contents", "datasets", method="GET")
    import json

    names = sorted(c["name"] for c in json.loads(listing.body)["content"])
    assert names == ["pets", "pets-by-id"]


def alias_bomb(levels: int) -> str:
    """A "billion laughs": each level lists the one before nine times, by alias. With 9 levels (449 bytes) reading
    the ref once took the server 17 s and 3 GB; 6 levels (half a million strings) keep this test cheap."""
    lines = ["l0: &l0 lol"] + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join([*lines, f"integrations: {{pets: {{type: dataset, ref: *l{levels - 1}}}}}", ""])


def test_settings_are_bounded_aliases_and_deep_nesting_refused(engine, tmp_path, caplog):
    settings = tmp_path / ".gradient" / "settings.yaml"
    settings.parent.mkdir()
    for text, words in [
        (alias_bomb(6), "aliases (*name) are not allowed"),
        ("integrations: " + "[" * 5000, "nested more than"),
        ("integrations: {}\n" + "#" * 70_000, "larger than"),
    ]:
        settings.write_text(text)
        with pytest.raises(BadInput, match="restart the server") as info:
            dataset_integrations(tmp_path)
        assert words in info.value.message and str(settings) in info.value.message
    settings.write_text("integrations:\n  pets: &p {type: dataset, ref: pets}\n")  # an anchor alone is harmless
    assert dataset_integrations(tmp_path) == [("pets", "pets")]
    settings.write_text(alias_bomb(9))
    with caplog.at_level(logging.ERROR, logger="gradient_jupyter"):
        assert mount_integrations(engine, tmp_path) == {}
    assert "aliases" in caplog.text


def test_an_integration_reached_through_a_link_out_of_the_root_is_refused_and_logged(engine, tmp_path, caplog):
    src = tmp_path / "src"
    src.mkdir()
    (src / "cat.txt").write_text("meow")
    transfer.save(engine, "pets", src, tag="v1")
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    (root / ".gradient").mkdir(parents=True)
    (root / ".gradient" / "settings.yaml").write_text(
        "integrations:\n  pets: {type: dataset, ref: pets:v1}\n  cats: {type: dataset, ref: pets:v1}\n"
    )
    elsewhere.mkdir()
    (root / "datasets").symlink_to(elsewhere)
    with caplog.at_level(logging.ERROR, logger="gradient_jupyter"):
        outcome = mount_integrations(engine, root)  # what the server runs at start: logged, never raised
    assert "outside the Jupyter root" in outcome["pets"] and str(elsewhere) in outcome["pets"]
    assert "'pets'" in caplog.text and "outside the Jupyter root" in caplog.text
    assert list(elsewhere.iterdir()) == []
    (root / "datasets").unlink()  # a link for one integration's own folder is refused too
    (root / "datasets").mkdir()
    (root / "datasets" / "cats").symlink_to(elsewhere)
    outcome = mount_integrations(engine, root)
    assert outcome["pets"] == "mounted " + engine.datasets.resolve("pets:v1")[1].ref
    assert "outside the Jupyter root" in outcome["cats"] and list(elsewhere.iterdir()) == []
