"""The two implementations of the physics phases and the placement of children agree: the fused numba passes that run on the
CPU (``alife.world.kernels``) and the whole-array torch operations that run on CUDA."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import alife
from alife.events import CAUSES
from alife.world.kernels import HAVE_NUMBA

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")

SMALL = {"world.width": 24, "world.height": 24, "world.initial_agents": 60, "world.capacity": 256}


def pair(seed: int = 3, overrides: dict | None = None) -> tuple[alife.Simulation, alife.Simulation]:
    fused = alife.Simulation(seed=seed, device="cpu", overrides=overrides)
    torch_path = alife.Simulation(seed=seed, device="cpu", overrides=overrides)
    torch_path._cpu = False
    assert fused._cpu
    return fused, torch_path


def assert_same_world(a: alife.Simulation, b: alife.Simulation, atol: float) -> None:
    sa, sb = a.state(), b.state()
    np.testing.assert_array_equal(sa["ids"], sb["ids"])
    np.testing.assert_array_equal(sa["age"], sb["age"])
    np.testing.assert_array_equal(sa["slots"], sb["slots"])
    for key in ("ready", "parents", "generation", "children", "species", "genomes"):
        np.testing.assert_array_equal(sa[key], sb[key], err_msg=key)
    for key in ("pos", "energy", "lifetime_energy", "resource", "last_action"):
        np.testing.assert_allclose(sa[key], sb[key], atol=atol, rtol=0, err_msg=key)
    hd = np.abs(sa["heading"] - sb["heading"])
    assert np.minimum(hd, 2 * math.pi - hd).max() < atol
    assert a.totals == b.totals


def crowd(sim: alife.Simulation) -> torch.Tensor:
    """A step that exercises every branch: ten agents share one cell's grass, some attack, some
    are about to starve or die of age, actions out of range, NaN and infinite."""
    st, a = sim.world, sim.config.agent
    st.pos[:10] = torch.tensor([5.5, 7.5]) + 0.01 * torch.arange(10.0).unsqueeze(1)
    st.resource[7, 5] = 0.3  # less than ten bites: they share it
    st.energy[10:15] = 0.001
    st.age[15:20] = a.max_age - 1
    g = torch.Generator().manual_seed(1)
    act = torch.rand(st.hw, 5, generator=g) * 3 - 1.5
    act[:10, 1] = -1.0  # stay in the cell
    act[:10, 2] = 1.0  # and eat
    act[::3, 3] = 1.0  # attack whoever is nearest
    act[20, 0] = math.nan
    act[21, 2] = math.inf
    act[22, 1] = -math.inf
    return act


def test_one_step_agrees_on_every_branch():
    a, b = pair(overrides=SMALL)
    actions = crowd(a)
    torch.testing.assert_close(crowd(b), actions, rtol=0, atol=0, equal_nan=True)
    energy_before = a.world.energy[:10].clone()
    a.step(actions)
    b.step(actions)
    assert_same_world(a, b, atol=1e-5)
    # the branches happened: sharing, a fight, deaths of several causes, invalid actions
    assert (a.world.energy[:10] - energy_before).max() > 0
    assert a._scratch["attacking"].any()
    assert a.world.resource[7, 5] < 0.01  # eaten bare, then the seed growth of one step
    causes = {CAUSES[c] for c in a.last_deaths.causes}
    assert {"starved", "old_age", "invalid"} <= causes, causes
    np.testing.assert_array_equal(a.last_deaths.slots, b.last_deaths.slots)
    np.testing.assert_array_equal(a.last_deaths.causes, b.last_deaths.causes)


def test_runs_agree_until_rounding_compounds():
    # numba's and torch's cos/sin differ in the last bit, which compounds (positions decide who
    # eats what), so the runs are compared over the steps before that can flip a decision
    a, b = pair(seed=3)
    for _ in range(30):
        a.step()
        b.step()
    assert a.totals["births"] > 0 and a.totals["deaths"] > 0
    assert_same_world(a, b, atol=2e-3)


def test_regrowth_with_a_seasonal_field_uses_the_torch_path():
    # a [height, width] regrowth factor from a plugin goes through the torch code on the CPU too
    class Field:
        @alife.plugins.hookimpl
        def alife_resource_regrowth(self, sim, step):
            f = torch.ones(sim.world.resource.shape)
            f[:, : f.shape[1] // 2] = 0.0
            return f

    sim = alife.Simulation(seed=0, device="cpu", overrides=SMALL, plugins=[Field()])
    sim.world.resource.fill_(0.5)
    sim.world.alive[:] = False  # nobody eats
    sim.world.hw = 0
    sim.step()
    r = sim.world.resource
    assert torch.all(r[:, : r.shape[1] // 2] == 0.5)
    assert torch.all(r[:, r.shape[1] // 2:] > 0.5)
