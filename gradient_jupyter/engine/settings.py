"""Configuration: one traitlets Configurable read by the server and, from the same files, by kernels and the CLI.
Its defaults are defaults.py's `Settings`, which an engine uses as they are when no config file exists."""

from __future__ import annotations

from traitlets import Bool, Float, Int, List, Unicode, validate
from traitlets.config import Config, Configurable

from .defaults import Settings, config_files
from .errors import BadInput
from .ids import check_endpoint, check_team_id

D = Settings  # the defaults


class GradientStorage(Settings, Configurable):
    """Settings of gradient-jupyter. Set them as `c.GradientStorage.<name> = ...` in `jupyter_server_config.py`."""

    data_home = Unicode(
        D.data_home,
        help="Folder for the provider registry and the embedded Gradient Managed store. "
        "Default: $GRADIENT_JUPYTER_HOME, else <jupyter data dir>/gradient.",
    ).tag(config=True)
    team_id = Unicode(
        D.team_id, help="Team ID ('te' + 7 lowercase alphanumerics). Default: made once per installation and kept."
    ).tag(config=True)
    team_file = Unicode(
        D.team_file,
        help="An administrator's team file (YAML or JSON: docs/team-file.schema.json): the team id, team providers "
        "(read-only to users), the team default and Gradient Managed. The env var GRADIENT_JUPYTER_TEAM_FILE wins.",
    ).tag(config=True)
    managed_quota = Int(D.managed_quota, help="Quota of the Gradient Managed provider, in bytes.").tag(config=True)
    managed_endpoint = Unicode(
        D.managed_endpoint,
        help="Point Gradient Managed at a real S3 endpoint instead of the embedded store (empty: embedded).",
    ).tag(config=True)
    managed_bucket = Unicode(D.managed_bucket, help="Bucket of Gradient Managed when managed_endpoint is set.").tag(
        config=True
    )
    managed_region = Unicode(D.managed_region, help="Region of the managed S3 endpoint.").tag(config=True)
    managed_access_key = Unicode(
        D.managed_access_key, help="Access key of the managed S3 endpoint (empty: boto3 chain)."
    ).tag(config=True)
    managed_secret_key = Unicode(D.managed_secret_key, help="Secret key of the managed S3 endpoint.").tag(config=True)
    cors_origins = List(
        Unicode(), default_value=list(D.cors_origins), help="Extra browser origins the bucket doctor checks CORS for."
    ).tag(config=True)
    max_concurrency = Int(D.max_concurrency, help="Parallel transfers per save or load.").tag(config=True)
    multipart_threshold = Int(D.multipart_threshold, help="Files at least this large are sent in parts.").tag(
        config=True
    )
    part_size = Int(D.part_size, help="Part size for multipart uploads and parallel ranged downloads (>= 5 MiB).").tag(
        config=True
    )
    store_timeout = Float(D.store_timeout, help="Seconds to wait on one store request before it counts as failed.").tag(
        config=True
    )
    lookup_timeout = Float(
        D.lookup_timeout,
        help="Seconds each try of a lookup across providers (finding or listing datasets, usage) waits on one "
        "provider's store before it counts as failed (no try starts after twice this); a provider that fails is "
        "skipped with a warning naming it.",
    ).tag(config=True)
    send_checksums = Bool(
        D.send_checksums, help="Send SHA-256 checksums with uploads where the store accepts them."
    ).tag(config=True)
    cache_size = Int(
        D.cache_size,
        help="Size limit of the local content cache (verified file bytes read in place, mounted or loaded); "
        "least recently used entries are evicted beyond it.",
    ).tag(config=True)
    block_size = Int(
        D.block_size,
        help="Block size of the block SHA-256s a save records for large files, so a ranged read "
        "(e.g. one Parquet row group) fetches and verifies only the blocks it needs.",
    ).tag(config=True)
    block_threshold = Int(D.block_threshold, help="Files at least this large get block SHA-256s at save.").tag(
        config=True
    )

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

    @classmethod
    def from_jupyter_config(cls) -> GradientStorage:
        """Settings as a kernel or the CLI sees them: the `GradientStorage` section of the Jupyter config files."""
        return cls(config=load_jupyter_config())


def load_jupyter_config() -> Config:
    """Merge `jupyter_server_config` and `jupyter_gradient_config` (.json, .py) from every Jupyter config dir."""
    from traitlets.config.loader import ConfigFileNotFound, JSONFileConfigLoader, PyFileConfigLoader

    config = Config()
    for folder, name in config_files():  # broadest first, so specific ones win
        loader_cls = JSONFileConfigLoader if name.endswith(".json") else PyFileConfigLoader
        try:
            config.merge(loader_cls(name, path=folder).load_config())
        except ConfigFileNotFound:
            pass
        except Exception as exc:  # a broken server config must not break the kernel's front ends
            import logging

            logging.getLogger("gradient_jupyter").warning("Ignoring config %s: %s", name, type(exc).__name__)
    section = Config()
    if "GradientStorage" in config:
        section.GradientStorage = config.GradientStorage
    return section
