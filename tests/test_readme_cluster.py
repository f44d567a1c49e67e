"""The README's Cluster lines, run as written: a local Dask cluster writes a version in a transaction and reads it."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

import pytest

from .helpers.dependencies import pyproject, required_imports, third_party, undeclared
from .helpers.readme import block

pytestmark = pytest.mark.slow


def test_the_cluster_lines_run_as_written(tmp_path):
    python = block("## Cluster", "python")
    checks = "\nassert totals.to_dict() == {1: 7, 2: 5}, totals"
    checks += "\nassert gradient_jupyter.default_engine().datasets.resolve('events:day-2')[1].file_count == 2"
    r = subprocess.run(
        [sys.executable, "-c", python + checks],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]


def test_the_cluster_lines_name_the_extras_that_install_what_they_import():
    install = block("## Cluster", "bash").strip()
    extras = re.fullmatch(r'python3 -m pip install -e "\.\[([a-z,]+)\]"', install)
    assert extras, install
    imports = third_party(required_imports(ast.parse(block("## Cluster", "python"))))
    assert {"dask", "distributed", "pandas"} <= imports
    assert not undeclared(pyproject(tuple(extras.group(1).split(","))), {m: ["README"] for m in imports})
