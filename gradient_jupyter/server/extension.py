"""The Jupyter server extension: routes under <base_url>gradient/api/, configured by `c.GradientStorage.*`."""
from __future__ import annotations

from jupyter_server.extension.application import ExtensionApp

from ..engine import Engine, GradientStorage


class GradientExtension(ExtensionApp):
    name = "gradient_jupyter"
    classes = [GradientStorage]

    def initialize_settings(self):
        settings = GradientStorage(parent=self.serverapp, config=self.serverapp.config)
        self.engine = Engine(settings)
        self.settings["gradient_engine"] = self.engine
        self.log.info("gradient-jupyter: data home %s, team %s", self.engine.home, self.engine.team_id)

    def initialize_handlers(self):
        from .compat import compat_handlers
        from .handlers import default_handlers

        self.handlers.extend(default_handlers)
        self.handlers.extend(compat_handlers)
