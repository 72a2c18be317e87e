"""Lineage files shared by the lineage tests: one small real run (sexual), one asexual run, and a
builder of synthetic files with known trees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import alife
from alife.lineage import schema
from alife.recording.lineage import LineageRecorder

SMALL = {"world.width": 32, "world.height": 32, "world.initial_agents": 120, "world.capacity": 1024}


class NeverMate:
    """Mating strategy ``never``: every child has one parent (an asexual run)."""

    ALIFE_STRATEGIES = {"mating": "never"}

    @alife.hookimpl
    def alife_mate(self, sim, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.zeros(a.shape[0], dtype=torch.bool, device=a.device)


def run_with_lineage(path: Path, steps: int, seed: int, asexual: bool = False, **kw) -> dict:
    ov = dict(SMALL)
    plugins: list = [LineageRecorder(path, **kw)]
    if asexual:
        ov["strategies.mating"] = "never"
        plugins.append(NeverMate())
    with alife.Simulation(overrides=ov, seed=seed, plugins=plugins) as sim:
        sim.run(steps)
        st = sim.world
        living = st.ids[st.alive].numpy().copy()
        return {"totals": dict(sim.totals), "living": living, "initial": SMALL["world.initial_agents"],
                "species_parent": st.species_parent.numpy().copy(),
                "species_origin": st.species_origin.numpy().copy(),
                "living_species": st.species[st.alive].numpy().copy(), "steps": sim.step_count}


@pytest.fixture(scope="session")
def sexual_run(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("sexual") / "lineage.h5"
    info = run_with_lineage(path, 120, seed=3, commit_every=7, genomes="births:3", series_every=5)
    return path, info


@pytest.fixture(scope="session")
def asexual_run(tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("asexual") / "lineage.h5"
    info = run_with_lineage(path, 120, seed=4, asexual=True, commit_every=25)
    return path, info


def synthetic(path: Path, parents: list[tuple[int, int]], steps: list[int], deaths: dict[int, int],
              species: list[int] | None = None, last_step: int | None = None) -> Path:
    """A lineage file whose agent ``i`` has first/second parent ``parents[i]`` and birth step
    ``steps[i]``; ``deaths`` maps id -> death step; one species unless given."""
    n = len(parents)
    sp = np.zeros(n, dtype=np.int64) if species is None else np.asarray(species)
    n_sp = int(sp.max()) + 1
    dead = sorted(deaths, key=lambda i: (deaths[i], i))
    data = {
        "births/id": np.arange(n), "births/parents": np.array(parents), "births/step": np.array(steps),
        "births/species": sp, "births/strategy": np.where(np.array(steps) < 0, 0, 1),
        "births/digest": np.arange(n, dtype=np.uint64),
        "deaths/id": np.array(dead, dtype=np.int64), "deaths/step": np.array([deaths[i] for i in dead], dtype=np.int64),
        "deaths/cause": np.zeros(len(dead)), "deaths/offspring": np.zeros(len(dead)),
        "deaths/lifetime_energy": np.zeros(len(dead)),
        "species/id": np.arange(n_sp), "species/parent": np.full(n_sp, -1), "species/origin_step": np.zeros(n_sp),
        "strategy_names": np.array([b"initial", b"test"]),
    }
    last = max([*steps, *deaths.values()]) if last_step is None else last_step
    schema.write_file(path, {"world_name": "synthetic", "seed": 0, "causes": ["starved"]}, 4, data, last)
    return path


@pytest.fixture
def make_synthetic(tmp_path):
    (tmp_path / "run").mkdir()
    return lambda *a, **kw: synthetic(tmp_path / "run" / "lineage.h5", *a, **kw)
