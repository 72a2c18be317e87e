"""Observation channels a plugin adds to what brains sense (``alife_observations`` /
``alife_observe``): the policy input grows, the channel is what the plugin wrote (clipped), and
the two-role rules' "nearest agent of the other role" points where a hand computation says."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import alife
from alife.plugins import hookimpl
from alife.plugins.manager import PluginError
from tests.conftest import SMALL

ROOT = Path(__file__).resolve().parents[2]


class Compass:
    """One channel: the agent's heading as (cos, sin), and a value out of range to be clipped."""

    @hookimpl
    def alife_observations(self, config):
        return [("compass", 3)]

    @hookimpl
    def alife_observe(self, sim, n, obs):
        hd = sim.world.heading[:n]
        obs[:, sim.observation_columns("compass")] = torch.stack([hd.cos(), hd.sin(), torch.full_like(hd, 7.0)], 1)


def test_a_channel_grows_the_policy_input_and_reaches_the_brains():
    plain = alife.Simulation(seed=0, overrides=SMALL)
    sim = alife.Simulation(seed=0, overrides=SMALL, plugins=[Compass()])
    assert sim.n_obs == plain.n_obs + 3
    assert sim.obs_names[-3:] == ("compass[0]", "compass[1]", "compass[2]")
    assert sim.layout["policy.w1"].shape[1] == sim.n_obs
    sim.run(3)
    obs = sim.sense()
    live = sim.world.alive_slots()
    hd = sim.world.heading[live]
    cols = sim.observation_columns("compass")
    torch.testing.assert_close(obs[live][:, cols][:, :2], torch.stack([hd.cos(), hd.sin()], 1))
    assert bool((obs[live][:, cols][:, 2] == 1.0).all())  # clipped to [-1, 1]
    assert bool((obs[:, : plain.n_obs] == obs[:, : plain.n_obs]).all())
    with pytest.raises(KeyError, match="no observation channel 'nope'"):
        sim.observation_columns("nope")


def test_bad_declarations_are_refused_naming_the_plugin():
    class Twice:
        @hookimpl
        def alife_observations(self, config):
            return [("compass", 1)]

    class Bad:
        @hookimpl
        def alife_observations(self, config):
            return [("wide", 1000)]

    with pytest.raises(PluginError, match="'compass' is declared by both"):
        alife.Simulation(seed=0, overrides=SMALL, plugins=[Compass(), Twice()])
    with pytest.raises(PluginError, match=r"'Bad'.*1 <= size <= 64"):
        alife.Simulation(seed=0, overrides=SMALL, plugins=[Bad()])


@pytest.mark.parametrize("world,rule", [("predator_prey", "predator-prey"), ("host_parasite", "host-parasite")])
def test_the_nearest_agent_of_the_other_role(world, rule):
    """Three agents left alive: A (role 0) at (10, 10) facing +x, B (role 1) at (12, 10) facing +y,
    C (role 0) at (10.5, 10), nearer to A than B is but of A's own role. A senses B at distance 2
    straight ahead; B senses C (its nearest of role 0) at 1.5, to its right-hand side... behind
    its lateral axis: offset (-1.5, 0) with heading +y is lateral +1, forward 0."""
    sim = alife.Simulation(ROOT / "worlds" / f"{world}.toml", seed=0,
                           overrides={**SMALL, f"plugin.{rule}.sense_roles": True})
    st = sim.world
    roles = sim.arrays[f"{rule}.role"]
    st.alive[:] = False
    st.alive[:3] = True
    st.pos[:3] = torch.tensor([[10.0, 10.0], [12.0, 10.0], [10.5, 10.0]])
    st.heading[:3] = torch.tensor([0.0, math.pi / 2, 0.0])
    roles[:3] = torch.tensor([0, 1, 0], dtype=roles.dtype)
    sim.genomes_changed()
    obs = sim.sense()
    own = obs[:3, sim.observation_columns(f"{rule}.role")].squeeze(1)
    other = obs[:3, sim.observation_columns(f"{rule}.other")]
    torch.testing.assert_close(own, torch.tensor([0.0, 1.0, 0.0]))
    r = sim.config.agent.sense_radius
    torch.testing.assert_close(other[0], torch.tensor([1.0, 2.0 / r, 0.0, 1.0]), atol=1e-5, rtol=0)
    torch.testing.assert_close(other[1], torch.tensor([1.0, 1.5 / r, 1.0, 0.0]), atol=1e-5, rtol=0)
    torch.testing.assert_close(other[2], torch.tensor([1.0, 1.5 / r, 0.0, 1.0]), atol=1e-5, rtol=0)


def test_off_by_default_the_layout_is_the_worlds():
    sim = alife.Simulation(ROOT / "worlds" / "predator_prey.toml", seed=0, overrides=SMALL)
    assert sim.n_obs == alife.Simulation(seed=0, overrides=SMALL).n_obs and not sim.obs_channels


def test_the_grid_query_mask_agrees_between_kernel_and_torch():
    """``NeighbourGrid.nearest(..., query=)``: candidates from one mask, rows asked from another,
    the same answer from the numba kernel and the torch code (the GPU's)."""
    from alife.world.senses import NeighbourGrid

    g = torch.Generator().manual_seed(0)
    n = 400
    pos = torch.rand(n, 2, generator=g) * 40.0
    alive = torch.rand(n, generator=g) < 0.9
    cand = alive & (torch.rand(n, generator=g) < 0.3)
    fast = NeighbourGrid(40, 40, 3.0, 64, torch.device("cpu"), exact_cpu=True).nearest(pos, cand, 3.0, query=alive)
    slow = NeighbourGrid(40, 40, 3.0, 64, torch.device("cpu"), exact_cpu=False).nearest(pos, cand, 3.0, query=alive)
    assert torch.equal(fast[0], slow[0])
    torch.testing.assert_close(fast[2], slow[2])
    found = fast[0] >= 0
    assert bool(found[~alive].logical_not().all()) and int(found.sum()) > 50
    assert bool(cand[fast[0][found]].all())  # every answer is a candidate
    # without query, only candidate rows are answered (mate search's use)
    assert not bool((NeighbourGrid(40, 40, 3.0, 64, torch.device("cpu")).nearest(pos, cand, 3.0)[0][~cand] >= 0).any())
