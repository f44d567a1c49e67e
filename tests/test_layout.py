"""Every object key comes from engine/layout.py, and it is the layout docs/bucket-layout.md documents."""

from __future__ import annotations

import re
from pathlib import Path

from gradient_jupyter.engine.layout import Layout

DOC = Path(__file__).resolve().parent.parent / "docs" / "bucket-layout.md"


def test_the_keys_are_the_documented_ones():
    layout, ds, v = Layout("<teamId>"), "<datasetId>", "<v>"
    keys = [
        layout.claim("<lowercase name>"),
        layout.dataset_record(ds),
        layout.tag(ds, "<tag>"),
        layout.version_record(ds, v),
        layout.message(ds, v),
        layout.pending(ds, v),
        layout.data(ds, v, "<path>"),
        layout.uploads(ds, v, "<random id>"),
        layout.refs(ds, v, "<path>"),
        layout.committing(ds, v),
        layout.manifest(ds, v),
    ]
    documented = {re.split(r"\s{2,}", line)[0] for line in DOC.read_text().splitlines() if line.startswith("<teamId>/")}
    assert [k for k in keys if k not in documented] == []


def test_a_key_names_its_version():
    layout = Layout("te1234567")
    key = layout.data("dsaaaaaaaaaaaaa", "abcdefg", "a/b.csv")
    assert key == "te1234567/datasets/dsaaaaaaaaaaaaa/versions/abcdefg/data/a/b.csv"
    assert layout.version_of("dsaaaaaaaaaaaaa", key) == "abcdefg"
    assert layout.uploads("dsaaaaaaaaaaaaa", "abcdefg").startswith(layout.version("dsaaaaaaaaaaaaa", "abcdefg"))
