"""The notebook doors: the `%gradient_storage` magic and the panel."""
