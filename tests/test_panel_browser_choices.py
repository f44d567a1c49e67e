"""The panel's third round in a real JupyterLab, driven in chromium: results that go with their selection, comparing
any two versions, mounts listed and unmounted, and Add and check as the provider form's main action."""

from __future__ import annotations

import pytest

from .helpers import SECRET
from .helpers.browser import open_and_run, run_first_cell, shoot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DEAD = "http://127.0.0.1:1"
SETUP = """\
import pathlib
import gradient_jupyter as g
src = pathlib.Path("src-{w}")
(src / "sub").mkdir(parents=True, exist_ok=True)
(src / "a.csv").write_text("x,y\\n1,2\\n")
(src / "sub" / "b.txt").write_text("b\\n")
g.save("flowers{w}", src, tag="v1", message="first", progress=False)
(src / "two.txt").write_text("two\\n")
g.save("flowers{w}", src, message="two", progress=False)
(src / "three.txt").write_text("three\\n")
g.save("flowers{w}", src, message="three", progress=False)
%load_ext gradient_jupyter
%gradient_storage"""


def text_of(page, css: str) -> str:
    return page.inner_text(css).replace("\xa0", " ").strip()


def wait_empty(page, css: str) -> None:
    page.wait_for_function("css => document.querySelector(css).innerText.trim() === ''", arg=css)


def choose(page, css: str, starts: str) -> None:
    """Choose the option of the dropdown `css` whose text starts with `starts`."""
    index = page.eval_on_selector(
        f"{css} select", "(s, t) => [...s.options].findIndex(o => o.textContent.trim().startsWith(t))", starts
    )
    assert index >= 0, (css, starts)
    page.select_option(f"{css} select", index=index)


@pytest.mark.parametrize("width", [1000, 1400])
def test_results_compare_mounts_and_add_and_check_in_jupyterlab(lab, page, s3_bucket, tmp_path, width):
    endpoint, bucket = s3_bucket
    page.set_viewport_size({"width": width, "height": 1100})
    path = lab.notebook(f"choices-{width}.ipynb", SETUP.format(w=width))
    url = f"{lab.url}/lab/workspaces/c{width}/tree/{path.name}?token={lab.token}"
    open_and_run(page, url, run_first_cell, ".gj-panel")
    page.wait_for_selector(".gj-providers:has-text('Gradient Managed')")

    # -- 6: Add and check is the main button; a wrong endpoint reads "could not connect to" it ---------------------
    assert "mod-primary" in page.get_attribute(".gj-add-check-button", "class")
    assert "mod-primary" not in page.get_attribute(".gj-add-button", "class")
    for css, value in [
        ("name", f"dead-{width}"),
        ("bucket", bucket),
        ("endpoint", DEAD),
        ("region", "us-east-1"),
        ("accessKey", "testing"),
        ("secret", SECRET),
    ]:
        page.fill(f".gj-add-{css} input", value)
    page.click(".gj-add-check-button")
    page.wait_for_selector(f".gj-form-result:has-text('could not connect to {DEAD}')")
    page.wait_for_selector(".gj-form-report:has-text('correct Endpoint in the form')")
    assert "credentials" not in text_of(page, ".gj-form-result")
    shoot(page, tmp_path, f"providers-add-and-check-{width}")

    # -- 3: compare with the version before, then with any other --------------------------------------------------
    page.click(".gj-panel .lm-TabBar-tab:has-text('Datasets')")
    choose(page, ".gj-dataset", f"flowers{width}")
    page.wait_for_selector(".gj-versions:has-text('three')")
    page.wait_for_selector(".gj-changes:has-text('three.txt')")
    chosen = page.eval_on_selector(".gj-compare select", "s => s.selectedOptions[0].textContent")
    assert chosen.replace("\xa0", " ").startswith("the version before: flowers")
    assert "two.txt" not in text_of(page, ".gj-changes")
    # the options: the version before, then every other version, newest first
    first = page.eval_on_selector(".gj-compare select", "s => s.options[s.options.length - 1].value")
    page.select_option(".gj-compare select", value=first)
    page.wait_for_selector(".gj-changes:has-text('two.txt'):has-text('three.txt')")
    assert "(v1)" in text_of(page, ".gj-changes b")
    shoot(page, tmp_path, f"datasets-compare-{width}")

    # -- 1: a result goes when another version is shown -------------------------------------------------------------
    page.select_option(".gj-version select", value=first)
    page.wait_for_selector(".gj-compare select")
    page.fill(".gj-load-dest input", f"work-{width}")
    page.click(".gj-load-button")
    page.wait_for_selector(f".gj-load-result:has-text('Loaded flowers{width}:'):has-text('(tag v1)')")
    (lab.root / f"work-{width}" / "a.csv").write_text("mine\n")
    page.click(".gj-load-button")  # local changes: the refusal, and under it the question it speaks of
    page.wait_for_selector(".gj-confirm-load:has-text('Overwrite them?')")
    assert "below" in text_of(page, ".gj-load-result")
    below = page.eval_on_selector(".gj-confirm-load", "e => e.getBoundingClientRect().top")
    assert below > page.eval_on_selector(".gj-load-result", "e => e.getBoundingClientRect().bottom") - 1
    assert not page.locator(".gj-load-progress:visible").count()  # no red "Checking" bar
    shoot(page, tmp_path, f"datasets-load-refused-{width}")
    page.click(".gj-confirm-load-yes")
    page.wait_for_selector(f".gj-load-result:has-text('Loaded flowers{width}:')")
    page.click(".gj-mount-button")
    page.wait_for_selector(f".gj-mount-result:has-text('Mounted flowers{width}')")
    page.wait_for_selector(f".gj-mounts option:has-text('datasets/flowers{width}')", state="attached")
    shoot(page, tmp_path, f"datasets-version-results-{width}")
    latest = page.eval_on_selector(".gj-version select", "s => s.options[0].value")
    page.select_option(".gj-version select", value=latest)
    wait_empty(page, ".gj-load-result")
    wait_empty(page, ".gj-mount-result")

    # -- 4: the dataset's mounts with their folders; unmount --------------------------------------------------------
    mounted = text_of(page, ".gj-mounts select")
    assert mounted.startswith(f"flowers{width}:") and "(v1)" in mounted and f"datasets/flowers{width}" in mounted
    page.click(".gj-unmount-button")
    page.wait_for_selector(f".gj-unmount-result:has-text('Unmounted'):has-text('flowers{width}')")
    page.wait_for_selector(".gj-mounts option:has-text('not mounted')", state="attached")
    assert not (lab.root / "datasets" / f"flowers{width}").exists()
    assert "Error displaying widget" not in page.inner_text("body")
    shoot(page, tmp_path, f"datasets-unmounted-{width}")
