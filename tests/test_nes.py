"""NES and evolvability ES: the pure core against known answers, and the strategy in the world and
on a task (sampling from the species' distribution, mirrored noise, founders, checkpoints)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from alife import checkpoint as ck
from alife.plugins import hookimpl
from alife.simulation import Simulation
from alife.strategies import nes_core as N

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"world.width": 32, "world.height": 32, "world.initial_agents": 120, "world.capacity": 1024}
NES_WORLD = {"strategies": {"mutation": "nes"}, "plugin": {"nes": {"window": 8}}}


def behaviour(x: torch.Tensor) -> torch.Tensor:
    """The seed's 1-d behaviour: fast oscillation under a slow envelope."""
    return 5 * torch.sin(0.2 * x) * torch.sin(20 * x)


# ------------------------------------------------------------------ the pure core
def test_nes_reaches_the_peak_at_5_from_1():
    g = torch.Generator().manual_seed(0)
    mean, sigma = torch.tensor([1.0]), torch.tensor([1.0])
    for _ in range(150):
        z, x = N.ask(mean, sigma, 20, g)
        mean, sigma = N.tell(mean, sigma, z, -(x[:, 0] - 5.0) ** 2, lr_mean=1.0, lr_sigma=0.2)
    assert abs(float(mean) - 5.0) < 1e-3 and float(sigma) < 0.01  # the spread shrinks on the peak


def evolve(objective: str, seed: int, iters: int = 300) -> tuple[torch.Tensor, torch.Tensor]:
    """The seed's evolvability-ES example with SNES's settings (NES utilities, centre rate 1, the
    spread's rate (3 + ln 1) / 5), 200 samples a step; MaxEnt's kernel has the fixed width 0.5 in
    behaviour units (the seed's ``k_sigma``: entropy on the behaviour's own scale)."""
    g = torch.Generator().manual_seed(seed)
    mean, sigma = torch.tensor([1.0]), torch.tensor([0.5])
    for _ in range(iters):
        z, x = N.ask(mean, sigma, 200, g)
        b = behaviour(x)
        f = N.maxvar(b) if objective == "maxvar" else N.maxent(b, bandwidth=0.5)
        mean, sigma = N.tell(mean, sigma, z, f)
    return mean, sigma


def test_maxvar_settles_where_the_behaviour_varies_most():
    # Var[5 sin(0.2x) sin(20x)] is largest where the envelope |5 sin(0.2x)| is 5, at x = 2.5 pi
    # (7.85), the envelope peak nearest the start; there the fast sine's variance is 25/2
    for seed in range(3):
        mean, sigma = evolve("maxvar", seed)
        g = torch.Generator().manual_seed(100 + seed)
        sample = behaviour(N.ask(mean, sigma, 4000, g)[1])
        assert abs(float(mean) - 2.5 * math.pi) < 1.0, float(mean)
        assert float(sample.var()) > 0.95 * 12.5


def test_maxent_spreads_behaviours_more_evenly_than_maxvar():
    ent = {}
    for objective in ("maxvar", "maxent"):
        hs = []
        for seed in range(3):
            mean, sigma = evolve(objective, seed)
            g = torch.Generator().manual_seed(100 + seed)
            sample = behaviour(N.ask(mean, sigma, 4000, g)[1])
            h = torch.histc(sample.double(), bins=20, min=-5, max=5)
            p = h[h > 0] / sample.numel()
            hs.append(float(-(p * p.log()).sum()))
        ent[objective] = hs
    print("entropy of the behaviour sample (20 bins over [-5, 5], 3 seeds):", ent)
    assert min(ent["maxent"]) > max(ent["maxvar"])


def test_mirrored_noise_and_utilities():
    g = torch.Generator().manual_seed(0)
    z = N.mirrored_noise(7, 3, g)
    torch.testing.assert_close(z[0::2][:3], -z[1::2])
    f = torch.tensor([3.0, -1.0, 10.0, 0.0])
    # centred ranks, scaled to sum |u| = 1: ranks 2, 0, 3, 1 of 4 -> 1/6, -1/2, 1/2, -1/6, over 4/3
    u = N.utilities(f, "centred")
    assert u.tolist() == pytest.approx([0.125, -0.375, 0.375, -0.125])
    # NES utilities (Wierstra et al. 2014): w = max(0, ln 3 - ln(4 - rank)): 0, ln 1.5, ln 3 for
    # ranks 1, 2, 3 (the worst two get none), divided by their sum, minus 1/4
    w = torch.tensor([math.log(1.5), 0.0, math.log(3.0), 0.0], dtype=torch.float64)
    u = N.utilities(f, "nes")
    assert u.tolist() == pytest.approx((w / w.sum() - 0.25).tolist(), abs=1e-6)
    for shaping in N.SHAPINGS:  # zero sum, magnitude independent of the sample size
        for n in (4, 17, 1000):
            u = N.utilities(torch.randn(n, generator=g), shaping)
            assert float(u.sum()) == pytest.approx(0.0, abs=1e-5)
            assert 0.5 < float(u.abs().sum()) <= 2.0 + 1e-5
    with pytest.raises(ValueError, match="fitness shaping 'linear'"):
        N.utilities(f, "linear")


def test_nes_utilities_are_evotorchs():
    ranking = pytest.importorskip("evotorch.tools.ranking")
    g = torch.Generator().manual_seed(3)
    for n in (5, 17, 40):
        f = torch.randn(n, generator=g)
        torch.testing.assert_close(N.utilities(f, "nes"), ranking.nes(f), atol=1e-6, rtol=0)


def test_grouped_tell_equals_one_tell_per_group():
    g = torch.Generator().manual_seed(1)
    mean, sigma = torch.randn(3, 4, generator=g), torch.rand(3, 4, generator=g) + 0.1
    group = torch.tensor([0, 2, 0, 2, 0, 2, 2])
    z, f = torch.randn(7, 4, generator=g), torch.randn(7, generator=g).double()
    for shaping in N.SHAPINGS:
        gm, gs = N.tell_grouped(mean, sigma, group, z, f, 0.7, 0.3, shaping=shaping)
        for k in (0, 2):
            rows = group == k
            m1, s1 = N.tell(mean[k], sigma[k], z[rows], f[rows], 0.7, 0.3, shaping=shaping)
            torch.testing.assert_close(gm[k], m1)
            torch.testing.assert_close(gs[k], s1)
        torch.testing.assert_close(gm[1], mean[1])  # no sample: unchanged
        torch.testing.assert_close(gs[1], sigma[1])


# ------------------------------------------------------------------ in the world
class Watch:
    """Checks each step's births after every plugin has seen them (``alife_step_end``)."""

    def __init__(self):
        self.checked = 0

    @hookimpl
    def alife_step_end(self, sim, step):
        births = sim.last_births
        if births is None:
            return
        slots = torch.as_tensor(births.slots)
        nes = sim.hooks.get_plugin("nes")
        sampled = sim.arrays["nes.born"][slots]
        if not bool(sampled.any()):
            return
        s = slots[sampled]
        sp = sim.world.species[s]
        want = sim.arrays["nes.mean"][sp] + sim.arrays["nes.sigma"][sp] * sim.arrays["nes.z"][s]
        torch.testing.assert_close(sim.world.genomes[s], want)  # sampled from its species
        z = sim.arrays["nes.z"][s]
        # mirrored: within a species, births pair up as z, -z
        for k in torch.unique(sp).tolist():
            zk = z[sp == k]
            if zk.shape[0] >= 2:
                torch.testing.assert_close(zk[1], -zk[0])
        self.checked += int(s.numel())
        assert nes is not None


def test_nes_samples_children_from_their_species_and_learns():
    w = Watch()
    sim = Simulation(NES_WORLD, seed=2, device="cpu", overrides=SMALL, plugins=[w])
    sigma0 = sim.arrays["nes.sigma"].clone()
    sim.run(300)
    nes = sim.hooks.get_plugin("nes")
    assert w.checked > 100 and nes.updates > 0
    n0 = sigma0.shape[0]
    assert not torch.equal(sim.arrays["nes.sigma"][:n0], sigma0)  # the spreads moved


def test_a_new_species_starts_from_its_founder():
    class Founders:
        def __init__(self):
            self.new = []
            self.seen = 0

        @hookimpl
        def alife_species_born(self, sim, species, parents, step):
            self.new = species.tolist()

        @hookimpl
        def alife_step_end(self, sim, step):
            births = sim.last_births
            if births is None:
                return
            for s in self.new:
                rows = np.flatnonzero(births.species == s)
                if rows.size:
                    slot = int(births.slots[rows[0]])
                    torch.testing.assert_close(sim.arrays["nes.mean"][s], sim.world.genomes[slot])
                    self.seen += 1
            self.new = []

    f = Founders()
    sim = Simulation(NES_WORLD, seed=3, device="cpu", plugins=[f],
                     overrides={**SMALL, "mutation.species_threshold": 0.2})
    sim.run(200)
    assert f.seen > 0


def test_nes_resumes_bit_identically(tmp_path):
    ref = Simulation(NES_WORLD, seed=4, device="cpu", overrides=SMALL)
    ref.run(240, stop_on_extinction=False)
    first = Simulation(NES_WORLD, seed=4, device="cpu", overrides=SMALL)
    first.run(120, stop_on_extinction=False)
    path = ck.save_checkpoint(first, tmp_path / "nes.h5")
    back = ck.load_checkpoint(path, world=first.config)
    back.run(120, stop_on_extinction=False)
    for name in ("genomes", "energy", "species", "ids"):
        np.testing.assert_array_equal(getattr(back.world, name).numpy(), getattr(ref.world, name).numpy())
    for name in ("nes.mean", "nes.sigma", "nes.z"):
        assert torch.equal(back.arrays[name], ref.arrays[name]), name
    a, b = back.hooks.get_plugin("nes"), ref.hooks.get_plugin("nes")
    assert a.updates == b.updates > 0 and torch.equal(a.f, b.f) and torch.equal(a.z, b.z) and torch.equal(a.used, b.used)


def test_evolvability_world_ranks_behaviour():
    sim = Simulation(ROOT / "worlds" / "evolvability.toml", seed=5, device="cpu", overrides=SMALL)
    sim.run(250)
    nes = sim.hooks.get_plugin("nes")
    assert nes.params.objective == "maxvar" and nes.b.shape[1] == 7 and nes.updates > 0


@pytest.mark.parametrize("first,updates", [("sample", 3), ("founders", 2)])
def test_nes_on_cartpole(first, updates):
    pytest.importorskip("gymnasium")
    from alife.generational.runner import TaskRun

    run = TaskRun(ROOT / "worlds" / "cartpole_nes.toml", seed=0,
                  overrides={"task.generations": 4, "task.heldout_episodes": 3, "task.stop_at_threshold": False,
                             "plugin.nes.first_generation": first})
    run.run()
    nes = run.hooks.get_plugin("nes")
    # each generation told before a reproduction (0-2; the last is never reproduced from) is one
    # update; with the world's founders as generation 0, that one is not a sample and is not told
    assert nes.updates == updates


def test_the_first_generation_on_a_task_is_a_mirrored_sample_around_the_founders_mean():
    pytest.importorskip("gymnasium")
    from alife.generational.runner import TaskRun

    kw = {"task.generations": 1, "task.heldout_episodes": 3, "plugin.nes.search": "policy"}
    founders = TaskRun(ROOT / "worlds" / "cartpole_nes.toml", seed=3,
                       overrides={**kw, "plugin.nes.first_generation": "founders"})
    run = TaskRun(ROOT / "worlds" / "cartpole_nes.toml", seed=3, overrides=kw)
    n, (lo, hi) = run.population, run.layout.segment_range("policy")
    mean = founders.world.genomes[:n].mean(0)
    torch.testing.assert_close(run.arrays["nes.mean"][0], mean)  # the centre: the founders' mean
    g, z = run.world.genomes[:n], run.arrays["nes.z"][:n]
    assert bool(run.arrays["nes.born"][:n].all())
    torch.testing.assert_close(g, mean + run.arrays["nes.sigma"][0] * z)  # genomes are the told noise
    torch.testing.assert_close(z[1::2], -z[0::2])  # mirrored pairs
    assert float(z[:, lo:hi].std()) == pytest.approx(1.0, abs=0.05)
    assert not bool(z[:, :lo].any()) and not bool(z[:, hi:].any())  # only the policy searched
    assert not bool(founders.arrays["nes.born"][:n].any())  # founders as they are: nothing to tell


def test_searching_the_policy_alone_leaves_the_other_segments_at_the_centre():
    pytest.importorskip("gymnasium")
    from alife.generational.runner import TaskRun

    run = TaskRun(ROOT / "worlds" / "cartpole_nes.toml", seed=0,
                  overrides={"task.generations": 5, "task.heldout_episodes": 3, "task.stop_at_threshold": False,
                             "plugin.nes.search": "policy"})
    lo, hi = run.layout.segment_range("policy")
    sigma0 = run.arrays["nes.sigma"].clone()
    run.run()
    nes = run.hooks.get_plugin("nes")
    assert nes.updates == 4 and int(nes.searched.sum()) == hi - lo
    sp = run.world.species[0]
    mean, sigma = run.arrays["nes.mean"][sp], run.arrays["nes.sigma"][sp]
    g = run.world.genomes[: run.population]
    outside = torch.ones(g.shape[1], dtype=torch.bool)
    outside[lo:hi] = False
    torch.testing.assert_close(g[:, outside], mean[outside].expand(g.shape[0], -1))  # not searched
    torch.testing.assert_close(sigma[outside], sigma0[sp][outside])  # their spread never moved
    assert not torch.equal(sigma[lo:hi], sigma0[sp][lo:hi])  # the policy's did
    assert float((g[:, lo:hi] - mean[lo:hi]).abs().max()) > 0  # and its children are samples
    assert nes.lr_sigma == pytest.approx(N.default_lr_sigma(hi - lo))


def test_a_mirrored_twin_of_a_tanh_policy_is_the_same_policy_but_for_its_output_bias():
    # why benchmarks/tasks.py samples NES unmirrored on tasks: around a centre near zero the twin
    # -z of a sample z is (nearly) the same policy, so mirrored pairs halve the distinct samples
    from alife.config import BrainSection
    from alife.genome import make_layout, mlp_forward

    layout = make_layout(BrainSection(), n_obs=6, n_act=3)
    g = torch.Generator().manual_seed(0)
    theta = torch.randn(4, layout.size, generator=g)
    x = torch.randn(4, 6, generator=g)
    flipped = theta.clone()
    layout.view(flipped, "policy.b2").neg_()
    torch.testing.assert_close(mlp_forward(-theta, layout, "policy", x), mlp_forward(flipped, layout, "policy", x))
    assert not torch.allclose(mlp_forward(-theta, layout, "policy", x), mlp_forward(theta, layout, "policy", x))
