"""The Jupyter server door: the REST API of SPEC section 5."""
