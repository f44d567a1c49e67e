"""A real `jupyter server` in its own process, on 127.0.0.1 with a token, and the environment it runs in."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from .processes import free_port


def jupyter_env(tmp_path) -> dict:
    """Dummy AWS credentials, a private data home, and Jupyter's own folders moved out of the way."""
    env = os.environ.copy()
    for name in ("HOME", "JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "GRADIENT_JUPYTER_HOME"):
        folder = tmp_path / name.lower()
        folder.mkdir(exist_ok=True)
        env[name] = str(folder)
    for name in ("JUPYTER_CONFIG_PATH", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    return env


class Server:
    """A real `jupyter server` subprocess on 127.0.0.1 with a token."""

    def __init__(self, tmp_path, *extra: str):
        self.env = jupyter_env(tmp_path)
        self.port, self.token = free_port(), "t0k3n-" + os.urandom(6).hex()
        self.url = f"http://127.0.0.1:{self.port}/gradient/api/"
        self.log = []
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                "--allow-root",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0",
                "--ServerApp.open_browser=False",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={tmp_path}",
                *extra,
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for line in self.proc.stderr:  # wait for the server to say it is up...
            self.log.append(line)
            if "is running at" in line:
                break
        else:
            raise AssertionError("jupyter server did not start:\n" + "".join(self.log))
        threading.Thread(target=lambda: self.log.extend(self.proc.stderr), daemon=True).start()
        for _ in range(600):  # ...then for its socket, which it binds just after saying so
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            assert self.proc.poll() is None, "".join(self.log)
            time.sleep(0.05)
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {self.token}"

    def __call__(self, method, path, **kwargs):
        return self.http.request(method, self.url + path, timeout=120, **kwargs)

    def peak_rss(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)
