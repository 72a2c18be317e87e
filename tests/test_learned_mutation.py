"""Learned variation (alife/strategies/learned.py) and its metrics (learned_metrics.py): the
batched mutator against a per-child reference, segment rates, the escape's probability, the
crossover gate, species as groups with stable ids, the metrics on known cases, short runs in the
world and on CartPole, and a bit-identical resume."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from alife import checkpoint as ck
from alife.simulation import Simulation
from alife.strategies import learned as L
from alife.strategies import learned_metrics as M

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"world.width": 32, "world.height": 32, "world.initial_agents": 120, "world.capacity": 1024}
LEARNED = {"strategies": {"mutation": "learned", "reproduction": "learned-crossover",
                          "speciation": "compatibility-groups"}}


@pytest.fixture(scope="module")
def sim():
    s = Simulation(LEARNED, seed=3, device="cpu", overrides=SMALL)
    yield s
    s.close()


def rows(sim, k, seed=0):
    """``k`` genomes of the world's layout with every tensor random (so each feature matters)."""
    g = torch.Generator().manual_seed(seed)
    out = torch.randn(k, sim.layout.size, generator=g) * 0.5
    sim.layout.view(out, "mutator.log_sigma").fill_(math.log(0.05))
    sim.layout.view(out, L.ESCAPE_SIGMA).fill_(math.log(0.05))
    return out


def test_batched_mutator_equals_per_child_reference(sim):
    c = L.LayoutConsts(sim.layout, "cpu")
    parents, values = rows(sim, 5, 1), rows(sim, 5, 2)
    noise = torch.randn(values.shape, generator=torch.Generator().manual_seed(3))
    w = L.mutator_weights(sim.layout, parents)
    got = L.learned_delta(values, noise, c, *w, block=2)  # blocks of 2, 2, 1
    want = L.reference_delta(values, noise, sim.layout, parents)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert got.std() > 0.05  # not a degenerate case


def test_rate_zero_leaves_a_segment_unchanged(sim):
    c, lay = L.LayoutConsts(sim.layout, "cpu"), sim.layout
    parents = rows(sim, 64, 4)
    lay.view(parents, L.ESCAPE_P).fill_(9.0)  # the escape fires for nearly every child
    for frozen in ("policy", "mutator", "compatibility"):
        scale = torch.tensor([0.0 if s == frozen else 1.0 for s in ("policy", "mutator", "compatibility")])
        child = L.learned_mutate(parents.clone(), parents, c, scale, 1e-4, 0.5, torch.Generator().manual_seed(5))
        for seg in ("policy", "mutator", "compatibility"):
            a, b = lay.segment_range(seg)
            same = torch.equal(child[:, a:b], parents[:, a:b])
            assert same == (seg == frozen), (frozen, seg)


def test_escape_fires_at_its_heritable_probability(sim):
    c, lay = L.LayoutConsts(sim.layout, "cpu"), sim.layout
    k = 2000
    parents = rows(sim, k, 6)
    lay.view(parents, "mutator.w2").zero_()
    lay.view(parents, "mutator.b2").zero_()  # the network writes no change: only the escape does
    p = torch.where(torch.arange(k) < k // 2, 0.3, 0.05)  # two heritable probabilities
    lay.view(parents, L.ESCAPE_P)[:, 0] = torch.log(p / (1 - p))
    lay.view(parents, L.ESCAPE_SIGMA).fill_(math.log(0.02))
    child = L.learned_mutate(parents.clone(), parents, c, torch.ones(3), 1e-4, 0.5, torch.Generator().manual_seed(7))
    a, b = lay.segment_range("policy")
    fired = (child[:, a:b] != parents[:, a:b]).any(1)
    for half, want in ((slice(0, k // 2), 0.3), (slice(k // 2, k), 0.05)):
        rate = fired[half].float().mean().item()
        assert abs(rate - want) < 4 * math.sqrt(want * (1 - want) / (k // 2)), (rate, want)
    step = (child[fired, a:b] - parents[fired, a:b]).pow(2).mean().sqrt().item()
    assert abs(step - 0.02) < 0.002


def test_learned_crossover_gate_one_or_zero_gives_either_parent(sim):
    c, lay = L.LayoutConsts(sim.layout, "cpu"), sim.layout
    a, b = rows(sim, 16, 8), rows(sim, 16, 9)
    lay.view(a, L.GATE_W).zero_()
    for bias, want in ((200.0, a), (-200.0, b)):
        lay.view(a, L.GATE_B).fill_(bias)
        child = L.learned_crossover(a, b, a, c, torch.Generator().manual_seed(0))
        assert torch.equal(child, want)
    lay.view(a, L.GATE_B).fill_(0.0)  # gate 1/2: the mean of both
    torch.testing.assert_close(L.learned_crossover(a, b, a, c, torch.Generator()), (a + b) / 2)


def test_learned_crossover_gates_are_per_tensor_and_read_both_parents(sim):
    c, lay = L.LayoutConsts(sim.layout, "cpu"), sim.layout
    a, b = rows(sim, 8, 10), rows(sim, 8, 11)
    lay.view(a, L.GATE_W).normal_(0, 1.0, generator=torch.Generator().manual_seed(12))
    noise = torch.zeros(8, c.n_tensors)
    g1 = L.crossover_gates(a, b, a, c, noise)
    g2 = L.crossover_gates(a, a + 3 * (b - a), a, c, noise)
    assert g1.shape == (8, c.n_tensors) and (g1.amax(1) - g1.amin(1) > 0.02).all()  # a gate per tensor
    assert not torch.allclose(g1, g2)  # the second parent is an input


def test_compatibility_groups_keep_ids_and_found_only_through_new_species():
    s = Simulation(LEARNED, seed=2, device="cpu", overrides=SMALL)
    calls = []
    real = s.new_species

    def counted(tags, parents, step):
        ids = real(tags, parents, step)
        calls.append(ids.clone())
        return ids

    s.new_species = counted
    n0 = int(s.world.species_origin.shape[0])
    seen: dict[int, int] = {}
    for _ in range(150):
        s.step()
        live = s.world.alive_slots()
        ids, sp = s.world.ids[live].tolist(), s.world.species[live].tolist()
        for i, p in zip(ids, sp, strict=True):
            assert seen.setdefault(i, p) == p  # an agent's species never changes: no relabelling
    founded = int(torch.cat(calls).numel()) if calls else 0
    assert founded > 0 and int(s.world.species_origin.shape[0]) == n0 + founded
    rep = s.arrays[L.REP]
    a0, a1 = s.layout.segment_range("compatibility")
    # a new species' representative is its founder's compatibility segment, kept since
    new = torch.cat(calls)
    assert rep.shape == (n0 + founded, a1 - a0) and rep[new].abs().sum() > 0
    s.close()


def test_compatibility_groups_split_on_refusal(sim):
    grp = sim.hooks.get_plugin("compatibility-groups")
    lay = sim.layout
    g = sim.world.genomes[sim.world.alive_slots()[:6]].clone()
    parent_sp = sim.world.species[sim.world.alive_slots()[:6]].clone()
    rep = sim.arrays[L.REP][parent_sp]
    a0 = lay.segment_range("compatibility")[0]
    # each child a copy of its species' representative: willing networks accept their own kind
    g[:, a0:a0 + rep.shape[1]] = rep
    lay.view(g, "compatibility.b2").fill_(10.0)
    lay.view(g, "compatibility.w2").zero_()
    rep_w = grp.acceptance(grp._seg(g), grp._seg(g))
    assert (rep_w > 0.99).all()
    n = int(sim.world.species_origin.shape[0])
    lay.view(g, "compatibility.b2")[:3] = -10.0  # the first three refuse their representative
    out = grp.alife_speciate(sim, g, parent_sp, 0)
    assert torch.equal(out[3:], parent_sp[3:]) and out[:3].tolist() == list(range(n, n + 3))


# ------------------------------------------------------------------ metrics
def test_metrics_on_known_cases(sim):
    lay = sim.layout
    p = rows(sim, 4, 12)
    m0, m1 = lay.segment_range("mutator")
    assert torch.equal(M.fidelity(p[:, m0:m1], p[:, m0:m1]), torch.ones(4))
    torch.testing.assert_close(M.fidelity(p[:, m0:m1], 2 * p[:, m0:m1]), torch.full((4,), 2 / 3))
    assert torch.equal(M.fidelity(p[:, m0:m1], -p[:, m0:m1]), torch.zeros(4))
    probes = torch.rand(16, lay["policy.w1"].shape[1], generator=torch.Generator().manual_seed(13)) * 2 - 1
    changed, effect = M.policy_effect(p, p.clone(), lay, probes, tol=0.05)
    assert torch.equal(changed, torch.zeros(4)) and torch.equal(effect, torch.zeros(4))
    c = p.clone()
    lay.view(c, "policy.b2")[:2] += 0.5 * torch.atanh(torch.tensor(0.999))  # rows 0, 1 act differently
    changed, effect = M.policy_effect(p, c, lay, probes, tol=0.05)
    assert changed.tolist()[2:] == [0.0, 0.0] and (changed[:2] > 0.5).all() and (effect[:2] > 0.05).all()
    assert torch.equal(M.drift(p[:, m0:m1], p[:, m0:m1]), torch.zeros(4))
    torch.testing.assert_close(M.drift(p[:, m0:m1], 1.5 * p[:, m0:m1]), torch.full((4,), 0.5))


def test_drift_follows_lineages_not_slots():
    world = {**LEARNED, "plugins": ["alife.strategies.learned_metrics"],
             "plugin": {"learned-metrics": {"every": 20}}}
    s = Simulation(world, seed=4, device="cpu", overrides=SMALL)
    root0 = s.arrays[M.ROOT].clone()
    founders = {int(i): int(sl) for i, sl in zip(s.world.ids[s.world.alive_slots()].tolist(),
                                                 s.world.alive_slots().tolist(), strict=True)}
    parent_of: dict[int, int] = {}
    root_of = {i: i for i in founders}

    class Watch:
        from alife.plugins import hookimpl

        @hookimpl
        def alife_agents_born(self, sim, births):
            for i, pid in zip(births.ids.tolist(), births.parent_ids[:, 0].tolist(), strict=True):
                parent_of[i] = pid
                root_of[i] = root_of.get(pid, i)

    s.hooks.register(Watch(), "watch")
    s.run(120, stop_on_extinction=False)
    live = s.world.alive_slots()
    for sl, i in zip(live.tolist(), s.world.ids[live].tolist(), strict=True):
        r = root_of[i]
        assert r in founders  # no refill happened in this run
        assert torch.equal(s.arrays[M.ROOT][sl], root0[founders[r]])  # its own founder's, not the slot's
    rows_ = s.hooks.get_plugin("learned-metrics").rows
    assert len(rows_) == 6 and rows_[-1]["drift_mean"] > 0 and 0.5 < rows_[-1]["fidelity_mean"] < 1
    s.close()


# ------------------------------------------------------------------ runs
def test_short_run_in_the_learned_world_writes_and_plots_metrics(tmp_path):
    s = Simulation(ROOT / "worlds" / "learned_mutation.toml", seed=1, device="cpu", run_dir=tmp_path,
                   overrides={**SMALL, "plugin.learned-metrics.every": 25})
    s.run(150)
    assert s.population > 0 and s.totals["births"] > 100 and s.totals["deaths_invalid"] == 0
    s.close()
    import json

    data = json.loads((tmp_path / "learned_metrics.json").read_text())
    assert len(data["rows"]) == 6 and sum(data["effect_hist"]["counts"]) > 0
    png = M.plot(data, tmp_path / "metrics.png")
    assert png.stat().st_size > 10_000


def test_learned_mixture_world_runs_both_strategies():
    s = Simulation(ROOT / "worlds" / "learned_mixture.toml", seed=0, device="cpu", overrides=SMALL)
    s.run(100)
    by = s.population_by_strategy()
    assert set(by) == {"learned", "gaussian"} and sum(by.values()) == s.population
    s.close()


def test_learned_on_cartpole():
    pytest.importorskip("gymnasium")
    from alife.generational.runner import TaskRun

    run = TaskRun(ROOT / "worlds" / "cartpole_learned.toml", seed=0,
                  overrides={"task.generations": 3, "task.population": 16, "task.heldout_episodes": 3,
                             "task.stop_at_threshold": False})
    s = run.run()
    assert s["generations"] == 3 and s["strategies"]["mutation"] == "learned" and np.isfinite(s["heldout_mean"])


def test_learned_resumes_bit_identically(tmp_path):
    world = {**LEARNED, "plugins": ["alife.strategies.learned_metrics"],
             "plugin": {"learned-metrics": {"every": 30}}}
    ref = Simulation(world, seed=6, device="cpu", overrides=SMALL)
    ref.run(160, stop_on_extinction=False)
    first = Simulation(world, seed=6, device="cpu", overrides=SMALL)
    first.run(80, stop_on_extinction=False)
    path = ck.save_checkpoint(first, tmp_path / "learned.h5")
    back = ck.load_checkpoint(path, world=first.config)
    back.run(80, stop_on_extinction=False)
    for name in ("genomes", "energy", "species", "ids"):
        np.testing.assert_array_equal(getattr(back.world, name).numpy(), getattr(ref.world, name).numpy())
    for name in (L.REP, M.ROOT):
        assert torch.equal(back.arrays[name], ref.arrays[name]), name
    assert back.hooks.get_plugin("learned-metrics").rows == ref.hooks.get_plugin("learned-metrics").rows
    for s in (ref, first, back):
        s.close()
