"""The CPU kernels of the built-in strategies give what their torch code gives, drawing the same
random numbers from the simulation's generator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import alife
from alife.strategies.kernels import HAVE_NUMBA, strays_cpu
from alife.strategies.mating import Compatibility, accepts_torch
from alife.strategies.mutation import gaussian_mutate, gaussian_mutate_torch
from alife.strategies.reproduction import breed, breed_torch
from alife.strategies.selection import EnergyThreshold, select_torch

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed")

SMALL = {"world.width": 40, "world.height": 40, "world.initial_agents": 200, "world.capacity": 1024}


@pytest.fixture
def sim():
    s = alife.Simulation(seed=5, device="cpu", overrides=SMALL)
    for _ in range(40):
        s.step()
    return s


def forked(sim) -> torch.Generator:
    return torch.Generator().set_state(sim.generator.get_state())


def test_selection(sim):
    st = sim.world
    st.energy[: st.hw] = torch.rand(st.hw, generator=torch.Generator().manual_seed(0)) * 6.0
    st.ready[: st.hw] = torch.rand(st.hw, generator=torch.Generator().manual_seed(1)) < 0.9
    live = st.alive_slots()
    g = torch.Generator().manual_seed(2)
    pick = live[torch.randint(0, live.numel(), (live.numel(),), generator=g)]
    near = torch.where(torch.rand(live.numel(), generator=g) < 0.7, pick, -1)
    ready = st.ready[live]
    got = EnergyThreshold().alife_select_parents(sim, live, near, ready)
    want = select_torch(st, sim.config.agent, live, near, ready)
    assert want[0].numel() > 10 and (want[1] >= 0).sum() > 3
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=0, atol=0)


def test_crossover(sim):
    st = sim.world
    live = st.alive_slots()
    parents = live[:40]
    partners = torch.where(torch.arange(40) % 3 == 0, live.flip(0)[:40], -1)
    g0 = forked(sim)
    got = breed(sim, parents, partners)
    sim.generator.set_state(g0.get_state())
    want = breed_torch(sim, parents, partners)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    # and crossover happened: some tensors came from the partner
    two = partners >= 0
    assert not torch.equal(got[two], st.genomes[parents[two]])


def test_gaussian_mutation(sim):
    child = sim.world.genomes[sim.world.alive_slots()[:30]].clone()
    m = sim.config.mutation
    args = (sim.layout, sim.segment_index, m.tau, m.sigma_min, m.sigma_max)
    got = gaussian_mutate(child.clone(), *args, forked(sim))
    want = gaussian_mutate_torch(child.clone(), *args, forked(sim))
    # exp in numba and in torch may differ in the last bit
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    assert (got - child).abs().mean() > 1e-3


def test_species_threshold(sim):
    st, lay = sim.world, sim.layout
    child = st.genomes[st.alive_slots()[:50]].clone()
    species = st.species[st.alive_slots()[:50]]
    tags = lay.view(child, "compatibility.tag")
    tags += torch.randn(tags.shape, generator=torch.Generator().manual_seed(3)) * 0.8
    thr = sim.config.mutation.species_threshold
    got, n_new = strays_cpu(child, lay["compatibility.tag"].offset, st.species_founder, species, thr)
    want = (tags - st.species_founder[species]).norm(dim=1) > thr
    torch.testing.assert_close(got, want)
    assert n_new == int(want.sum()) and 0 < n_new < 50


def test_mate_acceptance(sim):
    st, lay = sim.world, sim.layout
    live = st.alive_slots()
    a, b = live[:60], live.flip(0)[:60]
    # make the networks choosy, so that acceptance depends on the pair
    g = torch.Generator().manual_seed(4)
    for key in ("compatibility.w1", "compatibility.w2"):
        w = lay.view(st.genomes, key)
        w.copy_(torch.randn(w.shape, generator=g) * 2.0)
    lay.view(st.genomes, "compatibility.b2").zero_()
    g0 = forked(sim)
    got = Compatibility().alife_mate(sim, a, b)
    sim.generator.set_state(g0.get_state())
    want = accepts_torch(sim, a, b)
    torch.testing.assert_close(got, want)
    assert 5 < int(got.sum()) < 55


@pytest.mark.parametrize("mate_radius", [0.0, 5.0])
def test_fused_reproduction_repeats_the_hooks_exactly(mate_radius):
    # the four built-in roles run fused on the CPU; through their hooks they must give the very
    # same run: same draws in the same order, same decisions, same children (with mate search too)
    over = dict(SMALL, **{"mutation.species_threshold": 0.3, "agent.mate_radius": mate_radius})
    fused = alife.Simulation(seed=9, device="cpu", overrides=over)
    hooks = alife.Simulation(seed=9, device="cpu", overrides=over)
    hooks._fuse = False
    assert fused._builtin_reproduction()
    for _ in range(80):
        fused.step()
        hooks.step()
    assert fused.totals == hooks.totals and fused.totals["births"] > 100
    a, b = fused.state(), hooks.state()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert fused.world.species_founder.shape[0] > 4  # speciation happened
    torch.testing.assert_close(fused.world.species_founder, hooks.world.species_founder, rtol=0, atol=0)


def test_a_wrapped_role_leaves_the_fused_path():
    class Watch:
        calls = 0

        @alife.hookimpl(wrapper=True)
        def alife_mutate(self, sim, genomes, parents):
            Watch.calls += 1
            return (yield)

    sim = alife.Simulation(seed=9, device="cpu", overrides=SMALL, plugins=[Watch()])
    assert not sim._builtin_reproduction()
    sim.run(10)
    assert Watch.calls > 0


def test_selection_with_a_threshold_per_agent(sim):
    """A per-agent threshold (``reproduce_energy_per_agent``): the kernel and the torch code read
    each slot's own, and agents below theirs are never chosen."""
    from alife.strategies.kernels import select_cpu
    from alife.world.arrays import reproduce_energy_per_agent

    st = sim.world
    g = torch.Generator().manual_seed(3)
    st.energy[: st.hw] = torch.rand(st.hw, generator=g) * 6.0
    thr = torch.rand(st.energy.shape[0], generator=g) * 6.0
    live = st.alive_slots()
    near = torch.full((live.numel(),), -1, dtype=torch.int64)
    ready = st.ready[live]
    a = sim.config.agent
    got = select_cpu(st, live, near, ready, thr, a.min_reproduce_age)
    want = select_torch(st, a, live, near, ready, thr[live])
    for x, y in zip(got, want, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    chosen = got[0]
    old = st.age[live] >= a.min_reproduce_age
    assert torch.equal(chosen, live[(st.energy[live] >= thr[live]) & old])
    assert chosen.numel() != int(((st.energy[live] >= a.reproduce_energy) & old).sum())  # not the world's one
    # registered, it is what the strategy reads
    per = reproduce_energy_per_agent(sim)
    assert float(per[0]) == a.reproduce_energy and reproduce_energy_per_agent(sim) is per
    per.copy_(thr)
    got2 = EnergyThreshold().alife_select_parents(sim, live, near, ready)
    torch.testing.assert_close(got2[0], chosen, rtol=0, atol=0)
