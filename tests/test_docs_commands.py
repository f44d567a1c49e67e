"""docs/commands.md names every command word and option the parser takes, and docs/rest-api.md every route of
openapi.json, so the reference cannot drift."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from gradient_jupyter.cli import build_parser

DOC = Path(__file__).resolve().parent.parent / "docs" / "commands.md"


def leaves(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()):
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(words), parser
        return
    for name, sub in subs[0].choices.items():
        yield from leaves(sub, (*words, name))


def test_every_command_and_option_is_in_docs_commands_md():
    cells = re.findall(r"^\| `([^`]+)` \|", DOC.read_text(), flags=re.M)  # a table's first column
    missing = []
    for words, parser in leaves(build_parser("gradient-jupyter")):
        cell = next((c for c in cells if c == words or c.startswith(words + " ")), None)
        if cell is None:
            missing.append(words)
            continue
        for action in parser._actions:
            flags = [f for f in action.option_strings if f not in ("-h", "--help")]
            if flags and not any(re.search(rf"{re.escape(f)}\b", cell) for f in flags):
                missing.append(f"{words} {flags[-1]}")
    assert missing == []


def test_every_rest_route_is_in_docs_rest_api_md():
    import json

    spec = json.loads((DOC.parent.parent / "gradient_jupyter" / "server" / "openapi.json").read_text())
    text = (DOC.parent / "rest-api.md").read_text()
    routes = [
        f"| {method.upper()} | `{path}` |"
        for path, ops in spec["paths"].items()
        for method in ops
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert [r for r in routes if r not in text] == []
