"""JupyterLab in its own process and a chromium page driven by Playwright, for the browser tests. Its fixtures,
`lab` and `page`, are registered for every test module by tests/conftest.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from .processes import free_port

CHROMIUM = "/usr/bin/chromium"


FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


ROOT = Path(__file__).resolve().parents[2]


WAIT = 120_000  # ms; a cold JupyterLab on a busy 2-core machine is slow, and this is a ceiling, not a timing


class Lab:
    """A `jupyter lab` subprocess on 127.0.0.1 with its own data home, Jupyter dirs and settings."""

    def __init__(self, base: Path):
        self.root = base / "notebooks"
        self.home = base / "gradient-home"
        self.port = free_port()
        self.token = "tok-" + os.urandom(8).hex()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = base / "lab-settings"
        self.root.mkdir()
        # Keep widget state in saved notebooks, so "no secret in the saved notebook" covers widget state too.
        for plugin, values in {
            "@jupyter-widgets/jupyterlab-manager/plugin": {"saveState": True},
            "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        }.items():
            path = settings / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "JUPYTER", "GRADIENT_"))}
        env.update(
            GRADIENT_JUPYTER_HOME=str(self.home),
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_CONFIG_FILE=str(base / "aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(base / "aws-credentials"),
            JUPYTER_CONFIG_DIR=str(base / "jupyter-config"),
            JUPYTER_DATA_DIR=str(base / "jupyter-data"),
            JUPYTER_RUNTIME_DIR=str(base / "jupyter-runtime"),
            PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        )
        self.log: list[str] = []
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--allow-root",
                "--no-browser",
                "--ip=127.0.0.1",
                f"--port={self.port}",
                "--ServerApp.port_retries=0",
                f"--ServerApp.token={self.token}",
                # window.jupyterapp lets the test wait for a connected, idle kernel instead of guessing from the page.
                "--LabApp.expose_app_in_browser=True",
                "--JupyterNotebookApp.expose_app_in_browser=True",
                f"--LabApp.user_settings_dir={settings}",
                f"--LabApp.workspaces_dir={base / 'workspaces'}",
            ],
            cwd=self.root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            self.log.append(line)
            if "is running at" in line:
                self.ready.set()
        self.ready.set()  # the server ended: let the waiter see it

    def wait_ready(self):
        assert self.ready.wait(180) and self.proc.poll() is None, "jupyter lab did not start:\n" + "".join(self.log)

    def notebook(self, name: str, *sources: str) -> Path:
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
        path = self.root / name
        nbformat.write(nb, path)
        return path

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    server = Lab(tmp_path_factory.mktemp("lab"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(lab, tmp_path):
    """A fresh chromium page. Playwright starts inside the test, after pytest-jupyter has set up its event loop."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(WAIT)
        try:
            yield page
        finally:
            page.screenshot(path=str(tmp_path / "last-seen.png"), full_page=True)  # evidence when a step failed
            (tmp_path / "jupyter-lab.log").write_text("".join(lab.log))
            browser.close()


KERNEL_READY = """() => {
    if (document.querySelector('.jp-Dialog')) return true;
    const session = window.jupyterapp?.shell?.currentWidget?.sessionContext;
    return !!session && !session.hasNoKernel && session.kernelDisplayStatus === 'idle'
        && session.session?.kernel?.connectionStatus === 'connected';
}"""


def open_and_run(page, url: str, run, until: str) -> None:
    """Open a notebook, wait for its kernel, `run(page)` and wait for the selector `until`.

    JupyterLab may ask which kernel to use (also when asked to run before its session settled): accept the proposed
    one and run again."""
    dialog = ".jp-Dialog:has-text('Select Kernel')"
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    for _ in range(3):
        page.wait_for_function(KERNEL_READY)
        if page.locator(dialog).count():
            page.click(f"{dialog} .jp-mod-accept")
            page.wait_for_selector(dialog, state="detached")
            continue
        run(page)
        page.wait_for_selector(f"{until}, {dialog}")
        if page.locator(until).count():
            return
    raise AssertionError(f"the notebook never showed {until}")


def run_first_cell(page) -> None:
    page.locator(".jp-Cell .cm-content").first.click()
    page.keyboard.press("Control+Enter")


def shoot(page, tmp_path, name: str) -> None:
    """A screenshot of the whole panel: the window is made tall enough for the notebook to show all of it."""
    size = page.viewport_size
    height = page.eval_on_selector(".gj-panel", "e => e.getBoundingClientRect().height")
    page.set_viewport_size({"width": size["width"], "height": int(height) + 400})
    shot = tmp_path / f"{name}.png"
    page.locator(".gj-panel").screenshot(path=str(shot))
    page.set_viewport_size(size)
    print(f"screenshot: {shot}")
