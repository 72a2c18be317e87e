"""One host, two modes: every hook that has a meaning on a task fires in a task run; a plugin
implementing a hook the task never fires, or a strategy made for the world, is refused at start
with a message naming plugin, hook and mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from alife.generational.runner import TaskRun
from alife.plugins import hookimpl
from alife.plugins.hookspecs import HOOK_MODES
from alife.plugins.manager import PluginError
from alife.strategies.base import Strategy

ROOT = Path(__file__).resolve().parents[2]
TASK = {"task.generations": 4, "task.population": 12, "task.elite": 2, "task.parents": 4,
        "task.heldout_episodes": 2, "task.stop_at_threshold": False, "task.crossover": 0.5,
        "mutation.species_threshold": 0.05}


def run_task(plugins, **over):
    run = TaskRun(ROOT / "worlds" / "cartpole.toml", seed=1, plugins=plugins, overrides={**TASK, **over})
    run.run()
    return run


class Everything:
    """Implements every hook a task run fires, counting the calls and checking the arguments."""

    def __init__(self):
        self.calls: dict[str, int] = {}

    def _n(self, name):
        self.calls[name] = self.calls.get(name, 0) + 1

    @hookimpl
    def alife_genome_tensors(self, config):
        self._n("alife_genome_tensors")
        return [__import__("alife.genome", fromlist=["GenomeTensor"]).GenomeTensor("mutator", "extra", (1,), init=2.0)]

    @hookimpl
    def alife_setup(self, sim):
        self._n("alife_setup")
        sim.arrays.add_slot("everything.mark", fill=1.0, inherit="first")

    @hookimpl
    def alife_sim_start(self, sim):
        self._n("alife_sim_start")

    @hookimpl
    def alife_sim_end(self, sim):
        self._n("alife_sim_end")

    @hookimpl
    def alife_step_start(self, sim, step):
        self._n("alife_step_start")

    @hookimpl
    def alife_step_end(self, sim, step):
        self._n("alife_step_end")

    @hookimpl
    def alife_learn(self, sim, slots, observations, actions, rewards):
        self._n("alife_learn")
        assert observations.shape == (slots.numel(), 0) and rewards.shape == (slots.numel(),)
        np.testing.assert_allclose(rewards.numpy(), sim.last_returns, rtol=1e-6)

    @hookimpl
    def alife_fitness(self, sim, fitness):
        self._n("alife_fitness")
        assert fitness.mode == "task" and len(fitness) == sim.population
        np.testing.assert_array_equal(fitness.values, sim.fitness.numpy())

    @hookimpl
    def alife_agents_born(self, sim, births):
        self._n("alife_agents_born")
        assert len(births) == sim.task.population - sim.task.elite

    @hookimpl
    def alife_agents_died(self, sim, deaths):
        self._n("alife_agents_died")
        assert (deaths.causes == 4).all()  # removed

    @hookimpl
    def alife_species_born(self, sim, species, parents, step):
        self._n("alife_species_born")

    @hookimpl
    def alife_species_extinct(self, sim, species, step):
        self._n("alife_species_extinct")

    @hookimpl
    def alife_behaviour(self, sim, slots):
        self._n("alife_behaviour")
        return sim.world.lifetime_energy[slots].unsqueeze(1)


class Watching(Strategy):
    """Mutation ``watching``: Gaussian steps, checking the names a strategy reads exist."""

    role, name = "mutation", "watching"

    @hookimpl
    def alife_mutate(self, sim, genomes, parents):
        assert sim.arrays["everything.mark"].shape[0] == sim.world.capacity
        return genomes + 0.05 * torch.randn(genomes.shape, generator=sim.generator)


class Speciate(Strategy):
    role, name = "speciation", "counting-kin"

    def __init__(self):
        super().__init__()
        self.calls = 0

    @hookimpl
    def alife_speciate(self, sim, genomes, parent_species, step):
        self.calls += 1
        return parent_species


def test_every_task_hook_fires():
    every, spec = Everything(), Speciate()
    run = run_task([every, Watching(), spec], **{"strategies.mutation": "watching",
                                                 "strategies.speciation": "counting-kin"})
    assert run.behaviour(run.world.alive_slots()).shape == (12, 1)
    gens = 4
    c = every.calls
    for hook in ("alife_genome_tensors", "alife_setup", "alife_sim_start", "alife_sim_end"):
        assert c[hook] == 1, hook
    for hook in ("alife_step_start", "alife_step_end", "alife_learn"):
        assert c[hook] == gens, hook
    for hook in ("alife_fitness", "alife_agents_born", "alife_agents_died"):
        assert c[hook] == gens - 1, hook
    assert c["alife_behaviour"] == 1
    assert spec.calls == gens - 1
    assert "mutator.extra" in run.layout
    # the plugin's slot array followed the genomes: elites kept their rows, children got their parent's
    assert (run.arrays["everything.mark"] == 1.0).all()


def test_species_events_fire_in_task_mode_with_kin_drift():
    every = Everything()
    run = run_task([every], **{"mutation.species_threshold": 0.02, "task.generations": 6})
    n_sp = run.world.species_origin.shape[0]
    assert n_sp > 1 and every.calls.get("alife_species_born", 0) >= 1
    assert every.calls.get("alife_species_extinct", 0) >= 1
    living = set(run.world.species[run.world.alive].tolist())
    assert living <= set(range(n_sp))


def test_elites_keep_their_slots():
    seen = {}

    class Keep:
        @hookimpl
        def alife_fitness(self, sim, fitness):
            order = np.argsort(-fitness.values, kind="stable")[: sim.task.elite]
            seen["elite"] = (order, fitness.ids[order])

        @hookimpl
        def alife_agents_born(self, sim, births):
            order, ids = seen["elite"]
            np.testing.assert_array_equal(sim.world.ids[torch.as_tensor(order)].numpy(), ids)
            assert not np.isin(births.slots, order).any()
            seen["checked"] = seen.get("checked", 0) + 1

    run_task([Keep()])
    assert seen["checked"] == 3


class ForceLeft:
    """``alife_after_act`` on a task: records each call and makes every episode push left."""

    def __init__(self, push: bool = True):
        self.calls: list[tuple[int, int, int]] = []
        self.push = push

    @hookimpl
    def alife_after_act(self, sim, slots, actions):
        assert slots.dtype == torch.int64 and actions.shape == (slots.numel(), 2)  # CartPole: 2 logits
        assert bool((slots >= 0).all()) and bool((slots < sim.population).all())
        self.calls.append((sim.generation, slots.numel(), int(torch.unique(slots).numel())))
        if self.push:
            actions[:, 0] = 1e6  # action 0 (push left) wins the argmax in every episode
            actions[:, 1] = -1e6


def test_after_act_fires_every_env_step_of_training_episodes_and_its_edits_are_acted_on():
    plug = ForceLeft()
    run = run_task([plug], **{"task.episodes": 3, "task.generations": 2})
    n = run.population
    # every env step of the training episodes: at the first step every genome plays 3 episodes
    assert plug.calls[0] == (0, 3 * n, n)
    assert sum(k for _, k, _ in plug.calls) == run.env_steps
    assert {g for g, _, _ in plug.calls} == {0, 1}
    # always pushing left, a CartPole episode ends within ~10 steps, whatever the genome
    assert max(h["max"] for h in run.history) < 15
    calls = len(plug.calls)
    run.heldout(0)  # held-out episodes score the genome alone: no hook
    assert len(plug.calls) == calls


def _no_wall(run):
    return [{k: v for k, v in h.items() if k != "wall_s"} for h in run.history]


def test_after_act_that_edits_nothing_leaves_the_run_as_it_was():
    quiet, plain = run_task([ForceLeft(push=False)]), run_task([])
    assert _no_wall(quiet) == _no_wall(plain)
    assert torch.equal(quiet.world.genomes, plain.world.genomes)


def test_motor_noise_plugin_runs_unchanged_on_a_task():
    """The example plugin written for the world (``plugins/motor_noise.py``) runs on CartPole."""
    others = [p.stem for p in (ROOT / "plugins").glob("*.py") if p.stem not in ("motor_noise", "__init__")]
    noisy = TaskRun(ROOT / "worlds" / "cartpole.toml", seed=1, plugins_dirs=[ROOT / "plugins"], blocked=others,
                    overrides={**TASK, "plugin.motor_noise.sigma": 5.0})
    noisy.run()
    plain = run_task([])
    assert _no_wall(noisy) != _no_wall(plain)  # the noise reached the actions


@pytest.mark.parametrize("hook", sorted(HOOK_MODES))
def test_a_hook_the_task_never_fires_is_refused_at_start(hook):
    assert "task" not in HOOK_MODES[hook]
    sig = {"alife_after_act": "sim, slots, actions", "alife_interact": "sim, attackers, targets",
           "alife_resource_regrowth": "sim, step", "alife_observations": "config",
           "alife_observe": "sim, n, obs"}[hook]
    ns: dict = {"hookimpl": hookimpl}
    exec(f"class Only:\n    @hookimpl\n    def {hook}(self, {sig}):\n        return None\n", ns)
    with pytest.raises(PluginError, match=rf"plugin 'Only' implements {hook}, which a task run .* never fires "
                                          r"\(it fires in the persistent world\)"):
        TaskRun(ROOT / "worlds" / "cartpole.toml", seed=1, plugins=[ns["Only"]()], overrides=TASK)


def test_the_same_plugin_runs_in_the_world_with_world_hooks():
    from alife.simulation import Simulation

    class Regrow:
        @hookimpl
        def alife_resource_regrowth(self, sim, step):
            return 1.0

    sim = Simulation(None, seed=1, plugins=[Regrow()], overrides={"world.width": 24, "world.height": 24,
                                                                  "world.initial_agents": 40})
    sim.run(3)


def test_selection_receives_fitness_as_an_argument():
    seen = []

    class Sees(Strategy):
        role, name, modes = "selection", "sees-fitness", ("task",)

        @hookimpl
        def alife_select_parents(self, sim, slots, neighbours, ready, fitness):
            seen.append((fitness.clone(), sim.fitness[slots].clone()))
            k = sim.offspring_count
            best = slots[torch.argsort(fitness, descending=True)[:1]].repeat(k)
            return best, torch.full_like(best, -1)

    run_task([Sees()], **{"strategies.selection": "sees-fitness"})
    assert len(seen) == 3
    for got, want in seen:
        assert got.dtype == torch.float64 and torch.equal(got, want)
