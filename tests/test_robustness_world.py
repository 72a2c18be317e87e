"""Invalid genomes die with cause "invalid" and the run goes on; extinction policies; capacity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import alife
from alife import checkpoint as ck
from alife.cli.main import main
from alife.events import CAUSE_CODE
from alife.simulation import Simulation

SMALL = {"world.width": 32, "world.height": 32, "world.initial_agents": 120, "world.capacity": 512}
#: a world where everyone starves within a few steps
BARREN = {**SMALL, "resource.initial": 0.0, "resource.seed_growth": 0.0, "agent.base_cost": 0.7,
          "world.initial_agents": 40}


class DeathLog:
    """A plugin that keeps every Deaths and Births event."""

    def __init__(self) -> None:
        self.deaths: list = []
        self.births: list = []

    @alife.hookimpl
    def alife_agents_died(self, sim, deaths):
        self.deaths.append(deaths)

    @alife.hookimpl
    def alife_agents_born(self, sim, births):
        self.births.append(births)

    def died(self, cause: str) -> np.ndarray:
        code = CAUSE_CODE[cause]
        out = [d.ids[d.causes == code] for d in self.deaths]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


# ------------------------------------------------------------------------------------ invalid genomes
@pytest.mark.parametrize("segment,value", [("policy", float("nan")), ("mutator", float("inf")),
                                           ("compatibility", float("nan")), ("policy", float("-inf"))])
def test_a_non_finite_genome_dies_invalid_and_nobody_else_does(segment, value):
    log = DeathLog()
    sim = Simulation(None, seed=2, device="cpu", overrides=SMALL, plugins=[log])
    slots = torch.tensor([0, 5, 17])  # slot 0 too: "no neighbour" rows read slot 0
    bad_ids = sim.world.ids[slots].numpy().copy()
    a, b = sim.layout.segment_range(segment)
    sim.world.genomes[slots, a + 1] = value
    sim.genomes_changed(slots)
    sim.step()
    assert sorted(log.died("invalid")) == sorted(bad_ids)
    assert sim.totals["deaths_invalid"] == 3
    assert not sim.world.alive[slots].any()
    sim.run(30)
    assert sim.totals["deaths_invalid"] == 3  # no contagion through senses or dead slots
    assert sim.population > 0 and sim.step_count == 31


def test_non_finite_energy_and_brain_output_die_invalid():
    class Poison:
        @alife.hookimpl
        def alife_after_act(self, sim, slots, actions):
            if sim.step_count == 2:
                actions[:2, 1] = float("nan")

        @alife.hookimpl
        def alife_step_start(self, sim, step):
            if step == 4:
                sim.world.energy[sim.world.alive_slots()[:3]] = float("nan")  # +inf is clamped to max_energy

    log = DeathLog()
    sim = Simulation(None, seed=2, device="cpu", overrides=SMALL, plugins=[Poison(), log])
    sim.run(8)
    assert sim.totals["deaths_invalid"] == 5
    by_step = {d.step: int((d.causes == CAUSE_CODE["invalid"]).sum()) for d in log.deaths}
    assert by_step[2] == 2 and by_step[4] == 3
    assert sim.population > 0


def test_a_mutator_that_makes_nan_children_kills_only_them():
    class NanMutator:
        ALIFE_STRATEGIES = {"mutation": "nan-every-other"}

        @alife.hookimpl
        def alife_mutate(self, sim, genomes, parents):
            genomes[::2, 0] = float("nan")
            return genomes

    log = DeathLog()
    over = {**SMALL, "strategies.mutation": "nan-every-other"}
    sim = Simulation(None, seed=4, device="cpu", overrides=over, plugins=[NanMutator(), log])
    sim.run(80)
    born = np.concatenate([b.ids for b in log.births])
    bad = np.concatenate([b.ids[::2] for b in log.births])
    assert len(born) > 20
    invalid = log.died("invalid")
    # every NaN child died "invalid" (the ones born in the last step die in the next one)
    last = log.births[-1].ids[::2] if log.births[-1].step == sim.step_count - 1 else np.zeros(0)
    assert set(bad) - set(last) <= set(invalid)
    assert set(invalid) <= set(bad)
    assert sim.totals["deaths_invalid"] == len(invalid)


# ------------------------------------------------------------------------------------ extinction
def test_stop_ends_the_run_with_a_summary(tmp_path, capsys):
    run = tmp_path / "run"
    args = [f"--set={k}={v}" for k, v in BARREN.items()]
    assert main(["run", "--no-progress", *args, "--steps", "200", "--out", str(run)]) == 0
    import json

    s = json.loads((run / "summary.json").read_text())
    assert s["extinct"] is True and s["population"]["final"] == 0
    assert s["steps"] < 200 and s["extinctions"] == 0
    assert "the population went extinct" in capsys.readouterr().out


def test_reseed_refills_from_the_genomes_of_the_last_dead():
    log = DeathLog()
    sim = Simulation(None, seed=1, device="cpu", overrides={**BARREN, "world.extinction": "reseed"},
                     plugins=[log])
    last_genomes = {}
    for _ in range(30):
        alive = sim.world.alive_slots()
        last_genomes.update({int(i): g.clone() for i, g in zip(sim.world.ids[alive], sim.world.genomes[alive], strict=True)})
        sim.step()
        if sim.totals["extinctions"]:
            break
    assert sim.totals["extinctions"] == 1
    assert sim.population == BARREN["world.initial_agents"] == sim.totals["reseeded"]
    refill = [b for b in log.births if b.strategy == "extinction-reseed"]
    assert len(refill) == 1
    parents = refill[0].parent_ids[:, 0]
    assert (refill[0].parent_ids[:, 1] == -1).all()
    last_dead = log.deaths[-1].ids
    assert set(parents) <= set(last_dead.tolist()) | set(np.concatenate([d.ids for d in log.deaths]).tolist())
    for slot, pid in zip(refill[0].slots, parents, strict=True):
        torch.testing.assert_close(sim.world.genomes[slot], last_genomes[int(pid)], rtol=0, atol=0)
    sim.run(30)  # and goes on through more extinctions
    assert sim.totals["extinctions"] >= 2 and sim.population > 0


def test_inject_places_random_genomes_in_new_species():
    log = DeathLog()
    sim = Simulation(None, seed=1, device="cpu", overrides={**BARREN, "world.extinction": "inject"},
                     plugins=[log])
    species_before = None
    for _ in range(30):
        species_before = sim.world.species_founder.shape[0]
        sim.step()
        if sim.totals["extinctions"]:
            break
    assert sim.totals["extinctions"] == 1 and sim.population == BARREN["world.initial_agents"]
    refill = [b for b in log.births if b.strategy == "extinction-inject"][0]
    assert (refill.parent_ids == -1).all()
    assert sim.world.species_founder.shape[0] > species_before
    assert set(refill.species) == set(range(species_before, sim.world.species_founder.shape[0]))
    assert (sim.world.generation[sim.world.alive] == 0).all()


def test_stop_is_the_default_and_a_stopped_world_stays_empty():
    sim = Simulation(None, seed=1, device="cpu", overrides=BARREN)
    assert sim.config.world.extinction == "stop"
    sim.run(100)
    assert sim.population == 0 and sim.totals["extinctions"] == 0


def test_reseed_pool_survives_a_checkpoint(tmp_path):
    over = {**BARREN, "world.extinction": "reseed"}
    a = Simulation(None, seed=6, device="cpu", overrides=over)
    a.run(40, stop_on_extinction=False)
    b = Simulation(None, seed=6, device="cpu", overrides=over)
    b.run(3, stop_on_extinction=False)  # the pool holds the first dead, not yet a refill
    assert b.totals["extinctions"] == 0 and b.totals["deaths"] > 0
    c = ck.load_checkpoint(ck.save_checkpoint(b, tmp_path / "c.h5"))
    c.run(37, stop_on_extinction=False)
    assert a.totals == c.totals and a.totals["extinctions"] >= 2
    for k, v in a.state().items():
        np.testing.assert_array_equal(v, c.state()[k], err_msg=k)


# ------------------------------------------------------------------------------------ capacity
def test_a_tiny_capacity_refuses_births_and_stays_bounded():
    over = {"world.width": 32, "world.height": 32, "world.capacity": 24, "world.initial_agents": 20,
            "resource.initial": 1.0}
    sim = Simulation(None, seed=3, device="cpu", overrides=over)
    shapes = {k: tuple(getattr(sim.world, k).shape) for k in ("genomes", "pos", "ids", "alive")}
    peak = 0
    for _ in range(150):
        sim.step()
        peak = max(peak, sim.population)
        assert sim.population <= 24 and sim.world.hw <= 24
        if sim.population == 0:
            break
    assert sim.totals["births_refused_capacity"] > 0
    assert peak == 24
    assert {k: tuple(getattr(sim.world, k).shape) for k in shapes} == shapes  # nothing grew
    ids = sim.world.ids[sim.world.alive]
    assert len(torch.unique(ids)) == len(ids)
    assert sim.world.next_id == 20 + sim.totals["births"]
