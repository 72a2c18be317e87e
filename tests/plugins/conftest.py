"""Shared fixtures for the plugin tests: small, fast worlds on the CPU."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from alife.simulation import Simulation

REPO = Path(__file__).resolve().parents[2]

#: a world small enough that a few dozen steps take well under a second
SMALL: dict[str, Any] = {"world.width": 32, "world.height": 32, "world.initial_agents": 100,
                         "world.capacity": 512}


@pytest.fixture
def make_sim() -> Iterator[Callable[..., Simulation]]:
    """``make_sim(world=None, overrides=None, **kwargs)``: a small seeded CPU simulation, closed
    at the end of the test."""
    made: list[Simulation] = []

    def make(world: Any = None, overrides: dict[str, Any] | None = None, **kwargs: Any) -> Simulation:
        kwargs.setdefault("seed", 1)
        kwargs.setdefault("device", "cpu")
        sim = Simulation(world, overrides={**SMALL, **(overrides or {})}, **kwargs)
        made.append(sim)
        return sim

    yield make
    for sim in made:
        try:
            sim.close()
        except Exception:  # a test that made a hook raise on purpose
            pass


@pytest.fixture
def fresh_modules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A temporary directory on ``sys.path`` for plugin modules; modules imported from it are
    forgotten after the test, so tests never see each other's plugins."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        mod = sys.modules.get(name)
        if mod is not None and str(getattr(mod, "__file__", "") or "").startswith(str(tmp_path)):
            del sys.modules[name]
