"""alife: a plugin-based artificial-life ecosystem simulator.

Start with :class:`Simulation` (a persistent world) or :func:`make_env` (the same world as a
PettingZoo ``ParallelEnv``). Plugins implement the hooks in :mod:`alife.plugins.hookspecs` with
``@alife.hookimpl``.
"""

from importlib.metadata import PackageNotFoundError, version

from alife.config import ConfigError
from alife.plugins import hookimpl

try:
    __version__ = version("alife")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+src"

__all__ = ["ConfigError", "Simulation", "hookimpl", "make_env", "__version__"]


def __getattr__(name: str):
    # imported lazily so that `import alife` stays light for plugin files
    if name == "Simulation":
        from alife.simulation import Simulation
        return Simulation
    if name == "make_env":
        from alife.env import make_env
        return make_env
    if name in ("lineage",):
        import importlib
        return importlib.import_module(f"alife.{name}")
    raise AttributeError(f"module 'alife' has no attribute {name!r}")
