"""A real JupyterHub on 127.0.0.1 (PyPI's jupyterhub with the Python configurable-http-proxy): DummyAuthenticator,
SimpleLocalProcessSpawner, an admin service token to create users, start their servers and issue their tokens.
`Hub.stop()` ends the hub, its proxy and every single-user server it started, even after a failure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from .processes import free_port

CONFIG = """
import json, os
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.pid_file = {proxy_pid!r}
c.JupyterHub.db_url = "sqlite:///" + {db!r}
c.JupyterHub.cookie_secret_file = {cookie!r}
c.JupyterHub.pid_file = {hub_pid!r}
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = {{"alice", "bob"}}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {homes!r} + "/{{username}}"
c.Spawner.cmd = [{python!r}, "-m", "jupyterhub.singleuser"]
c.Spawner.args = ["--allow-root"]  # this test machine runs as root; jupyter_server refuses root without it
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.environment = json.loads(os.environ["HUB_TEST_SPAWNER_ENV"])
c.JupyterHub.services = [{{"name": "test-admin", "api_token": os.environ["HUB_TEST_ADMIN_TOKEN"]}}]
c.JupyterHub.load_roles = [{{"name": "admin", "services": ["test-admin"]}}]
c.JupyterHub.cleanup_servers = True
c.JupyterHub.log_level = "DEBUG"
"""


class Hub:
    def __init__(self, folder: Path, spawner_env: dict[str, str]):
        self.folder = folder
        self.url = ""
        self.admin_token = os.urandom(16).hex()
        self.spawner_env = spawner_env
        self.log_path = folder / "hub.log"
        self.proc: subprocess.Popen | None = None
        self.server_pids: list[int] = []

    def start(self, timeout: float = 120) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        homes = self.folder / "homes"
        homes.mkdir()
        config = self.folder / "jupyterhub_config.py"
        config.write_text(
            CONFIG.format(
                port=port,
                hub_port=free_port(),
                proxy_api_port=free_port(),
                proxy_pid=str(self.folder / "proxy.pid"),
                db=str(self.folder / "hub.sqlite"),
                cookie=str(self.folder / "cookie_secret"),
                hub_pid=str(self.folder / "hub.pid"),
                homes=str(homes),
                python=sys.executable,
            )
        )
        env = {
            **os.environ,
            "HUB_TEST_ADMIN_TOKEN": self.admin_token,
            "HUB_TEST_SPAWNER_ENV": json.dumps(self.spawner_env),
        }
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(config)],
                cwd=self.folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterHub exited:\n{self.log()[-4000:]}")
            try:
                if requests.get(f"{self.url}/hub/api/", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"JupyterHub did not answer in {timeout} s:\n{self.log()[-4000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def admin(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(
            method,
            f"{self.url}/hub/api/{path}",
            headers={"Authorization": f"token {self.admin_token}"},
            timeout=30,
            **kwargs,
        )

    def add_user(self, name: str, timeout: float = 180) -> str:
        """Create `name`, start their server and wait until it is ready; returns a token of theirs."""
        r = self.admin("POST", f"users/{name}")
        assert r.status_code in (201, 409), r.text
        r = self.admin("POST", f"users/{name}/server")
        assert r.status_code in (201, 202), r.text
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.admin("GET", f"users/{name}").json().get("servers", {}).get("", {})
            pid = (server.get("state") or {}).get("pid")
            if pid and pid not in self.server_pids:
                self.server_pids.append(pid)
            if server.get("ready"):
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"{name}'s server did not start:\n{self.log()[-4000:]}")
        r = self.admin("POST", f"users/{name}/tokens", json={"note": "gradient-jupyter test"})
        assert r.status_code == 201, r.text
        return r.json()["token"]

    def stop(self) -> None:
        """The hub stops its servers and proxy on SIGTERM (cleanup_servers); whatever is left is killed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        pids = list(self.server_pids)
        proxy_pid = self.folder / "proxy.pid"
        if proxy_pid.exists() and proxy_pid.read_text().strip().isdigit():
            pids.append(int(proxy_pid.read_text()))
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)  # each was started in a session of its own
            except (ProcessLookupError, PermissionError):
                pass
