"""One behavioural test per hook: a plugin implementing it is registered into a real simulation,
and the test checks that it fired with whole-population arrays of the documented shapes and that
its answer changed the world the way the hook's documentation says it does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from alife.events import CAUSES, Births, Deaths
from alife.plugins import hookimpl
from alife.plugins.manager import PluginError
from alife.simulation import Simulation

MakeSim = Callable[..., Simulation]


def still_actions(capacity: int) -> torch.Tensor:
    """Actions for every slot: no turn, no movement, no eating, no attacks, no courting."""
    act = torch.full((capacity, 5), -1.0)
    act[:, 0] = 0.0
    return act


def alive_slots(sim: Simulation) -> torch.Tensor:
    return sim.world.alive.nonzero().squeeze(1)


# ------------------------------------------------------------------------------- lifecycle events


class Lifecycle:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    @hookimpl
    def alife_sim_start(self, sim: Simulation) -> None:
        self.calls.append(("start", sim.population, sim.step_count))

    @hookimpl
    def alife_sim_end(self, sim: Simulation) -> None:
        self.calls.append(("end", sim.population, sim.step_count))


def test_sim_start_fires_once_with_the_initial_population_and_sim_end_once_on_close(make_sim: MakeSim) -> None:
    rec = Lifecycle()
    sim = make_sim(plugins=[rec])
    assert rec.calls == [("start", 100, 0)]
    sim.run(3)
    assert rec.calls == [("start", 100, 0)]
    sim.close()
    sim.close()
    assert rec.calls == [("start", 100, 0), ("end", sim.population, 3)]


def test_sim_end_fires_even_when_another_hook_raised(make_sim: MakeSim) -> None:
    class Broken:
        @hookimpl
        def alife_step_end(self, sim: Simulation, step: int) -> None:
            raise ValueError("disk full")

    rec = Lifecycle()
    with pytest.raises(PluginError, match="disk full"):
        with make_sim(plugins=[rec, Broken()]) as sim:
            sim.step()
    assert [c[0] for c in rec.calls] == ["start", "end"]


class StepRecorder:
    def __init__(self) -> None:
        self.starts: list[tuple[int, int]] = []
        self.ends: list[tuple[int, int, dict[str, int]]] = []

    @hookimpl
    def alife_step_start(self, sim: Simulation, step: int) -> None:
        self.starts.append((step, sim.step_count))

    @hookimpl
    def alife_step_end(self, sim: Simulation, step: int) -> None:
        self.ends.append((step, sim.step_count, dict(sim.stats)))


def test_step_start_and_step_end_bracket_every_step(make_sim: MakeSim) -> None:
    rec = StepRecorder()
    sim = make_sim(plugins=[rec])
    sim.run(6)
    assert rec.starts == [(i, i) for i in range(6)]  # before the step: the counter is not yet advanced
    assert [(s, c) for s, c, _ in rec.ends] == [(i, i + 1) for i in range(6)]
    # step_end sees this step's counters, which add up to the run's totals
    assert sum(st["births"] for _, _, st in rec.ends) == sim.totals["births"] > 0
    assert sum(st["deaths"] for _, _, st in rec.ends) == sim.totals["deaths"] > 0


# ------------------------------------------------------------------------------- the world


class HalfBarren:
    """Regrowth only in the right half of the world; records what it was asked."""

    def __init__(self) -> None:
        self.steps: list[int] = []

    @hookimpl
    def alife_resource_regrowth(self, sim: Simulation, step: int) -> torch.Tensor:
        self.steps.append(step)
        h, w = sim.world.resource.shape
        f = torch.ones(h, w)
        f[:, : w // 2] = 0.0
        return f


def test_resource_regrowth_factor_shapes_where_the_field_grows(make_sim: MakeSim) -> None:
    plug = HalfBarren()
    sim = make_sim(plugins=[plug])
    start = sim.world.resource.clone()
    still = still_actions(sim.config.world.capacity)
    for _ in range(4):
        sim.step(actions=still)  # nobody eats, so only regrowth changes the field
    assert plug.steps == [0, 1, 2, 3]
    field = sim.world.resource
    w = field.shape[1]
    assert torch.equal(field[:, : w // 2], start[:, : w // 2])
    assert bool((field[:, w // 2:] > start[:, w // 2:]).all())


def test_resource_regrowth_factors_of_several_plugins_multiply(make_sim: MakeSim) -> None:
    class Times(float):
        @hookimpl
        def alife_resource_regrowth(self, sim: Simulation, step: int) -> float:
            return float(self)

    grown = []
    for factors in ([], [Times(2.0), Times(1.5)], [Times(3.0)]):
        sim = make_sim(plugins=factors)
        before = sim.world.resource.clone()
        sim.step(actions=still_actions(sim.config.world.capacity))
        grown.append((sim.world.resource - before).mean().item())
    assert grown[1] == pytest.approx(3.0 * grown[0], rel=1e-4)
    assert grown[2] == pytest.approx(3.0 * grown[0], rel=1e-4)


def test_resource_regrowth_of_the_wrong_shape_is_refused(make_sim: MakeSim) -> None:
    class Wrong:
        @hookimpl
        def alife_resource_regrowth(self, sim: Simulation, step: int) -> torch.Tensor:
            return torch.ones(3)

    sim = make_sim(plugins=[Wrong()])
    with pytest.raises(PluginError, match=r"alife_resource_regrowth.*'Wrong'.*shape \[3\]"):
        sim.step()


class Freeze:
    """Edits the chosen actions in place: nobody turns or moves."""

    def __init__(self) -> None:
        self.calls: list[tuple[bool, tuple[int, ...], int]] = []

    @hookimpl
    def alife_after_act(self, sim: Simulation, slots: torch.Tensor, actions: torch.Tensor) -> None:
        self.calls.append((torch.equal(slots, alive_slots(sim)), tuple(actions.shape), slots.numel()))
        actions[:, 0] = 0.0
        actions[:, 1] = -1.0  # speed (a + 1) / 2 = 0


def test_after_act_sees_every_living_agent_and_can_edit_the_actions(make_sim: MakeSim) -> None:
    plug = Freeze()
    sim = make_sim(plugins=[plug])
    for _ in range(5):
        ids, pos = sim.world.ids.clone(), sim.world.pos.clone()
        sim.step()
        same = sim.world.alive & (sim.world.ids == ids)  # survivors, not newborns in freed slots
        assert int(same.sum()) > 50
        assert torch.equal(sim.world.pos[same], pos[same])
        assert bool((sim.world.last_action[same, 1] == -1.0).all())
    assert len(plug.calls) == 5
    for slots_are_alive, shape, n in plug.calls:
        assert slots_are_alive
        assert shape == (n, 5)  # one row per acting agent, aligned with slots


class Learner:
    """Checks the arguments of alife_learn and writes the genomes (a stand-in for a gradient step)."""

    def __init__(self) -> None:
        self.energy_at_start: torch.Tensor | None = None
        self.checked = 0
        self.slots: torch.Tensor | None = None

    @hookimpl
    def alife_step_start(self, sim: Simulation, step: int) -> None:
        self.energy_at_start = sim.world.energy.clone()

    @hookimpl
    def alife_learn(self, sim: Simulation, slots: torch.Tensor, observations: torch.Tensor,
                    actions: torch.Tensor, rewards: torch.Tensor) -> None:
        n = slots.numel()
        assert torch.equal(slots, alive_slots(sim))  # after deaths, before births
        assert observations.shape == (n, sim.n_obs)
        assert actions.shape == (n, 5)
        assert rewards.shape == (n,)
        assert self.energy_at_start is not None
        torch.testing.assert_close(rewards, sim.world.energy[slots] - self.energy_at_start[slots])
        sim.world.genomes[slots, 0] = 123.0
        self.slots = slots.clone()
        self.checked += 1


def test_learn_gets_the_survivors_experience_and_changes_their_genomes(make_sim: MakeSim) -> None:
    plug = Learner()
    sim = make_sim(plugins=[plug])
    for _ in range(4):
        sim.step()
        assert plug.slots is not None
        assert bool(sim.world.alive[plug.slots].all())
        assert bool((sim.world.genomes[plug.slots, 0] == 123.0).all())
    assert plug.checked == 4


# ------------------------------------------------------------------------------- decision hooks


class FirstTwo:
    """Selection ``first-two``: the two lowest living slots each make one child alone."""

    ALIFE_STRATEGIES = {"selection": "first-two"}

    def __init__(self) -> None:
        self.parent_ids: list[np.ndarray] = []

    @hookimpl
    def alife_select_parents(self, sim: Simulation, slots: torch.Tensor, neighbours: torch.Tensor,
                             ready: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = slots.numel()
        assert torch.equal(slots, alive_slots(sim))
        assert neighbours.shape == (n,) and neighbours.dtype == torch.int64
        assert ready.shape == (n,) and ready.dtype == torch.bool
        has = neighbours >= 0
        assert bool(sim.world.alive[neighbours[has]].all())
        # the first two that can pay for a child (the engine refuses a parent that cannot)
        a = sim.config.agent
        parents = slots[sim.world.energy[slots] >= a.child_energy + a.birth_cost][:2]
        self.parent_ids.append(sim.world.ids[parents].numpy().copy())
        return parents, torch.full_like(parents, -1)


def test_select_parents_decides_who_reproduces(make_sim: MakeSim) -> None:
    plug = FirstTwo()
    sim = make_sim(plugins=[plug], overrides={"strategies.selection": "first-two"})
    assert sim.hooks.chosen["selection"] == "first-two"
    for step in range(8):
        sim.step()
        births = sim.last_births
        assert births is not None and len(births) == 2
        np.testing.assert_array_equal(births.parent_ids[:, 0], plug.parent_ids[step])
        assert bool((births.parent_ids[:, 1] == -1).all())
    assert sim.totals["births"] == 16


class MateRecorder:
    """Mating ``always`` or ``never`` (by constructor), recording the proposals."""

    def __init__(self, accept: bool) -> None:
        self.accept = accept
        self.ALIFE_STRATEGIES = {"mating": "always" if accept else "never"}
        self.proposals = 0

    @hookimpl
    def alife_mate(self, sim: Simulation, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        assert a.shape == b.shape and a.dim() == 1
        assert bool(sim.world.alive[a].all()) and bool(sim.world.alive[b].all())
        assert bool((a != b).all())
        self.proposals += a.numel()
        return torch.full(a.shape, self.accept, dtype=torch.bool)


@pytest.mark.parametrize("accept", [True, False])
def test_mate_decides_whether_a_child_has_two_parents(make_sim: MakeSim, accept: bool) -> None:
    plug = MateRecorder(accept)
    sim = make_sim(plugins=[plug], overrides={"strategies.mating": plug.ALIFE_STRATEGIES["mating"]})
    two_parent = one_parent = 0
    for _ in range(40):
        sim.step()
        if sim.last_births is not None:
            two = int((sim.last_births.parent_ids[:, 1] >= 0).sum())
            two_parent += two
            one_parent += len(sim.last_births) - two
    assert plug.proposals > 0 and one_parent > 0
    if accept:
        assert two_parent == plug.proposals
    else:
        assert two_parent == 0


class MutationCounter:
    """A wrapper around the mutation role: counts how many genomes it varied."""

    def __init__(self) -> None:
        self.varied = 0

    @hookimpl(wrapper=True)
    def alife_mutate(self, sim: Simulation, genomes: torch.Tensor, parents: torch.Tensor) -> Any:
        out = yield
        self.varied += out.shape[0]
        return out


class Cloning:
    """Reproduction ``clone``: a child is an exact copy of its first parent (no mutation role)."""

    ALIFE_STRATEGIES = {"reproduction": "clone"}

    def __init__(self) -> None:
        self.made: list[torch.Tensor] = []

    @hookimpl
    def alife_reproduce(self, sim: Simulation, parents: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
        assert parents.shape == partners.shape and parents.dim() == 1
        child = sim.world.genomes[parents].clone()
        self.made.append(child.clone())
        return child

    @hookimpl
    def alife_agents_born(self, sim: Simulation, births: Births) -> None:
        assert births.strategy == "clone"
        torch.testing.assert_close(sim.world.genomes[torch.as_tensor(births.slots)], self.made[-1])


def test_reproduce_makes_the_child_genomes(make_sim: MakeSim) -> None:
    plug, counter = Cloning(), MutationCounter()
    sim = make_sim(plugins=[plug, counter], overrides={"strategies.reproduction": "clone"})
    sim.run(30)
    assert sim.totals["births"] > 0
    assert sum(m.shape[0] for m in plug.made) == sim.totals["births"]
    assert counter.varied == 0  # the clone strategy never called the mutation role


def test_default_reproduction_goes_through_the_mutation_role(make_sim: MakeSim) -> None:
    counter = MutationCounter()
    sim = make_sim(plugins=[counter])
    sim.run(30)
    assert counter.varied == sim.totals["births"] > 0


class NoMutation:
    """Mutation ``none``: genomes pass unchanged; checks what it is given."""

    ALIFE_STRATEGIES = {"mutation": "none"}

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    def alife_mutate(self, sim: Simulation, genomes: torch.Tensor, parents: torch.Tensor) -> torch.Tensor:
        assert genomes.shape == (parents.numel(), sim.layout.size)
        assert bool(sim.world.alive[parents].all())
        self.calls += 1
        return genomes


class LikeParent:
    """Counts single-parent children whose genome equals their parent's, and those that differ."""

    def __init__(self) -> None:
        self.same = self.different = 0

    @hookimpl
    def alife_agents_born(self, sim: Simulation, births: Births) -> None:
        for slot, (p1, p2) in zip(births.slots, births.parent_ids, strict=True):
            if p2 == -1:
                parent_slot = int((sim.world.ids == int(p1)).nonzero()[0, 0])
                if torch.equal(sim.world.genomes[int(slot)], sim.world.genomes[parent_slot]):
                    self.same += 1
                else:
                    self.different += 1


def test_mutate_varies_the_children(make_sim: MakeSim) -> None:
    plug, kin = NoMutation(), LikeParent()
    sim = make_sim(plugins=[plug, kin], overrides={"strategies.mutation": "none"})
    sim.run(30)
    assert plug.calls > 0
    assert kin.same > 0 and kin.different == 0
    kin = LikeParent()
    make_sim(plugins=[kin]).run(30)  # the built-in gaussian operator
    assert kin.different > 0 and kin.same == 0


class Harmless:
    """Interaction ``harmless``: attacks do nothing."""

    ALIFE_STRATEGIES = {"interaction": "harmless"}

    def __init__(self) -> None:
        self.attacks = 0

    @hookimpl
    def alife_interact(self, sim: Simulation, attackers: torch.Tensor,
                       targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = attackers.numel()
        assert targets.shape == (m,)
        assert bool(sim.world.alive[attackers].all()) and bool(sim.world.alive[targets].all())
        self.attacks += m
        zero = torch.zeros(m)
        return zero, zero


def test_interact_decides_what_attacks_do(make_sim: MakeSim) -> None:
    predation = make_sim()
    predation.run(30)
    assert predation.totals["deaths_eaten"] > 0
    plug = Harmless()
    sim = make_sim(plugins=[plug], overrides={"strategies.interaction": "harmless"})
    sim.run(30)
    assert plug.attacks > 0
    assert sim.totals["deaths_eaten"] == 0


# ------------------------------------------------------------------------------- births and deaths


class Census:
    def __init__(self) -> None:
        self.born: list[Births] = []
        self.died: list[Deaths] = []

    @hookimpl
    def alife_agents_born(self, sim: Simulation, births: Births) -> None:
        k = len(births)
        assert k > 0
        assert births.ids.shape == births.slots.shape == births.species.shape == (k,)
        assert births.parent_ids.shape == (k, 2)
        slots = torch.as_tensor(births.slots)
        assert bool(sim.world.alive[slots].all())  # placed before the hook fires
        np.testing.assert_array_equal(sim.world.ids[slots].numpy(), births.ids)
        assert births.step == sim.step_count
        self.born.append(births)

    @hookimpl
    def alife_agents_died(self, sim: Simulation, deaths: Deaths) -> None:
        k = len(deaths)
        assert k > 0
        assert deaths.ids.shape == deaths.slots.shape == deaths.causes.shape == (k,)
        slots = torch.as_tensor(deaths.slots)
        # before their slots are freed: the dead are still there, with their ids
        assert bool(sim.world.alive[slots].all())
        np.testing.assert_array_equal(sim.world.ids[slots].numpy(), deaths.ids)
        assert int(deaths.causes.max()) < len(CAUSES)
        self.died.append(deaths)


def test_agents_born_and_died_report_every_birth_and_death_once(make_sim: MakeSim) -> None:
    plug = Census()
    sim = make_sim(plugins=[plug])
    sim.run(40)
    born = np.concatenate([b.ids for b in plug.born])
    died = np.concatenate([d.ids for d in plug.died])
    assert len(born) == sim.totals["births"] > 0
    assert len(died) == sim.totals["deaths"] > 0
    assert len(np.unique(born)) == len(born) and len(np.unique(died)) == len(died)
    assert born.min() >= 100  # the founders have ids 0..99; ids are never reused
    causes = np.bincount(np.concatenate([d.causes for d in plug.died]), minlength=len(CAUSES))
    for code, cause in enumerate(CAUSES):
        assert causes[code] == sim.totals[f"deaths_{cause}"]
    living = set(sim.state()["ids"].tolist())
    assert not living & set(died.tolist())
    assert living == (set(range(100)) | set(born.tolist())) - set(died.tolist())


# ------------------------------------------------------------------------------- wrappers


class Clamp:
    """A ``wrapper=True`` repair: whatever mutation operator runs, child weights stay in [-0.5, 0.5]."""

    @hookimpl(wrapper=True)
    def alife_mutate(self, sim: Simulation, genomes: torch.Tensor, parents: torch.Tensor) -> Any:
        out = yield
        return out.clamp(-0.5, 0.5)


def test_a_wrapper_adjusts_the_chosen_strategy_without_claiming_the_role(make_sim: MakeSim) -> None:
    plug = Census()
    sim = make_sim(plugins=[Clamp(), plug])
    assert sim.hooks.chosen["mutation"] == "gaussian"
    sim.run(30)
    slots = torch.as_tensor(np.concatenate([b.slots for b in plug.born]))
    assert slots.numel() > 0
    alive = sim.world.alive[slots]
    newest = slots[alive]
    assert float(sim.world.genomes[newest].abs().max()) <= 0.5
    founders = sim.world.alive & (sim.world.ids < 100)
    assert float(sim.world.genomes[founders].abs().max()) > 0.5  # the clamp touched only children


def test_a_wrapper_registered_mid_run_fires(make_sim: MakeSim) -> None:
    # the engine calls a role's single implementation directly while it has no wrappers; a
    # plugin registered later must still be seen
    plug = Census()
    sim = make_sim(plugins=[plug])
    sim.run(10)
    assert plug.born
    sim.hooks.register(Clamp(), name="clamp")
    plug.born.clear()
    sim.run(20)
    slots = torch.as_tensor(np.concatenate([b.slots for b in plug.born]))
    newest = slots[sim.world.alive[slots]]
    assert newest.numel() > 0
    assert float(sim.world.genomes[newest].abs().max()) <= 0.5


def test_every_sim_end_runs_even_when_one_raises(make_sim: MakeSim) -> None:
    class Closer:
        def __init__(self) -> None:
            self.closed = False

        @hookimpl
        def alife_sim_end(self, sim: Simulation) -> None:
            self.closed = True

    class BadCloser:
        @hookimpl
        def alife_sim_end(self, sim: Simulation) -> None:
            raise OSError("cannot flush")

    # pluggy calls the last registered first: the bad one runs before both closers
    first, last = Closer(), Closer()
    sim = make_sim(plugins=[first, last, BadCloser()])
    with pytest.raises(PluginError, match=r"^plugin 'BadCloser' raised in hook alife_sim_end: OSError: cannot flush"):
        sim.close()
    assert first.closed and last.closed


def test_a_failed_start_ends_the_plugins_already_started(make_sim: MakeSim) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.calls: list[str] = []

        @hookimpl
        def alife_sim_start(self, sim: Simulation) -> None:
            self.calls.append("start")

        @hookimpl
        def alife_sim_end(self, sim: Simulation) -> None:
            self.calls.append("end")

    class BadSettings:
        @hookimpl
        def alife_sim_start(self, sim: Simulation) -> None:
            raise ValueError("period must be > 0")

    # pluggy calls the last registered first: `opened` starts before BadSettings, `never` after
    never, opened = Recorder(), Recorder()
    with pytest.raises(PluginError, match=r"^plugin 'BadSettings' raised in hook alife_sim_start"):
        make_sim(plugins=[never, BadSettings(), opened])
    assert opened.calls == ["start", "end"]
    assert never.calls == []
