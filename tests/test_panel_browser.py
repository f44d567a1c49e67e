"""The panel in a real JupyterLab (and Notebook 7), driven in Debian's chromium with Playwright."""

from __future__ import annotations

import os

import boto3
import pytest

from .helpers import SECRET
from .helpers.browser import ROOT, open_and_run, run_first_cell, shoot

pytestmark = pytest.mark.browser

SHOW_PANEL = "%load_ext gradient_jupyter\n%gradient_storage"


def run_all_cells(page) -> None:
    page.click(".lm-MenuBar-itemLabel:text-is('Run')")
    page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")


def assert_rendered(page) -> None:
    page.wait_for_selector(".gj-providers:has-text('Gradient Managed')")
    page.wait_for_selector(".gj-refresh-result:not(:has-text('Reading'))", state="attached")
    body = page.inner_text("body")
    assert "Error displaying widget" not in body and "Traceback" not in body


def fits(page, css: str) -> None:
    """The element's content is visible or scrollable to, never cut off: what a narrow notebook must still show."""
    box = page.eval_on_selector(
        css,
        """e => {
        const s = e.closest('.gj-scroll') || e;
        const r = s.getBoundingClientRect(), out = s.closest('.jp-OutputArea-output, .jp-Cell').getBoundingClientRect();
        return {scrollable: s.scrollWidth <= s.clientWidth || getComputedStyle(s).overflowX === 'auto',
                inside: r.right <= out.right + 1};
    }""",
    )
    assert box == {"scrollable": True, "inside": True}, (css, box)


def no_word_broken(page, css: str) -> None:
    """Text wraps at spaces: no element of `css` breaks inside a word."""
    styles = page.eval_on_selector_all(css, "els => els.map(e => getComputedStyle(e).wordBreak)")
    assert styles and set(styles) <= {"normal"}, styles


def test_panel_in_jupyterlab_adds_a_provider_saves_a_folder_and_keeps_no_secret(lab, page, s3_bucket, tmp_path):
    endpoint, bucket = s3_bucket
    folder = tmp_path / "e2e-folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("x,y\n1,2\n")
    (folder / "sub" / "b.bin").write_bytes(os.urandom(50_000))
    path = lab.notebook("panel.ipynb", SHOW_PANEL)

    open_and_run(page, f"{lab.url}/lab/workspaces/e2e/tree/{path.name}?token={lab.token}", run_first_cell, ".gj-panel")
    assert_rendered(page)

    # Type the provider into the form, secret included, and save the notebook before pressing Add.
    for css, value in [
        ("name", "moto-e2e"),
        ("bucket", bucket),
        ("endpoint", endpoint),
        ("region", "us-east-1"),
        ("accessKey", "testing"),
        ("secret", SECRET),
    ]:
        page.fill(f".gj-add-{css} input", value)
    page.click(".gj-add-name input")  # leaving the secret field sends it to the kernel, which empties the field
    page.wait_for_selector(".gj-add-secret-hint:has-text('kernel')")
    assert page.input_value(".gj-add-secret input") == ""
    save_notebook(page, path.name)
    saved = path.read_text()
    assert "application/vnd.jupyter.widget-state+json" in saved and bucket in saved  # the form's state was saved
    assert SECRET not in saved

    page.click(".gj-add-button")
    page.wait_for_selector(".gj-form-result:has-text('Created storage provider moto-e2e')")
    page.wait_for_selector(f".gj-providers:has-text('moto-e2e'):has-text('{bucket}')")

    # Save a folder as a new version in the Datasets tab and see the version listed.
    page.click(".gj-panel .lm-TabBar-tab:has-text('Datasets')")
    page.fill(".gj-save-folder input", str(folder))
    page.fill(".gj-save-name input", "e2e-data")
    page.fill(".gj-save-message input", "first save from the browser")
    page.fill(".gj-save-tag input", "first")
    page.select_option(".gj-save-provider select", label="moto-e2e")
    page.click(".gj-save-button")
    page.wait_for_selector(".gj-save-result:has-text('Saved e2e-data:'):has-text('(tag first)')")
    page.wait_for_selector(".gj-versions:has-text('first save from the browser'):has-text('first')")
    page.wait_for_selector(".gj-datasets:has-text('e2e-data'):has-text('moto-e2e')")
    page.wait_for_selector(".gj-files option:has-text('sub/')")
    keys = [
        o["Key"]
        for o in boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        .list_objects_v2(Bucket=bucket)
        .get("Contents", [])
    ]
    assert any(k.endswith("/manifest.json") for k in keys)  # the version lives in the bucket added in the form
    assert "Error displaying widget" not in page.inner_text("body")
    shoot(page, tmp_path, "panel-jupyterlab-1400")

    save_notebook(page, path.name)
    saved = path.read_text()
    assert "moto-e2e" in saved and SECRET not in saved


def choose_file(page, name: str) -> None:
    """Click the entry of the file browser whose text starts with `name`."""
    index = page.eval_on_selector(
        ".gj-files select", "(s, name) => [...s.options].findIndex(o => o.textContent.trim().startsWith(name))", name
    )
    assert index >= 0, name
    page.select_option(".gj-files select", index=index)


def save_notebook(page, name: str) -> None:
    with page.expect_response(lambda r: r.request.method == "PUT" and f"/api/contents/{name}" in r.url) as put:
        page.click(".jp-NotebookPanel-toolbar [data-command='docmanager:save']")
    assert put.value.ok


@pytest.mark.parametrize("width", [1000, 1400])
def test_panel_fits_jupyterlab_with_the_file_browser_open(lab, page, s3_bucket, tmp_path, width):
    """The layout bugs people met: a providers table cut off at 1000 px, fixes broken inside words, backticks."""
    page.set_viewport_size({"width": width, "height": 1100})
    endpoint, bucket = s3_bucket
    path = lab.notebook(f"narrow-{width}.ipynb", SHOW_PANEL)
    open_and_run(
        page, f"{lab.url}/lab/workspaces/w{width}/tree/{path.name}?token={lab.token}", run_first_cell, ".gj-panel"
    )
    assert_rendered(page)
    if not page.locator(".jp-FileBrowser:visible").count():
        page.click(".jp-SideBar [data-id='filebrowser']")
    page.wait_for_selector(".jp-FileBrowser:visible")
    for css, value in [
        ("name", f"moto-{width}"),
        ("bucket", bucket),
        ("endpoint", endpoint),
        ("region", "us-east-1"),
        ("accessKey", "testing"),
        ("secret", SECRET),
    ]:
        page.fill(f".gj-add-{css} input", value)
    page.click(".gj-add-check-button")  # straight from the secret field: leaving it sends the secret first
    page.wait_for_selector(f".gj-form-result:has-text('Created storage provider moto-{width}')")
    page.wait_for_selector(f".gj-providers:has-text('moto-{width}'):has-text('ok')")
    fits(page, ".gj-providers table")
    page.select_option(".gj-provider select", label=f"moto-{width}")
    page.fill(".gj-origins input", "http://127.0.0.1:9")
    page.click(".gj-check-button")
    page.wait_for_selector(".gj-check-result:has-text('Checked')")
    page.wait_for_selector(".gj-report [data-check='cors']")
    no_word_broken(page, ".gj-report .gradient-fix, .gj-report td, .gj-result .widget-html-content")
    assert "`" not in page.inner_text(".gj-report")
    assert page.locator(".gj-report code").count()
    page.click(".gj-default-button")
    page.wait_for_selector(f".gj-provider-result:has-text('moto-{width} is now the team default')")
    page.wait_for_selector(".gj-default-button:disabled")
    # And back: the other tests of this JupyterLab save into Gradient Managed when no provider is chosen.
    page.select_option(".gj-provider select", label="Gradient Managed")
    page.click(".gj-default-button:enabled")
    page.wait_for_selector(".gj-provider-result:has-text('Gradient Managed is now the team default')")
    page.wait_for_selector(".gj-default-button:disabled")
    shoot(page, tmp_path, f"panel-jupyterlab-{width}")


def test_panel_in_notebook_7_at_1000_px(lab, page, tmp_path):
    page.set_viewport_size({"width": 1000, "height": 1100})
    folder = tmp_path / "nb7"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("x,y\n1,2\n")
    (folder / "sub" / "b.txt").write_text("hello\n")
    path = lab.notebook("panel7.ipynb", SHOW_PANEL)
    open_and_run(page, f"{lab.url}/notebooks/{path.name}?token={lab.token}", run_first_cell, ".gj-panel")
    assert_rendered(page)
    fits(page, ".gj-providers table")
    page.click(".gj-panel .lm-TabBar-tab:has-text('Datasets')")
    page.fill(".gj-save-folder input", str(folder))
    page.fill(".gj-save-name input", "nb7-data")
    page.fill(".gj-save-tag input", "v1")
    page.click(".gj-save-button")
    page.wait_for_selector(".gj-save-result:has-text('Saved nb7-data:'):has-text('(tag v1)')")
    page.wait_for_selector(".gj-files option:has-text('sub/')")
    choose_file(page, "sub/")
    page.wait_for_selector(".gj-files option:has-text('b.txt')")
    choose_file(page, "..")
    page.wait_for_selector(".gj-files option:has-text('a.csv')")
    choose_file(page, "a.csv")
    page.wait_for_selector(".gj-preview:has-text('1,2')")
    fits(page, ".gj-versions table")

    # Saving again with the tag in use asks before moving it; yes moves it to the new version.
    (folder / "c.txt").write_text("more\n")
    page.fill(".gj-save-tag input", "v1")
    page.click(".gj-save-button")
    page.wait_for_selector(".gj-save-result .gj-error:has-text('Move the tag and save')")
    page.wait_for_selector(".gj-confirm-save:has-text('Tag v1 names another version')")
    page.click(".gj-confirm-save-yes")
    page.wait_for_selector(".gj-save-result .gj-ok:has-text('Saved nb7-data:'):has-text('(tag v1)')")
    page.wait_for_selector(".gj-changes:has-text('c.txt'):has-text('1 added')")  # since the version before
    heading = page.inner_text(".gj-changes b")  # names a person knows, the tag of the new version in brackets
    assert heading.startswith("Changes from nb7-data:") and heading.endswith("(v1)") and " ds" not in heading
    assert not page.locator(".gj-confirm-save:visible").count()
    shoot(page, tmp_path, "panel-notebook7-1000")


def test_quickstart_runs_in_jupyterlab(lab, page, tmp_path):
    """What the README's main command opens: run all cells, as a new user would."""
    (lab.root / "quickstart.ipynb").write_bytes((ROOT / "notebooks" / "quickstart.ipynb").read_bytes())
    open_and_run(
        page,
        f"{lab.url}/lab/workspaces/quickstart/tree/quickstart.ipynb?token={lab.token}",
        run_all_cells,
        ".jp-OutputArea-output:has-text('4 files restored identical, 0 different')",
    )
    assert_rendered(page)
    assert page.locator(".jp-OutputArea-output:has-text('Saved ds')").count() == 1
    assert not page.locator(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']:has-text('Error')"
    ).count()
    page.screenshot(path=str(tmp_path / "quickstart-jupyterlab.png"), full_page=True)
