"""Provenance: the versions a run, a checkpoint or a lineage file was made with.

Read from the installed distributions' metadata (``importlib.metadata``), so nothing is imported:
saving a checkpoint needs neither the command line nor pettingzoo, and a package that is not
installed is reported as absent (``None``, ``null`` in JSON) instead of failing the save.

Part of the engine layer: it does not import the ``alife`` package's ``__init__`` either (the
public facade, whose lazy names reach the PettingZoo env and the viewer).
"""

from __future__ import annotations

import importlib.metadata
import platform

#: distributions whose versions are recorded, by their names on the package index
DISTRIBUTIONS = ("torch", "numpy", "numba", "h5py", "pluggy", "pettingzoo", "gymnasium")


def installed_version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, or ``None`` when it is not installed."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """``{"alife": ..., "python": ..., "torch": ..., ...}``: alife's own version (as
    ``alife.__version__``: ``0.0.0+src`` in a source tree that is not installed), the Python
    version and each of :data:`DISTRIBUTIONS` (``None`` for one that is not installed)."""
    out: dict[str, str | None] = {"alife": installed_version("alife") or "0.0.0+src",
                                  "python": platform.python_version()}
    for dist in DISTRIBUTIONS:
        out[dist] = installed_version(dist)
    return out
