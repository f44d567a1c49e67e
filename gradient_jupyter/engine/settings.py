"""Configuration: one traitlets Configurable read by the server and, from the same files, by kernels and the CLI."""

from __future__ import annotations

import os
from pathlib import Path

from traitlets import Bool, Float, Int, List, Unicode, validate
from traitlets.config import Config, Configurable

from .errors import BadInput
from .ids import check_endpoint, check_team_id

GIB = 1024**3


class GradientStorage(Configurable):
    """Settings of gradient-jupyter. Set them as `c.GradientStorage.<name> = ...` in `jupyter_server_config.py`."""

    data_home = Unicode(
        "",
        help="Folder for the provider registry and the embedded Gradient Managed store. "
        "Default: $GRADIENT_JUPYTER_HOME, else <jupyter data dir>/gradient.",
    ).tag(config=True)
    team_id = Unicode(
        "", help="Team ID ('te' + 7 lowercase alphanumerics). Default: made once per installation and kept."
    ).tag(config=True)
    managed_quota = Int(5 * GIB, help="Quota of the Gradient Managed provider, in bytes.").tag(config=True)
    managed_endpoint = Unicode(
        "", help="Point Gradient Managed at a real S3 endpoint instead of the embedded store (empty: embedded)."
    ).tag(config=True)
    managed_bucket = Unicode("gradient-managed", help="Bucket of Gradient Managed when managed_endpoint is set.").tag(
        config=True
    )
    managed_region = Unicode("", help="Region of the managed S3 endpoint.").tag(config=True)
    managed_access_key = Unicode("", help="Access key of the managed S3 endpoint (empty: boto3 chain).").tag(
        config=True
    )
    managed_secret_key = Unicode("", help="Secret key of the managed S3 endpoint.").tag(config=True)
    cors_origins = List(
        Unicode(), default_value=[], help="Extra browser origins the bucket doctor checks CORS for."
    ).tag(config=True)
    # 96: a small file is one request, mostly waiting on the store; on SeaweedFS 96 in flight beat 32 for 2,000 small
    # files both ways (benchmarks/README.md). Large files are bounded apart (S3Store.LARGE_FILES_IN_FLIGHT).
    max_concurrency = Int(96, help="Parallel transfers per save or load.").tag(config=True)
    multipart_threshold = Int(64 * 1024**2, help="Files at least this large are sent in parts.").tag(config=True)
    # 8 MiB: on SeaweedFS, 4 files of 128 MiB saved 0.90-0.98x aws s3 sync's speed against 0.68-0.84x at 16 MiB,
    # in half the memory; loads (byte ranges of this size) were the same (benchmarks/README.md).
    part_size = Int(8 * 1024**2, help="Part size for multipart uploads and parallel ranged downloads (>= 5 MiB).").tag(
        config=True
    )
    store_timeout = Float(15.0, help="Seconds to wait on one store request before it counts as failed.").tag(
        config=True
    )
    lookup_timeout = Float(
        2.0,
        help="Seconds each try of a lookup across providers (finding or listing datasets, usage) waits on one "
        "provider's store before it counts as failed (no try starts after twice this); a provider that fails is "
        "skipped with a warning naming it.",
    ).tag(config=True)
    send_checksums = Bool(True, help="Send SHA-256 checksums with uploads where the store accepts them.").tag(
        config=True
    )
    cache_size = Int(
        10 * GIB,
        help="Size limit of the local content cache (verified file bytes read in place, mounted or loaded); "
        "least recently used entries are evicted beyond it.",
    ).tag(config=True)
    block_size = Int(
        8 * 1024**2,
        help="Block size of the block SHA-256s a save records for large files, so a ranged read "
        "(e.g. one Parquet row group) fetches and verifies only the blocks it needs.",
    ).tag(config=True)
    block_threshold = Int(16 * 1024**2, help="Files at least this large get block SHA-256s at save.").tag(config=True)

    @validate("team_id")
    def _valid_team(self, proposal):
        return check_team_id(proposal["value"]) if proposal["value"] else ""

    @validate("managed_endpoint")
    def _valid_endpoint(self, proposal):
        return check_endpoint(proposal["value"]) if proposal["value"] else ""

    @validate("part_size")
    def _valid_part(self, proposal):
        if proposal["value"] < 5 * 1024**2:
            raise BadInput("part_size must be at least 5 MiB (the S3 minimum).")
        return proposal["value"]

    @validate("block_size")
    def _valid_block(self, proposal):
        if proposal["value"] < 4096:
            raise BadInput("block_size must be at least 4096 bytes.")
        return proposal["value"]

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

    @classmethod
    def from_jupyter_config(cls) -> GradientStorage:
        """Settings as a kernel or the CLI sees them: the `GradientStorage` section of the Jupyter config files."""
        return cls(config=load_jupyter_config())


def load_jupyter_config() -> Config:
    """Merge `jupyter_server_config` and `jupyter_gradient_config` (.json, .py) from every Jupyter config dir."""
    from jupyter_core.paths import jupyter_config_path
    from traitlets.config.loader import ConfigFileNotFound, JSONFileConfigLoader, PyFileConfigLoader

    config = Config()
    # jupyter_config_path() lists the most specific folder first; load the broadest first so specific ones win.
    for folder in reversed(jupyter_config_path()):
        for base in ("jupyter_server_config", "jupyter_gradient_config"):
            for loader_cls, ext in ((JSONFileConfigLoader, ".json"), (PyFileConfigLoader, ".py")):
                if not os.path.isfile(os.path.join(folder, base + ext)):
                    continue
                try:
                    config.merge(loader_cls(base + ext, path=folder).load_config())
                except ConfigFileNotFound:
                    pass
                except Exception as exc:  # a broken server config must not break the kernel's front ends
                    import logging

                    logging.getLogger("gradient_jupyter").warning(
                        "Ignoring config %s%s: %s", base, ext, type(exc).__name__
                    )
    section = Config()
    if "GradientStorage" in config:
        section.GradientStorage = config.GradientStorage
    return section
