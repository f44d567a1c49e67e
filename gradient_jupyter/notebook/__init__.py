"""The notebook front ends: the `%gradient_storage` magic and the panel."""
