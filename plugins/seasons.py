"""Seasons: resource regrowth that swings with a yearly cycle.

A drop-in plugin: list it in a world file (``plugins = ["../plugins/seasons.py"]``), put it in a
``--plugins-dir``, or load it with ``-p``. Each step it answers ``alife_resource_regrowth`` with

    factor = 1 + amplitude * sin(2 * pi * (step / period + phase))

so regrowth peaks a quarter year in (summer, ``1 + amplitude``) and bottoms out three quarters in
(winter, ``1 - amplitude``). With ``latitude = true`` the factor is a ``[height, width]`` field
instead: the swing is scaled by ``cos(2 * pi * y / height)``, so the rows around ``y = 0`` and
those around ``y = height / 2`` have opposite seasons (two hemispheres on the torus) and the rows
between them (the equators) have none.

Settings, all optional, in the world file::

    [plugin.seasons]
    period = 400      # steps per year (> 0)
    amplitude = 0.8   # 0..1: how far regrowth swings around its normal rate
    phase = 0.0       # 0..1: fraction of a year already gone at step 0
    latitude = false  # true: opposite seasons in the two halves of the world
"""

from __future__ import annotations

import difflib
import math
import weakref
from dataclasses import dataclass
from typing import Any

import torch

from alife.config import ConfigError
from alife.plugins import hookimpl

#: the settings table this plugin reads: ``[plugin.seasons]``
SETTINGS = "seasons"


@dataclass(frozen=True)
class Seasons:
    """Validated settings, plus the latitude pattern when there is one."""

    period: float = 400.0
    amplitude: float = 0.8
    phase: float = 0.0
    latitude: bool = False
    pattern: torch.Tensor | None = None  # [height, width] swing per cell, when latitude is on

    def factor(self, step: int) -> float | torch.Tensor:
        """The regrowth factor at ``step``: a float, or a ``[height, width]`` tensor."""
        swing = self.amplitude * math.sin(2.0 * math.pi * (step / self.period + self.phase))
        if self.pattern is None:
            return 1.0 + swing
        return 1.0 + swing * self.pattern


# one entry per simulation, dropped with it: a module plugin is shared by every simulation in the
# process (``-p`` imports it once), so per-run state must never live in module globals
_by_sim: weakref.WeakKeyDictionary[Any, Seasons] = weakref.WeakKeyDictionary()


def _number(source: str, table: dict[str, Any], key: str, default: float, lo: float, hi: float,
            lo_open: bool = False, hi_open: bool = False) -> float:
    value = table.get(key, default)
    where = f"plugin.{SETTINGS}.{key}"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(source, where, f"expected a number, got {value!r}")
    too_low = value <= lo if lo_open else value < lo
    too_high = value >= hi if hi_open else value > hi
    if too_low or too_high:
        lo_s, hi_s = ("(" if lo_open else "["), (")" if hi_open else "]")
        raise ConfigError(source, where, f"expected a value in {lo_s}{lo}, {hi}{hi_s}, got {value!r}")
    return float(value)


def parse_settings(sim: Any) -> Seasons:
    """Read and check ``[plugin.seasons]``; an error names the file and the key."""
    source = sim.config.source
    table = sim.config.plugin.get(SETTINGS, {})
    known = ("period", "amplitude", "phase", "latitude")
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            raise ConfigError(source, f"plugin.{SETTINGS}.{key}", f"unknown key; {hint}")
    period = _number(source, table, "period", 400.0, 0.0, math.inf, lo_open=True, hi_open=True)
    amplitude = _number(source, table, "amplitude", 0.8, 0.0, 1.0)
    phase = _number(source, table, "phase", 0.0, 0.0, 1.0, hi_open=True)
    latitude = table.get("latitude", False)
    if not isinstance(latitude, bool):
        raise ConfigError(source, f"plugin.{SETTINGS}.latitude", f"expected true or false, got {latitude!r}")
    pattern = None
    if latitude:
        height, width = sim.world.resource.shape
        y = torch.arange(height, dtype=torch.float32, device=sim.world.resource.device)
        pattern = torch.cos(2.0 * math.pi * y / height)[:, None].expand(height, width).contiguous()
    return Seasons(period, amplitude, phase, latitude, pattern)


@hookimpl
def alife_sim_start(sim: Any) -> None:
    # checked at start, so a bad setting stops the run before its first step
    _by_sim[sim] = parse_settings(sim)


@hookimpl
def alife_resource_regrowth(sim: Any, step: int) -> float | torch.Tensor:
    seasons = _by_sim.get(sim)
    if seasons is None:  # registered after the simulation started
        seasons = _by_sim[sim] = parse_settings(sim)
    return seasons.factor(step)
