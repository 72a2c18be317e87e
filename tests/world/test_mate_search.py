"""Mate search (``agent.mate_radius``): an agent that signals readiness finds the nearest other
ready agent within the radius as its partner, so two-parent births can happen in the open meadow;
with the radius at 0 the world keeps its contact-range partners."""

from __future__ import annotations

import numpy as np
import torch

import alife
from alife.plugins import hookimpl
from tests.conftest import SMALL


class Pairs:
    """Checks every two-parent birth: both parents ready, alive, distinct, within the radius."""

    def __init__(self, radius: float):
        self.radius, self.pairs, self.births = radius, 0, 0

    @hookimpl
    def alife_agents_born(self, sim, births):
        st = sim.world
        ps = births.parent_slots
        self.births += len(births)
        two = ps[:, 1] >= 0
        if not two.any():
            return
        a, b = torch.as_tensor(ps[two, 0]), torch.as_tensor(ps[two, 1])
        assert bool((a != b).all())
        assert bool(st.ready[a].all()) and bool(st.ready[b].all())
        d = (st.pos[a] - st.pos[b]).abs()
        size = torch.tensor([sim.config.world.width, sim.config.world.height], dtype=d.dtype)
        d = torch.minimum(d, size - d)  # on the torus
        assert float(d.norm(dim=1).max()) <= self.radius + 1e-4
        self.pairs += int(two.sum())


def _run(radius: float, steps: int = 600, seed: int = 3):
    # contact-range partners were sensed before this step's moves: up to two moves apart since
    check = Pairs(radius if radius > 0 else 1.5 + 2 * 0.8)
    sim = alife.Simulation(None, seed=seed, device="cpu", plugins=[check], overrides={"agent.mate_radius": radius})
    sim.run(steps)
    return sim, check


def test_partners_are_ready_and_within_the_mate_radius_and_sex_becomes_common():
    near, c0 = _run(0.0)
    far, c6 = _run(6.0)
    assert c6.pairs == far.totals["births_two_parents"] > 0
    assert far.totals["pairs_proposed"] >= far.totals["births_two_parents"] + far.totals["pairs_refused"] - 1
    # the contact-range world rarely pairs; mate search pairs several times as often
    share0 = c0.pairs / c0.births
    share6 = c6.pairs / c6.births
    assert share6 > 3 * share0 and share6 > 0.03, (share0, share6)


def test_mate_search_on_the_torch_path_agrees_with_the_cpu_kernels():
    """The torch grid search (CUDA's path, run here on the CPU) finds the same partners."""
    over = dict(SMALL, **{"agent.mate_radius": 4.0})
    cpu = alife.Simulation(None, seed=4, device="cpu", overrides=over)
    cpu.run(30)
    ref_nb, ref_d = cpu.reproduction.mates(cpu.world.hw)
    cpu.mate_grid.exact_cpu = False  # the whole-array torch search
    nb, d = cpu.reproduction.mates(cpu.world.hw)
    ready = (cpu.world.alive & cpu.world.ready)[: cpu.world.hw]
    assert int((ref_nb[ready] >= 0).sum()) > 10
    np.testing.assert_array_equal(nb.numpy(), ref_nb.numpy())
    np.testing.assert_allclose(d[ref_nb >= 0].numpy(), ref_d[ref_nb >= 0].numpy(), rtol=1e-5)


def test_a_bad_mate_radius_is_refused_naming_the_key():
    import pytest

    from alife.config import ConfigError

    with pytest.raises(ConfigError, match="agent.mate_radius"):
        alife.Simulation(None, seed=1, overrides={"agent.mate_radius": -1.0})
