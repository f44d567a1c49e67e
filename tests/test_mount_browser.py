"""A mount in JupyterLab's file browser, as Gradient's `/datasets/<name>` was: chromium driven by Playwright."""

from __future__ import annotations

import os

import pytest

from gradient_jupyter.engine import Engine, GradientStorage, transfer

from .helpers.browser import open_and_run, run_first_cell

pytestmark = pytest.mark.browser


def test_a_mount_shows_in_the_file_browser(lab, page, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIENT_JUPYTER_HOME", str(lab.home))
    src = tmp_path / "mnist"
    (src / "images").mkdir(parents=True)
    (src / "train.csv").write_text("label,pixels\n7,0 0 0\n")
    (src / "images" / "seven.png").write_bytes(os.urandom(2048))
    transfer.save(Engine(GradientStorage()), "mnist", src, tag="v1")
    path = lab.notebook("mount.ipynb", "%load_ext gradient_jupyter\n%gradient_storage mount mnist:v1")

    open_and_run(
        page,
        f"{lab.url}/lab/workspaces/mount/tree/{path.name}?token={lab.token}",
        run_first_cell,
        ".jp-OutputArea-output:has-text('Mounted mnist')",
    )
    assert (lab.root / "datasets" / "mnist" / "train.csv").read_text().startswith("label")

    # Walk there in the file browser beside the notebook, as a user would (it lists new folders on its own).
    listing = ".jp-FileBrowser .jp-DirListing-content"
    for folder in ("datasets", "mnist"):
        page.locator(f"{listing} .jp-DirListing-item:has-text('{folder}')").first.dblclick()
        page.wait_for_selector(f".jp-FileBrowser .jp-BreadCrumbs:has-text('{folder}')")
    page.wait_for_selector(f"{listing} .jp-DirListing-item:has-text('train.csv')")
    page.wait_for_selector(f"{listing} .jp-DirListing-item:has-text('images')")
    assert "datasets/mnist" in page.locator(".jp-FileBrowser .jp-BreadCrumbs").inner_text().replace(" ", "")
    assert page.locator(f"{listing} .jp-DirListing-item:has-text('.gradient')").count() == 0  # hidden record
    shot = tmp_path / "mount-file-browser.png"
    page.screenshot(path=str(shot))
    print(f"screenshot: {shot}")
    if os.environ.get("GRADIENT_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["GRADIENT_SCREENSHOTS"], "mount-file-browser.png"))
