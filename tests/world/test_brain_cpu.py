"""The CPU policy pass over transposed weights gives the actions of the plain batched forward pass,
and never acts on stale weights, whoever writes the genomes."""

from __future__ import annotations

import pytest
import torch

import alife
from alife.genome import mlp_forward
from alife.world.kernels import HAVE_NUMBA

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")

SMALL = {"world.width": 40, "world.height": 40, "world.initial_agents": 120, "world.capacity": 1024}


def policy_pair(sim: alife.Simulation) -> tuple[torch.Tensor, torch.Tensor]:
    """(actions from the cache, actions from mlp_forward) for the current state."""
    st = sim.world
    obs = sim.sense()[: st.hw]
    cached = sim._policy_cpu.forward(st.genomes, obs)
    plain = mlp_forward(st.genomes[: st.hw], sim.layout, "policy", obs)
    return cached, plain


def test_matches_the_plain_forward_pass_through_births():
    sim = alife.Simulation(seed=1, device="cpu", overrides=SMALL)
    for _ in range(60):  # births write columns through put(); deaths free slots
        sim.step()
    assert sim.totals["births"] > 50
    cached, plain = policy_pair(sim)
    alive = sim.world.alive[: sim.world.hw]
    torch.testing.assert_close(cached[alive], plain[alive], rtol=0, atol=1e-5)
    assert sim._policy_cpu.rebuilds == 1  # once after the founders were written, never again


def test_torch_writes_are_seen():
    sim = alife.Simulation(seed=1, device="cpu", overrides=SMALL)
    for _ in range(3):
        sim.step()
    lay = sim.layout
    # a plugin (or a user) rewrites every policy bias in place: the version counter moves
    lay.view(sim.world.genomes, "policy.b2").add_(0.5)
    rebuilds = sim._policy_cpu.rebuilds
    cached, plain = policy_pair(sim)
    torch.testing.assert_close(cached, plain, rtol=0, atol=1e-5)
    assert sim._policy_cpu.rebuilds == rebuilds + 1


def test_numpy_writes_need_genomes_changed():
    sim = alife.Simulation(seed=1, device="cpu", overrides=SMALL)
    for _ in range(3):
        sim.step()
    policy_pair(sim)
    e = sim.layout["policy.b2"]
    sim.world.genomes.numpy()[:, e.offset:e.offset + e.size] += 0.5  # invisible to torch
    sim.genomes_changed()
    cached, plain = policy_pair(sim)
    torch.testing.assert_close(cached, plain, rtol=0, atol=1e-5)


def test_a_plugin_that_learns_every_step_never_sees_stale_actions():
    seen = []

    class Learner:
        @alife.hookimpl
        def alife_learn(self, sim, slots, observations, actions, rewards):
            # compare what the engine acted on with the plain pass over the same genomes
            plain = mlp_forward(sim.world.genomes[slots], sim.layout, "policy", observations)
            seen.append(float((plain - actions).abs().max()))
            sim.layout.view(sim.world.genomes, "policy.b1")[slots] += 0.01

    sim = alife.Simulation(seed=2, device="cpu", overrides=SMALL, plugins=[Learner()])
    for _ in range(8):
        sim.step()
    assert len(seen) == 8 and max(seen) < 1e-5


def test_the_copy_grows_with_the_highest_slot_not_the_capacity():
    sim = alife.Simulation(seed=1, device="cpu", overrides=dict(SMALL, **{"world.capacity": 8192}))
    for _ in range(40):
        sim.step()
    pc = sim._policy_cpu
    assert sim.world.hw <= pc.soa.shape[1] < 8192
    cached, plain = policy_pair(sim)
    alive = sim.world.alive[: sim.world.hw]
    torch.testing.assert_close(cached[alive], plain[alive], rtol=0, atol=1e-5)
