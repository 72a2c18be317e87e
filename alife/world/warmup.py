"""Compile the CPU step's numba kernels before a run's clock starts.

The kernels (``alife/world/kernels.py``, ``alife/world/brain_cpu.py``,
``alife/strategies/kernels.py``) are compiled on their first call and cached on disk
(``cache=True``, in ``__pycache__``), so only the first run on a machine (or the first after a
kernel file changed) pays for it: about 10 s, which inside the run made the progress bar's ETA
hours and the summary's steps/s a fraction of the real rate. :func:`warm_kernels` runs a tiny
world a few steps instead, before the bar starts: it compiles every kernel, or, with a warm
cache, loads them (which the run's first step would do anyway). ``scripts/setup.sh`` calls it
once at install, so even the first run finds the cache warm.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from typing import Any

#: the modules whose numba kernels the CPU step calls
KERNEL_MODULES = ("alife.world.kernels", "alife.world.brain_cpu", "alife.strategies.kernels")
#: a tiny meadow that, in ``WARM_STEPS`` steps, calls every kernel (births, fights, every death
#: cause, placement; ``tests/world/test_warmup.py`` checks that no kernel is left out)
WARM_WORLD = {"world.width": 12, "world.height": 12, "world.initial_agents": 48, "world.capacity": 256,
              "world.initial_species": 2, "agent.max_age": 40, "agent.min_reproduce_age": 0,
              "agent.reproduce_energy": 1.3,
              "agent.child_energy": 0.5}
WARM_STEPS = 30
COMPILE_MESSAGE = "compiling kernels (first run only)..."


def dispatchers() -> list[Any]:
    """The numba dispatchers of :data:`KERNEL_MODULES` (empty without numba)."""
    try:
        from numba.core.dispatcher import Dispatcher
    except ImportError:
        return []
    out = []
    for name in KERNEL_MODULES:
        mod = importlib.import_module(name)
        out.extend(v for v in vars(mod).values() if isinstance(v, Dispatcher))
    return out


def cache_is_cold() -> bool:
    """Whether some kernel has nothing in numba's on-disk cache for its current source (a fresh
    machine, or a kernel file changed since), so that its first call compiles. Reads numba's
    cache index (``FunctionCache``); ``False`` when that cannot be read."""
    for d in dispatchers():
        if d.signatures:  # already compiled or loaded in this process
            continue
        try:
            if not d._cache._cache_file._load_index():
                return True
        except (AttributeError, OSError):  # not a caching dispatcher, or numba's layout changed
            return False
    return False


def warm_kernels(announce: Callable[[str], None] | None = None) -> float:
    """Run :data:`WARM_WORLD` for :data:`WARM_STEPS` steps on the CPU so that every kernel is
    compiled (or loaded from the cache); ``announce`` gets :data:`COMPILE_MESSAGE` first when
    the cache is cold. Returns the seconds it took (0 without numba)."""
    from alife.world.kernels import HAVE_NUMBA

    if not HAVE_NUMBA:
        return 0.0
    if announce is not None and cache_is_cold():
        announce(COMPILE_MESSAGE)
    from alife.simulation import Simulation

    t0 = time.perf_counter()
    with Simulation(None, seed=0, device="cpu", overrides=dict(WARM_WORLD)) as sim:
        sim.run(WARM_STEPS, stop_on_extinction=False)
    return time.perf_counter() - t0


def warm_for_run(sim: Any) -> None:
    """``alife run``: warm the kernels of a simulation on the CPU path before the progress bar
    and the run's clock start, saying so on stderr when they compile. A warm-up that fails (a
    plugin from the ``alife`` entry points that refuses the tiny world) is skipped: the kernels
    then compile in the run's first step, as they would without it."""
    if not getattr(sim, "_cpu", False):
        return
    try:
        warm_kernels(announce=lambda msg: print(msg, file=sys.stderr, flush=True))
    except Exception:
        return
