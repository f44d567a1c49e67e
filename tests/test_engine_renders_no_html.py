"""The engine is plain Python that holds data and words; the front ends render it (docs/architecture.md): no engine
module imports `html` or defines IPython's rich display hooks (`_repr_html_`, `_repr_markdown_`...)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import gradient_jupyter.engine

ENGINE = Path(gradient_jupyter.engine.__file__).parent
DISPLAY_HOOK = re.compile(r"_repr_\w+_")


def html_rendering(path: Path) -> list[str]:
    """Where `path` renders HTML: its `import html` lines and display hooks, as `file:line what`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and DISPLAY_HOOK.fullmatch(node.name):
            found.append(f"{path.relative_to(ENGINE)}:{node.lineno} def {node.name}")
            continue
        else:
            continue
        found += [f"{path.relative_to(ENGINE)}:{node.lineno} import {n}" for n in names if n.split(".")[0] == "html"]
    return found


def test_the_engine_renders_no_html():
    files = sorted(ENGINE.rglob("*.py"))
    assert len(files) > 20  # the scan saw the engine, not an empty folder
    assert [where for path in files for where in html_rendering(path)] == []
