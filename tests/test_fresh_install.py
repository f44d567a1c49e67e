"""The README's set-up, as a new user runs it: a fresh `git clone`, a fresh venv, the README's first command as written
(its install, then JupyterLab on the quickstart notebook), then the quickstart notebook top to bottom, headless, with
nbclient and the kernel of that venv. Nothing of the test's own environment is visible to it (no PYTHONPATH, its own
HOME and data home); only pip's cache is shared, so the install is quick after the first."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .helpers import free_port

REPO = Path(__file__).resolve().parent.parent
RUN_NOTEBOOK = r"""
import sys
import nbformat
from nbclient import NotebookClient

nb = nbformat.read(sys.argv[1], as_version=4)
where = "import sys, gradient_jupyter; print('kernel:', sys.prefix, gradient_jupyter.__file__)"
nb.cells.append(nbformat.v4.new_code_cell(where))
NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[3])
"""


def first_setup_command() -> str:
    """The first ```bash block under the README's "## Set up", as written."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Set up") :]
    command = section.split("```bash\n", 1)[1].split("```", 1)[0].strip()
    assert "\n" not in command, command
    return command


def user_environment(tmp_path: Path, venv: Path) -> dict[str, str]:
    """A shell in the activated venv, with a HOME of its own; pip's cache is kept where it was."""
    cache = os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "JUPYTER", "GRADIENT", "VIRTUAL_ENV"))}
    home = tmp_path / "home"
    home.mkdir()
    return {
        **keep,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(venv),
        "HOME": str(home),
        "PIP_CACHE_DIR": cache,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }


def wait_for_lab(port: int, token: str, server: subprocess.Popen, timeout: float) -> None:
    """Until JupyterLab answers /lab with the token (the install before it included)."""
    deadline = time.monotonic() + timeout
    while True:
        assert server.poll() is None, f"the README's command exited {server.returncode} before JupyterLab answered"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=5) as answer:
                assert answer.status == 200
                return
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline, "JupyterLab did not answer in time"
            time.sleep(1)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_readme_setup_in_a_fresh_clone_and_venv_runs_the_quickstart(tmp_path):
    command = first_setup_command()
    assert command.startswith("python3 -m pip install") and "jupyter lab" in command, command
    clone, venv = tmp_path / "gradient-jupyter", tmp_path / "venv"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = user_environment(tmp_path, venv)
    port, token = free_port(), "fresh-install-token"
    # The command as written; only where it listens and its token come from the environment (JupyterLab reads both).
    env_lab = {**env, "JUPYTER_PORT": str(port), "JUPYTER_TOKEN": token, "GRADIENT_JUPYTER_HOME": str(tmp_path / "gh")}
    log = (tmp_path / "setup.log").open("w")
    server = subprocess.Popen(["bash", "-c", command], cwd=clone, env=env_lab, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_lab(port, token, server, timeout=600)
        providers = f"http://127.0.0.1:{port}/gradient/api/storage-providers"
        headers = {"Authorization": f"token {token}"}
        with urllib.request.urlopen(urllib.request.Request(providers, headers=headers), timeout=30) as answer:
            assert b"Gradient Managed" in answer.read()  # the extension is on, with no set-up
    except AssertionError:
        server.kill()
        raise AssertionError((tmp_path / "setup.log").read_text()[-5000:]) from None
    finally:
        if server.poll() is None:
            server.terminate()
        server.wait(timeout=30)
        log.close()
    assert "gradient_jupyter | extension was successfully loaded" in (tmp_path / "setup.log").read_text()

    python = venv / "bin" / "python"
    installed = subprocess.run(
        [python, "-m", "pip", "show", "gradient-jupyter"], env=env, capture_output=True, text=True
    )
    assert f"Editable project location: {clone}" in installed.stdout, installed.stdout  # the README's -e install
    out = tmp_path / "quickstart-run.ipynb"
    env_nb = {**env, "GRADIENT_JUPYTER_HOME": str(tmp_path / "gh-notebook")}
    folder = clone / "notebooks"
    run = subprocess.run(
        [python, "-c", RUN_NOTEBOOK, str(folder / "quickstart.ipynb"), str(folder), str(out)],
        cwd=folder,
        env=env_nb,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-5000:]

    import nbformat

    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"], outputs
    text = "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    assert re.search(r"Saved ds[a-z0-9]{13}:[a-z0-9]{7} \(dataset quickstart, tag first\)", text), text
    assert "4 files restored identical, 0 different" in text, text
    kernel = re.search(r"kernel: (\S+) (\S+)", text)
    assert kernel and Path(kernel.group(1)) == venv, text  # the venv's own kernel
    assert Path(kernel.group(2)).is_relative_to(clone), text  # importing the clone's code (the editable install)
    shutil.rmtree(clone / "notebooks" / "quickstart-data", ignore_errors=True)
