"""The README's reading-in-place lines (Python, then the shell), run as written on the README's ./data."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

from .helpers.dependencies import pyproject, required_imports, third_party, undeclared
from .helpers.readme import block, console, run_steps, the_data


def test_the_reading_in_place_lines_run_as_written(tmp_path):
    the_data(tmp_path)
    run_steps([("gradient-jupyter save mnist ./data --tag v1", [])], tmp_path, {})
    python = block("## Reading in place", "python")
    checks = (
        "\nassert list(df.columns) == ['id', 'label'] and head == b'\\x89PNG' and rows == [(1,)]"
        "\nassert fs.ls('gradient://mnist/', detail=False) == ['mnist/images', 'mnist/labels.csv']"
        "\nassert labels.shape == (1, 2) and table.num_rows == 1"
    )
    r = subprocess.run(
        [sys.executable, "-c", python + checks],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "datasets" / "mnist" / "labels.csv").read_bytes() == b"id,label\n1,cat\n"
    run_steps(console("## Reading in place"), tmp_path, {})
    assert not (tmp_path / "mnist-v1").exists()


def test_the_reading_in_place_lines_name_the_extra_that_installs_what_they_import():
    """Before its Python block, the section's pip line names extras that, with the runtime dependencies, declare every
    library the block imports (pandas, polars, pyarrow and DuckDB are not in `.[lab]`)."""
    install = block("## Reading in place", "bash").strip()
    extras = re.fullmatch(r'python3 -m pip install -e "\.\[([a-z,]+)\]"', install)
    assert extras, install
    imports = third_party(required_imports(ast.parse(block("## Reading in place", "python"))))
    assert {"pandas", "polars", "duckdb", "pyarrow", "fsspec"} <= imports
    problems = undeclared(pyproject(tuple(extras.group(1).split(","))), {m: ["README"] for m in imports})
    assert not problems, problems
    assert undeclared(pyproject(("lab",)), {m: ["README"] for m in imports})  # .[lab] alone would not do
