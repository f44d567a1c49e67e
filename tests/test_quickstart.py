"""The quickstart notebook, run top to bottom in a real kernel, on Gradient Managed with no configuration."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from gradient_jupyter.engine import Engine, GradientStorage

QUICKSTART = Path(__file__).parent.parent / "notebooks" / "quickstart.ipynb"
WIDGET = "application/vnd.jupyter.widget-view+json"


def run_notebook(folder: Path) -> list:
    nb = nbformat.read(QUICKSTART, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    return code


def text(cell) -> str:
    return "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in cell.outputs)


@pytest.mark.slow
def test_quickstart_saves_lists_and_loads_back_on_gradient_managed(tmp_path):
    assert all(not c.get("outputs") for c in nbformat.read(QUICKSTART, as_version=4).cells)  # shipped clean
    code = run_notebook(tmp_path)
    by_source = {c.source.splitlines()[0]: c for c in code}
    assert any(WIDGET in o.get("data", {}) for o in by_source["%gradient_storage"].outputs)  # the panel
    saved = text(by_source['saved = %gradient_storage save quickstart quickstart-data -m "first version" --tag first'])
    ref = re.search(r"Saved (ds[a-z0-9]{13}:[a-z0-9]{7}) \(dataset quickstart, tag first\)", saved).group(1)
    assert "4 files, 58.8 KiB sent" in saved
    listed = text(by_source["%gradient_storage datasets versions list --id quickstart"])
    assert ref in listed and "first version" in listed
    assert "4 files restored identical, 0 different" in text(code[-1])

    engine = Engine(GradientStorage())
    ds = engine.datasets.get("quickstart")
    managed = engine.registry.managed()
    assert ds.storage_provider_id == managed.id and managed.embedded
    assert [p.name for p in engine.registry.list()] == ["Gradient Managed"]  # nothing to configure

    again = run_notebook(tmp_path)  # a second run is safe: nothing is sent and no second version is made
    assert f"Unchanged: {ref} (dataset quickstart, tag first)" in text(again[3]) and "0 B sent" in text(again[3])
    assert len(engine.datasets.list_versions(ds)) == 1
