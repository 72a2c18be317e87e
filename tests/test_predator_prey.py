"""Predator-prey (``alife.strategies.predator_prey``): roles breed true, predators do not graze
and live off prey, the counts reach summary.json and lineage.h5, and the cycle lag analysis
gives known answers (a lagged sine, independent noise)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import alife
from alife.cli.main import main
from alife.events import CAUSE_CODE
from alife.lineage.analysis import cross_correlation_lag
from alife.plugins import hookimpl
from alife.plugins.manager import PluginError
from alife.strategies.predator_prey import PREDATOR, PREY, ROLE
from tests.conftest import SMALL
from tests.role_watch import RoleWatch

ROOT = Path(__file__).resolve().parents[1]
WORLD = ROOT / "worlds" / "predator_prey.toml"



def test_roles_breed_true_and_predators_do_not_graze():
    w = RoleWatch(ROLE)
    sim = alife.Simulation(WORLD, seed=1, plugins=[w], overrides=SMALL)
    pp = sim.hooks.get_plugin("predator-prey")
    prey0, pred0 = pp.counts(sim)
    assert pred0 == round(pp.params.predator_share * SMALL["world.initial_agents"]) and prey0 + pred0 == SMALL["world.initial_agents"]
    sim.run(150)
    assert w.births > 50 and w.mismatch == 0  # every child has its first parent's role
    assert w.ate == -1.0  # the eat output of every predator was switched off
    assert sim.totals["deaths_eaten"] > 0


def test_only_predators_gain_from_eating_prey():
    sim = alife.Simulation(WORLD, seed=2, overrides=SMALL)
    pp = sim.hooks.get_plugin("predator-prey")
    roles = sim.arrays[ROLE]
    a = torch.tensor([0, 1, 2, 3])
    roles[a] = torch.tensor([PREDATOR, PREDATOR, PREY, PREY], dtype=roles.dtype)
    attackers, targets = torch.tensor([0, 0, 2, 2]), torch.tensor([2, 1, 3, 0])
    damage, gain = pp.alife_interact(sim, attackers, targets)
    p, ag = pp.params, sim.config.agent
    # predator on prey; predator on predator; prey on prey (the world's predation); prey on predator
    torch.testing.assert_close(damage, torch.tensor([p.damage, 0.0, ag.attack_damage, 0.0]))
    torch.testing.assert_close(gain, torch.tensor([p.damage * p.gain, 0.0, ag.attack_damage * ag.attack_gain, 0.0]))
    # with predator_attack, predator on predator is the world's predation; prey on predator still nothing
    sim2 = alife.Simulation(WORLD, seed=2, overrides={**SMALL, "plugin.predator-prey.predator_attack": True})
    pp2 = sim2.hooks.get_plugin("predator-prey")
    sim2.arrays[ROLE][a] = torch.tensor([PREDATOR, PREDATOR, PREY, PREY], dtype=roles.dtype)
    damage, gain = pp2.alife_interact(sim2, attackers, targets)
    torch.testing.assert_close(damage, torch.tensor([p.damage, ag.attack_damage, ag.attack_damage, 0.0]))
    torch.testing.assert_close(gain, torch.tensor([p.damage * p.gain, ag.attack_damage * ag.attack_gain,
                                                   ag.attack_damage * ag.attack_gain, 0.0]))


def test_prey_in_the_refuge_cannot_be_hunted():
    sim = alife.Simulation(WORLD, seed=2, overrides={**SMALL, "plugin.predator-prey.refuge": 0.25})
    pp = sim.hooks.get_plugin("predator-prey")
    roles, pos, width = sim.arrays[ROLE], sim.world.pos, sim.config.world.width
    roles[:4] = torch.tensor([PREDATOR, PREY, PREY, PREY], dtype=roles.dtype)
    # prey 1 just inside the band, prey 2 on its edge, prey 3 well outside
    pos[1:4, 0] = torch.tensor([0.25 * width - 0.01, 0.25 * width, 0.9 * width])
    attackers, targets = torch.tensor([0, 0, 0]), torch.tensor([1, 2, 3])
    damage, gain = pp.alife_interact(sim, attackers, targets)
    p = pp.params
    torch.testing.assert_close(damage, torch.tensor([0.0, p.damage, p.damage]))
    torch.testing.assert_close(gain, torch.tensor([0.0, p.damage * p.gain, p.damage * p.gain]))
    # the world's own predation among prey goes on inside the refuge
    roles[0] = PREY
    damage, _ = pp.alife_interact(sim, attackers, targets)
    assert float(damage[0]) == pytest.approx(sim.config.agent.attack_damage)


def test_a_refuge_keeps_the_prey_inside_it_alive():
    kills: dict[str, int] = {"in": 0, "out": 0}

    class Kills:
        @hookimpl
        def alife_agents_died(self, sim, deaths):
            eaten = torch.from_numpy(deaths.slots[deaths.causes == CAUSE_CODE["eaten"]]).long()
            x = sim.world.pos[eaten, 0]
            inside = x < 0.5 * sim.config.world.width
            kills["in"] += int(inside.sum())
            kills["out"] += int((~inside).sum())

    over = {**SMALL, "plugin.predator-prey.refuge": 0.5, "plugin.predator-prey.prey_attack": False}
    sim = alife.Simulation(WORLD, seed=3, plugins=[Kills()], overrides=over)
    sim.run(200)
    assert kills["out"] > 20 and kills["in"] == 0


def test_role_counts_reach_the_summary_and_the_lineage_file(tmp_path: Path):
    out = tmp_path / "run"
    over = {**SMALL, "plugin.predator-prey.record_every": 10}
    assert main(["run", str(WORLD), "--steps", "80", "--seed", "3", "--no-progress", "--out", str(out),
                 "--no-record", "replay", *[f"--set={k}={v}" for k, v in over.items()]]) == 0
    s = json.loads((out / "summary.json").read_text())
    pp = s["plugin_fields"]["predator-prey"]
    assert pp["counts"]["step"] == list(range(0, 80, 10))
    assert pp["final"]["prey"] + pp["final"]["predators"] == s["population"]["final"]
    series = alife.lineage.open(out / "lineage.h5").plugin_series
    np.testing.assert_array_equal(series["predator-prey.prey"].to_numpy()[: len(pp["counts"]["prey"])],
                                  pp["counts"]["prey"])


def test_the_lag_of_a_lagged_cycle_is_found():
    t = np.arange(400)
    rng = np.random.default_rng(0)
    prey = 100 + 50 * np.sin(2 * np.pi * t / 80) + rng.normal(0, 5, t.size)
    pred = 30 + 15 * np.sin(2 * np.pi * (t - 20) / 80) + rng.normal(0, 2, t.size)  # a quarter period later
    r = cross_correlation_lag(prey, pred, 60)
    assert r["lag"] in (19, 20, 21) and r["r"] > 0.9 and r["significant"]
    assert cross_correlation_lag(pred, prey, 60)["lag"] in (-21, -20, -19)  # the other way round


def test_independent_noise_shows_no_significant_lag():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=500), rng.normal(size=500)
    r = cross_correlation_lag(x, y, 0)
    assert abs(r["r"]) < r["threshold"] and not r["significant"]


def test_predators_breed_at_their_own_threshold():
    """``predator_reproduce_energy``: predators reproduce only at that energy (the fused kernel
    reads the per-agent threshold), prey at the world's, and children keep their parent's."""
    from alife.world.arrays import REPRODUCE_ENERGY

    class Parents:
        def __init__(self):
            self.pred, self.prey = [], []

        @hookimpl
        def alife_agents_born(self, sim, births):
            a = sim.config.agent
            first = np.asarray(births.parent_slots[:, 0])
            slots, n = np.unique(first[first >= 0], return_counts=True)
            before = sim.world.energy[torch.as_tensor(slots)].numpy() + n * (a.child_energy + a.birth_cost)
            role = sim.arrays[ROLE][torch.as_tensor(slots)].numpy()
            self.pred += before[role == PREDATOR].tolist()
            self.prey += before[role == PREY].tolist()
            kids = torch.as_tensor(births.slots)
            thr = sim.arrays[REPRODUCE_ENERGY]
            assert torch.equal(thr[kids], thr[torch.as_tensor(births.parent_slots[:, 0])])

    w = Parents()
    over = {**SMALL, "plugin.predator-prey.predator_reproduce_energy": 4.5}
    sim = alife.Simulation(WORLD, seed=4, plugins=[w], overrides=over)
    sim.run(300)
    assert len(w.pred) > 3 and len(w.prey) > 20
    assert min(w.pred) >= 4.5 - 1e-4
    assert min(w.prey) < 4.5  # prey breed at the world's 3.0
    with pytest.raises(PluginError, match="predator_reproduce_energy: 7.0 can never be reached"):
        alife.Simulation(WORLD, seed=4, overrides={**SMALL, "plugin.predator-prey.predator_reproduce_energy": 7.0})


# ------------------------------------------------------------------ hunt = "nearest-prey"
HUNT = {**SMALL, "plugin.predator-prey.sense_roles": True, "plugin.predator-prey.hunt": "nearest-prey"}


def _crowd(sim: alife.Simulation) -> None:
    """Slots 0-2 alone in a corner: predator 0 with predator 1 nearest (0.3 away) and prey 2 in
    contact range behind it (1.0 away); every other agent far off."""
    st, roles = sim.world, sim.arrays[ROLE]
    st.pos[3:] = torch.tensor([0.75, 0.75]) * torch.tensor([sim.config.world.width, sim.config.world.height])
    st.pos[:3] = torch.tensor([[4.0, 4.0], [4.3, 4.0], [3.0, 4.0]])
    roles[:3] = torch.tensor([PREDATOR, PREDATOR, PREY], dtype=roles.dtype)


def test_a_predator_that_hunts_the_nearest_prey_strikes_past_another_predator():
    for hunt, eaten in (("nearest-agent", False), ("nearest-prey", True)):
        sim = alife.Simulation(WORLD, seed=4, overrides={**HUNT, "plugin.predator-prey.hunt": hunt})
        pp = sim.hooks.get_plugin("predator-prey")
        _crowd(sim)
        n = sim.world.hw
        pp.alife_observe(sim, n, torch.zeros(n, sim.observation_columns("predator-prey.other").stop))  # the senses
        out = pp.alife_interact(sim, torch.tensor([0]), torch.tensor([1]))  # the world's target: predator 1
        if eaten:
            damage, gain, to = out
            assert int(to[0]) == 2 and float(damage[0]) == pp.params.damage  # redirected onto the prey
        else:
            damage, gain = out
            assert float(damage[0]) == 0.0  # struck the other predator, to no effect


class OnlySlot0Attacks:
    """Actions of one crafted step: nobody moves, grazes or mates; slot 0 attacks."""

    @hookimpl
    def alife_after_act(self, sim, slots, actions):
        actions[:, 1:] = -1.0
        actions[slots == 0, 3] = 1.0


@pytest.mark.parametrize("fused", [True, False], ids=["numba", "torch"])
def test_a_redirected_attack_lands_in_the_engines_fight(fused):
    """One whole step through the engine's fight phase (the numba pass and the torch one): predator
    0 attacks; its nearest agent is predator 1, prey 2 is in contact range behind it."""
    for hunt, prey_eaten in (("nearest-agent", False), ("nearest-prey", True)):
        sim = alife.Simulation(WORLD, seed=4, plugins=[OnlySlot0Attacks()],
                               overrides={**HUNT, "plugin.predator-prey.hunt": hunt})
        sim._cpu = fused
        _crowd(sim)
        ids = sim.world.ids[:3].clone()
        e0 = float(sim.world.energy[0])
        sim.step()
        alive = [bool(sim.world.alive[k]) and int(sim.world.ids[k]) == int(ids[k]) for k in range(3)]
        assert alive == [True, True, not prey_eaten], hunt
        assert (float(sim.world.energy[0]) > e0) == prey_eaten  # the predator fed only on the prey


def test_hunting_the_nearest_prey_needs_its_sense():
    with pytest.raises(PluginError, match="plugin.predator-prey.hunt: .nearest-prey. needs sense_roles = true"):
        alife.Simulation(WORLD, seed=1, overrides={**SMALL, "plugin.predator-prey.hunt": "nearest-prey"})


def test_an_attack_redirected_to_a_dead_slot_is_refused():
    class BadAim:
        @hookimpl
        def alife_interact(self, sim, attackers, targets):
            dead = (~sim.world.alive).nonzero()[0].expand(attackers.numel())
            z = torch.zeros(attackers.numel())
            return z, z, dead

    sim = alife.Simulation(seed=6, plugins=[BadAim()], overrides={**SMALL, "strategies.interaction": "BadAim"})
    with pytest.raises(PluginError, match="redirected to slot .* not a living agent"):
        sim.run(50)


class _Speeds:
    """The fastest ``speed`` output any acted agent of each role has used."""

    def __init__(self):
        self.fastest = {PREY: -2.0, PREDATOR: -2.0}

    @hookimpl
    def alife_step_end(self, sim, step):
        st = sim.world
        for role in (PREY, PREDATOR):
            who = st.alive & (sim.arrays[ROLE] == role) & (st.age > 0)
            if who.any():
                self.fastest[role] = max(self.fastest[role], float(st.last_action[who, 1].max()))


def test_prey_cannot_outrun_the_cap_and_predators_keep_full_speed():
    spy = _Speeds()
    sim = alife.Simulation(WORLD, seed=3, plugins=[spy],
                           overrides={**SMALL, "plugin.predator-prey.prey_max_speed": 0.4})
    sim.run(60)
    cap = 2 * 0.4 - 1  # speed = (action + 1) / 2 of agent.max_speed
    assert spy.fastest[PREY] <= cap + 1e-6
    assert spy.fastest[PREDATOR] > cap + 0.3  # predators' outputs are left alone
    free = _Speeds()  # and without the cap prey do use the speeds it forbids
    alife.Simulation(WORLD, seed=3, plugins=[free], overrides=SMALL).run(60)
    assert free.fastest[PREY] > cap + 0.3
