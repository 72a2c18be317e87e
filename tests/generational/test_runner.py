"""Generational runs: improvement, reproducibility, honest held-out seeds, and the shared hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from alife import hookimpl
from alife.generational import TaskRun
from alife.generational.episodes import HELDOUT_BASE, heldout_seeds


def test_cartpole_improves_over_generations(cartpole_world):
    run = TaskRun(cartpole_world(generations=8, population=24), seed=1)
    s = run.run()
    first, last = s["history"][0], s["history"][-1]
    assert last["mean"] > 2 * first["mean"]
    assert s["heldout_mean"] > 2 * first["mean"]
    assert s["generations"] == 8 and s["env_steps"] == last["env_steps"]


def test_same_seed_same_result(cartpole_world):
    def trace(seed: int) -> tuple:
        run = TaskRun(cartpole_world(generations=3), seed=seed)
        s = run.run()
        rows = [{k: v for k, v in h.items() if k != "wall_s"} for h in s["history"]]
        return rows, s["heldout_mean"], run.world.genomes.clone()

    a, b, c = trace(5), trace(5), trace(6)
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    assert a[0] != c[0]


def test_heldout_seeds_are_disjoint_from_training_seeds(cartpole_world):
    run = TaskRun(cartpole_world(generations=4, heldout_every=2, heldout_episodes=7), seed=0)
    seen: list[np.ndarray] = []
    play = run.pool.play

    def spy(genomes, layout, seeds, mapping="tanh", after_act=None):
        seen.append(np.asarray(seeds).copy())
        return play(genomes, layout, seeds, mapping, after_act)

    run.pool.play = spy
    s = run.run()
    held = set(heldout_seeds(7).tolist())
    heldout_calls = [x for x in seen if set(x.tolist()) <= held]
    training = np.concatenate([x for x in seen if not set(x.tolist()) <= held])
    assert len(heldout_calls) == 2  # every 2 generations (not repeated at the end) and at the end
    assert training.max() < HELDOUT_BASE and not held & set(training.tolist())
    assert len(s["heldout_history"]) == 2 and s["heldout_episodes"] == 7


def test_result_is_the_best_by_training_fitness_not_the_max_over_noisy_means(cartpole_world):
    run = TaskRun(cartpole_world(generations=2), seed=3)
    s = run.run()
    best = run.best_index()
    assert s["best_genome_id"] == int(run.world.ids[best])
    assert s["best_training_fitness"] == pytest.approx(float(run.fitness.max()))
    manual = run.evaluate(run.world.genomes[best:best + 1], heldout_seeds(10))[0][0]
    assert s["heldout_mean"] == pytest.approx(float(manual.mean()))


def test_fixed_eval_seeds_repeat_each_generation(cartpole_world):
    run = TaskRun(cartpole_world(generations=3, eval_seeds="fixed", episodes=2), seed=0)
    seen = []
    play = run.pool.play

    def spy(genomes, layout, seeds, mapping="tanh", after_act=None):
        if len(seeds) == 16 * 2:  # a generation's evaluation, not a confirmation or held-out
            seen.append(np.asarray(seeds).tolist())
        return play(genomes, layout, seeds, mapping, after_act)

    run.pool.play = spy
    run.run()
    assert len(seen) == 3 and seen[0] == seen[1] == seen[2]
    assert seen[0][:2] == seen[0][2:4] != seen[0][2:4][::-1]  # each genome plays both seeds


class Census:
    """A plugin counting the births and deaths a generational run reports."""

    def __init__(self):
        self.born: list = []
        self.died: list = []
        self.started = self.ended = 0

    @hookimpl
    def alife_sim_start(self, sim):
        self.started += 1

    @hookimpl
    def alife_sim_end(self, sim):
        self.ended += 1

    @hookimpl
    def alife_agents_born(self, sim, births):
        self.born.append(births)

    @hookimpl
    def alife_agents_died(self, sim, deaths):
        self.died.append(deaths)


def test_births_and_deaths_go_through_the_event_hooks(cartpole_world):
    census = Census()
    run = TaskRun(cartpole_world(generations=4, population=10, elite=2), seed=0, plugins=[census])
    run.run()
    assert census.started == census.ended == 1
    assert [len(b) for b in census.born] == [8, 8, 8]
    assert [len(d) for d in census.died] == [8, 8, 8]
    ids = np.concatenate([b.ids for b in census.born])
    assert len(set(ids.tolist())) == ids.size and ids.min() == 10  # never reused
    # every parent of generation g+1 was alive in generation g
    alive = set(range(10))
    for b, d in zip(census.born, census.died, strict=True):
        assert set(b.parent_ids[:, 0].tolist()) <= alive
        alive = (alive - set(d.ids.tolist())) | set(b.ids.tolist())
    assert set(run.world.ids.tolist()) == alive


def test_crossover_children_have_two_parents(cartpole_world):
    census = Census()
    run = TaskRun(cartpole_world(generations=2, population=12, crossover=1.0), seed=0, plugins=[census])
    run.run()
    second = census.born[0].parent_ids[:, 1]
    assert (second >= 0).any()  # the compatibility net accepts most pairs at the start
    assert (second != census.born[0].parent_ids[:, 0]).all()


def test_mutation_plugin_sees_the_simulation_names(cartpole_world):
    seen = {}

    class Spy:
        ALIFE_STRATEGIES = {"mutation": "spy"}

        @hookimpl
        def alife_mutate(self, sim, genomes, parents):
            seen.update(layout=sim.layout, seg=sim.segment_index, gen=sim.generator,
                        m=sim.config.mutation, rows=sim.world.genomes.shape[0])
            return genomes + 0.01 * torch.randn(genomes.shape, generator=sim.generator)

    world = cartpole_world(generations=2)
    world["strategies"] = {"mutation": "spy"}
    TaskRun(world, seed=0, plugins=[Spy()]).run()
    assert seen["rows"] == 16 and seen["seg"].numel() == seen["layout"].size


def test_box_actions_stay_in_bounds_on_pendulum():
    run = TaskRun({"task": {"env_id": "Pendulum-v1", "generations": 1, "population": 4,
                            "heldout_episodes": 2, "max_episode_steps": 20,
                            "elite": 1, "parents": 2}}, seed=0)
    from alife.generational.policy import act
    obs = torch.randn(4, 3) * 10
    a = act(run.world.genomes, run.layout, run.spec, obs, "tanh")
    assert a.shape == (4, 1) and (a >= -2).all() and (a <= 2).all()
    s = run.run()
    assert s["env_steps"] == 4 * 20 and s["heldout_env_steps"] == 2 * 20


def test_threshold_needs_confirmation_and_counts_its_steps(cartpole_world):
    run = TaskRun(cartpole_world(generations=30, population=20, threshold=300.0, confirm_episodes=6,
                                 stop_at_threshold=True), seed=0)
    evaluated = []
    play = run.pool.play

    def spy(genomes, layout, seeds, mapping="tanh", after_act=None):
        out = play(genomes, layout, seeds, mapping, after_act)
        evaluated.append(out[1])
        return out

    run.pool.play = spy
    s = run.run()
    assert s["reached_threshold"]
    best = run.best_index()
    assert run._ret_n[best] >= 6 and run.fitness[best] >= 300.0
    # every training step up to the threshold, confirmations included, is in the count
    assert s["env_steps_to_threshold"] == s["env_steps"] == sum(evaluated[:-1])
    assert s["generations_to_threshold"] == s["generations"]


def test_population_mean_threshold(cartpole_world):
    s = TaskRun(cartpole_world(generations=3, threshold=1.0, threshold_on="population",
                               stop_at_threshold=True), seed=0).run()
    assert s["reached_threshold"] and s["generations"] == 1 and s["threshold_on"] == "population"
    s = TaskRun(cartpole_world(generations=3, threshold=1e6, threshold_on="population"), seed=0).run()
    assert not s["reached_threshold"] and s["env_steps_to_threshold"] is None


def _fake_returns(run, value: float = 0.0):
    """Replace the episode player: every episode returns ``value``; records each call's size."""
    calls: list[int] = []

    def play(genomes, layout, seeds, mapping="tanh", after_act=None):
        calls.append(len(seeds))
        return np.full(len(seeds), value), 10 * len(seeds)

    run.pool.play = play
    return calls


@pytest.mark.parametrize("chunk, played", [(2, 2), (0, 4)])
def test_confirmation_demotes_a_lucky_newcomer(cartpole_world, chunk, played):
    run = TaskRun(cartpole_world(population=4, confirm_episodes=5, confirm_chunk=chunk), seed=0)
    # row 0: one lucky episode (100); row 1: 50 over 20 episodes; rows 2, 3: worse
    run._ret_sum[:] = [100.0, 50.0 * 20, 10.0, 0.0]
    run._ret_n[:] = [1, 20, 1, 1]
    run.fitness = torch.from_numpy(run._ret_sum / run._ret_n)
    calls = _fake_returns(run, 0.0)
    assert run.best_index() == 0
    assert run.confirm()
    # the newcomer played `chunk` episodes at a time (all 4 it lacked when chunk = 0) and fell back
    # to 100 / (1 + played) < 50; the next best already rests on 20 >= 5 episodes
    assert calls == [played]
    assert run._ret_n[0] == 1 + played and run.fitness[0] == pytest.approx(100.0 / (1 + played))
    assert run.best_index() == 1 and run.confirm_env_steps == run.env_steps == 10 * played
    # with a floor above the confirmed best, confirmation says no and plays nothing more
    assert not run.confirm(60.0) and calls == [played]


def test_confirm_every_scores_a_confirmed_genome(cartpole_world):
    # one episode per genome and 2 generations (and a threshold out of reach, so that the
    # threshold rule confirms nothing): without confirmation no genome has more than 2
    plain = TaskRun(cartpole_world(generations=2, episodes=1, threshold=1e9), seed=4).run()
    assert plain["best_training_episodes"] <= 2 and plain["confirm_env_steps"] == 0
    run = TaskRun(cartpole_world(generations=2, episodes=1, threshold=1e9, confirm_episodes=7,
                                 confirm_chunk=3, confirm_every=100), seed=4)
    sizes: list[int] = []
    play = run.pool.play

    def spy(genomes, layout, seeds, mapping="tanh", after_act=None):
        out = play(genomes, layout, seeds, mapping, after_act)
        sizes.append((len(seeds), out[1]))
        return out

    run.pool.play = spy
    s = run.run()
    best = run.best_index()
    assert s["best_genome_id"] == int(run.world.ids[best]) and run._ret_n[best] >= 7
    assert s["best_training_episodes"] == int(run._ret_n[best]) >= 7
    assert s["heldout_history"][-1]["training_episodes"] == s["best_training_episodes"]
    confirm_calls = [(n, st) for n, st in sizes if n <= 3]
    assert confirm_calls and all(n <= 3 for n, _ in confirm_calls)
    assert s["confirm_env_steps"] == sum(st for _, st in confirm_calls) > 0
    # every training step, confirmations included, is counted; held-out steps are not
    assert s["env_steps"] == sum(st for n, st in sizes if n != 10) == s["history"][-1]["env_steps"]


def test_max_env_steps_stops_the_run(cartpole_world):
    s = TaskRun(cartpole_world(generations=50, max_env_steps=10_000), seed=0).run()
    steps = [h["env_steps"] for h in s["history"]]
    assert s["generations"] < 50 and len(steps) >= 3 and steps[-1] >= 10_000 > steps[-2]


@pytest.mark.parametrize("env_id", ["CartPole-v1", "MountainCar-v0"])  # batched, and gymnasium's own step
def test_workers_play_the_same_episodes(cartpole_world, env_id):
    def trace(workers: int):
        run = TaskRun(cartpole_world(env_id=env_id, generations=3, episodes=2, max_episode_steps=60,
                                     heldout_every=2, workers=workers), seed=2)
        s = run.run()
        rows = [{k: v for k, v in h.items() if k != "wall_s"} for h in s["history"]]
        return rows, s, run

    (a, sa, ra), (b, sb, rb) = trace(1), trace(2)
    assert sb["workers"] == 2 and type(rb.pool).__name__ == "ProcessPool"
    assert a == b and torch.equal(ra.world.genomes, rb.world.genomes)
    assert sa["heldout_history"] == sb["heldout_history"] and sa["env_steps"] == sb["env_steps"]
    assert rb.pool.helper_cpu > 0  # the helper's CPU seconds are counted in train_cpu_s
