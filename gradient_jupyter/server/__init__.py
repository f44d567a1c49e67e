"""The Jupyter server extension: the REST API (openapi.json) and Gradient's compat API."""
