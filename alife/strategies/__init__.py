"""Built-in strategies. Each module is a plugin, registered through the same ``hookimpl`` as a
third-party one, and declares the role it plays in ``ALIFE_STRATEGIES``."""
