"""Plugin machinery: hook specifications, the per-simulation manager, loaders."""

import pluggy

#: decorate a plugin's hook functions with ``@alife.hookimpl``
hookimpl = pluggy.HookimplMarker("alife")

__all__ = ["hookimpl"]
