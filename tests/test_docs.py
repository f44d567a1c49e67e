"""The contract in docs/ matches what the code does: configuration, and the manifest's JSON Schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_documented():
    from gradient_jupyter.engine.settings import GradientStorage
    from gradient_jupyter.server.extension import GradientExtension

    text = (DOCS / "configuration.md").read_text()
    names = [f"c.GradientStorage.{n}" for n in GradientStorage.class_traits(config=True)]
    names += [f"c.GradientExtension.{n}" for n in GradientExtension.class_own_traits(config=True)]
    assert [n for n in names if f"`{n}`" not in text] == []


def test_links_between_docs_resolve():
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


@pytest.fixture(scope="module")
def schema():
    value = json.loads((DOCS / "manifest.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(value)
    return jsonschema.Draft202012Validator(value)


def test_a_saved_manifest_follows_the_documented_schema(engine, tmp_path, schema):
    from gradient_jupyter.engine import transfer

    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("x,y\n1,2\n")
    (folder / "sub" / "b.bin").write_bytes(bytes(range(256)) * 100)
    summary = transfer.save(engine, "docs-check", folder, message="first")
    ds, version = summary.dataset.id, summary.version.version
    key = f"{engine.team_prefix()}datasets/{ds}/versions/{version}/manifest.json"
    manifest = json.loads((engine.home / "managed" / key).read_text())  # Gradient Managed, embedded
    schema.validate(manifest)
    assert sorted(f["path"] for f in manifest["files"]) == ["a.csv", "sub/b.bin"]


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../x", "a\\b", "a\x00b", "a//b", "./a", "dir/"])
def test_the_schema_refuses_hostile_paths(schema, path):
    entry = {
        "path": path,
        "size": 1,
        "sha256": "0" * 64,
        "key": "te1234567/datasets/dsaaaaaaaaaaaaa/versions/abcdefg/data/x",
    }
    manifest = {
        "format": "gradient-jupyter/manifest@1",
        "dataset": "dsaaaaaaaaaaaaa",
        "version": "abcdefg",
        "committedAt": "2026-01-01T00:00:00Z",
        "files": [entry],
    }
    schema.validate({**manifest, "files": [{**entry, "path": "ok/name.csv"}]})
    with pytest.raises(jsonschema.ValidationError):
        schema.validate(manifest)
