"""gradient-jupyter: storage providers and versioned datasets on S3-compatible stores, for Jupyter.

In a notebook: `%load_ext gradient_jupyter`, then `%gradient_storage --help`. From Python: `save`, `load`, `open`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .api import default_engine, diff, load, mount, open, save, transaction, unmount
from .version import __version__ as __version__

if TYPE_CHECKING:
    from .engine import Engine

__all__ = [
    "save",
    "load",
    "open",
    "transaction",
    "diff",
    "mount",
    "unmount",
    "panel",
    "default_engine",
    "load_ipython_extension",
]


def load_ipython_extension(ipython) -> None:
    """`%load_ext gradient_jupyter`: registers the `%gradient_storage` line and cell magic."""
    from .notebook.magics import GradientStorageMagics

    ipython.register_magics(GradientStorageMagics)


def _jupyter_server_extension_points():
    return [{"module": "gradient_jupyter.server.extension", "app": _extension_app()}]


def _extension_app():
    from .server.extension import GradientExtension

    return GradientExtension


def panel(engine: Engine | None = None):
    """The storage panel: providers and datasets as ipywidgets (what `%gradient_storage` alone shows)."""
    from .notebook.panel import panel as make_panel

    return make_panel(engine)
