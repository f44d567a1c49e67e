"""gradient-jupyter: storage providers and versioned datasets on S3-compatible stores, for Jupyter."""
from __future__ import annotations

__version__ = "0.1.0"


def _jupyter_server_extension_points():
    return [{"module": "gradient_jupyter.server.extension", "app": _extension_app()}]


def _extension_app():
    from .server.extension import GradientExtension

    return GradientExtension
