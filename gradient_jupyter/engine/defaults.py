"""Every setting of gradient-jupyter with its default, as plain Python: what an engine uses when no Jupyter config
file sets any. `GradientStorage` (settings.py) makes the same settings configurable with traitlets, from these
defaults; keeping traitlets out of this module lets the console script and kernels skip importing it when there is
nothing to configure (docs/configuration.md)."""

from __future__ import annotations

import os
from pathlib import Path

GIB = 1024**3
CONFIG_FILES = ("jupyter_server_config", "jupyter_gradient_config")  # each as .json and .py


class Settings:
    """The settings at their defaults; GradientStorage (settings.py) is the configurable kind, read by the server
    and, from the same files, by kernels and the console script."""

    data_home: str = ""
    team_id: str = ""
    team_file: str = ""
    managed_quota: int = 5 * GIB
    managed_endpoint: str = ""
    managed_bucket: str = "gradient-managed"
    managed_region: str = ""
    managed_access_key: str = ""
    managed_secret_key: str = ""
    cors_origins: tuple[str, ...] | list[str] = ()
    # 96: a small file is one request, mostly waiting on the store; on SeaweedFS 96 in flight beat 32 for 2,000
    # small files both ways (benchmarks/README.md). Large files are bounded apart (S3Store.LARGE_FILES_IN_FLIGHT).
    max_concurrency: int = 96
    multipart_threshold: int = 64 * 1024**2
    # 8 MiB: on SeaweedFS, 4 files of 128 MiB saved 0.90-0.98x aws s3 sync's speed against 0.68-0.84x at 16 MiB,
    # in half the memory; loads (byte ranges of this size) were the same (benchmarks/README.md).
    part_size: int = 8 * 1024**2
    store_timeout: float = 15.0
    lookup_timeout: float = 2.0
    send_checksums: bool = True
    cache_size: int = 10 * GIB
    block_size: int = 8 * 1024**2
    block_threshold: int = 16 * 1024**2

    @property
    def home(self) -> Path:
        """The data home: env var GRADIENT_JUPYTER_HOME, else data_home, else <jupyter data dir>/gradient."""
        env = os.environ.get("GRADIENT_JUPYTER_HOME")
        if env:
            return Path(env).expanduser()
        if self.data_home:
            return Path(self.data_home).expanduser()
        from jupyter_core.paths import jupyter_data_dir

        return Path(jupyter_data_dir()) / "gradient"

    @property
    def team_path(self) -> str:
        """The team file (engine/team.py): env var GRADIENT_JUPYTER_TEAM_FILE, else team_file, else none."""
        return os.environ.get("GRADIENT_JUPYTER_TEAM_FILE") or self.team_file


def config_files() -> list[tuple[str, str]]:
    """(folder, file name) of each Jupyter config file the settings are read from, broadest folder first (so that
    specific ones win): `jupyter_server_config` and `jupyter_gradient_config`, .json then .py, where they exist."""
    from jupyter_core.paths import jupyter_config_path

    return [
        (folder, base + ext)
        for folder in reversed(jupyter_config_path())  # it lists the most specific folder first
        for base in CONFIG_FILES
        for ext in (".json", ".py")
        if os.path.isfile(os.path.join(folder, base + ext))
    ]
