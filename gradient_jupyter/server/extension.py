"""The Jupyter server extension: routes under <base_url>gradient/api/, configured by `c.GradientStorage.*`."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from jupyter_server.extension.application import ExtensionApp
from traitlets import Int

from ..engine import Engine, GradientStorage
from .base import TransferPools


class GradientExtension(ExtensionApp):
    name = "gradient_jupyter"
    classes = [GradientStorage]

    api_threads = Int(16, help="Threads that run the REST API's store and registry calls off the event loop.").tag(
        config=True
    )
    transfer_threads = Int(
        8,
        help="Threads per storage provider for the bytes of REST and compat downloads and uploads, apart from the "
        "API's threads: a bucket that stalls holds at most these, and never delays another provider's requests.",
    ).tag(config=True)

    def initialize_settings(self):
        assert self.serverapp is not None  # the server sets it before it initializes its extensions
        settings = GradientStorage(parent=self.serverapp, config=self.serverapp.config)
        self.engine = Engine(settings)
        # a team file that cannot be used: one error in the server's own log (and a warning in every listing)
        self.engine.registry.team.on_problem = self.log.error
        # A pool of our own, so slow stores never starve the server's default executor (contents, kernels).
        self.executor = ThreadPoolExecutor(max_workers=self.api_threads, thread_name_prefix="gradient-api")
        self.settings["gradient_engine"] = self.engine
        self.settings["gradient_executor"] = self.executor
        # Registry reads (the provider list) never wait behind store calls stuck on a bucket that does not answer.
        self.local_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gradient-local")
        self.settings["gradient_local_executor"] = self.local_executor
        # The bytes of downloads and uploads: a pool per provider, so a stalled bucket starves no one else.
        self.transfer_pools = TransferPools(self.transfer_threads)
        self.settings["gradient_transfer_pools"] = self.transfer_pools
        self.log.info("gradient-jupyter: data home %s, team %s", self.engine.home, self.engine.team_id)
        # Gradient's .gradient/settings.yaml: its datasets are mounted in the background, never delaying the start.
        from ..engine.content.automount import mount_integrations

        self.integrations = self.executor.submit(mount_integrations, self.engine, self.serverapp.root_dir, self.log)

    def initialize_handlers(self):
        from .compat import compat_handlers
        from .handlers import default_handlers

        self.handlers.extend(default_handlers)
        self.handlers.extend(compat_handlers)

    async def stop_extension(self):
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.local_executor.shutdown(wait=False, cancel_futures=True)
        self.transfer_pools.shutdown()
