"""Selection rules against known answers: tournament, truncation, linear ranking, rank-based fitness sharing
(all-negative fitness included), novelty search and its archive, the elitism wrapper; fitness
reaching the rules through the fitness event; the rules' worlds."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from alife import checkpoint as ck
from alife.plugins import hookimpl
from alife.plugins.manager import PluginError
from alife.simulation import Simulation
from alife.strategies import selection_rules as R
from alife.strategies.elitism import Elitism, keep_best

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"world.width": 32, "world.height": 32, "world.initial_agents": 120, "world.capacity": 1024}


def fake_task(fitness, species=None, k=None, seed=0, crossover=0.0):
    """A task runner's surface as the rules see it: the generation's genomes in slots 0..n-1."""
    n = len(fitness)
    species = torch.zeros(n, dtype=torch.long) if species is None else torch.as_tensor(species)
    return SimpleNamespace(generator=torch.Generator().manual_seed(seed), offspring_count=n if k is None else k,
                           config=SimpleNamespace(task=SimpleNamespace(crossover=crossover)), step_count=0,
                           world=SimpleNamespace(capacity=n, species=species), device="cpu", mode="task")


def told(rule, sim, fitness):
    """Set the rule up; the generation's slots and fitness, as the runner passes them to selection."""
    rule.setup(sim)
    return torch.arange(len(fitness)), torch.as_tensor(fitness, dtype=torch.float64)


def select(rule, sim, given):
    slots, fitness = given
    none = torch.full_like(slots, -1)
    return rule.alife_select_parents(sim, slots, none, torch.ones_like(slots, dtype=torch.bool), fitness)


# ------------------------------------------------------------------ ranks
def test_tied_ranks():
    r = R.tied_ranks(torch.tensor([-3.0, 7.0, -3.0, 0.5, -10.0]))
    assert r.tolist() == [2.5, 5.0, 2.5, 4.0, 1.0]


# ------------------------------------------------------------------ tournament
@pytest.mark.parametrize("size", [1, 3])
def test_tournament_picks_the_max_of_size_uniform_draws(size):
    n, draws = 8, 200_000
    g = torch.Generator().manual_seed(1)
    score = torch.randperm(n, generator=g).double() - 100.0  # distinct, negative; rank r = score + 100
    won = R.tournament(score, draws, size, g)
    freq = torch.bincount((score[won] + 100).long(), minlength=n).double() / draws
    r = torch.arange(n).double()
    expected = ((r + 1) / n) ** size - (r / n) ** size  # P(max of `size` uniform draws has rank r)
    assert torch.allclose(freq, expected, atol=0.004), (freq, expected)


def test_tournament_strategy_ranks_by_fitness():
    fitness = [5.0, -1.0, 9.0, 3.0]
    sim = fake_task(fitness, k=40_000)
    rule = R.Tournament()
    rule.params = R.TournamentParams(size=2)
    parents, partners = select(rule, sim, told(rule, sim, fitness))
    freq = torch.bincount(parents, minlength=4).double() / parents.numel()
    # ranks 3, 1, 4, 2 of 4: P = (r/4)^2 - ((r-1)/4)^2
    expected = torch.tensor([5 / 16, 1 / 16, 7 / 16, 3 / 16], dtype=torch.float64)
    assert torch.allclose(freq, expected, atol=0.01)
    assert bool((partners == -1).all())  # crossover 0


def test_truncation_draws_uniformly_from_the_best_parents_negative_fitness_included():
    from alife.strategies.truncation import Truncation

    fitness = [-3.0, -0.5, -9.0, -1.0, -0.7, -2.0]  # the best three: slots 1, 4, 3
    sim = fake_task(fitness, k=30_000, crossover=0.5)
    sim.config.task.parents = 3
    rule = Truncation()
    parents, partners = select(rule, sim, told(rule, sim, fitness))
    freq = torch.bincount(parents, minlength=6).double() / parents.numel()
    expected = torch.tensor([0, 1 / 3, 0, 1 / 3, 1 / 3, 0], dtype=torch.float64)
    assert torch.allclose(freq, expected, atol=0.015), freq
    paired = partners >= 0
    assert abs(float(paired.double().mean()) - 0.5) < 0.015  # task.crossover
    assert set(partners[paired].tolist()) <= {1, 3, 4} and bool((partners[paired] != parents[paired]).all())


def test_a_rule_ranks_the_fitness_it_is_given_not_an_attribute():
    sim = fake_task([1.0, 2.0, 3.0], k=2000)
    sim.fitness = torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)  # an attribute the rule must not read
    rule = R.Tournament()
    rule.params = R.TournamentParams(size=3)
    parents, _ = select(rule, sim, told(rule, sim, [1.0, 2.0, 3.0]))
    freq = torch.bincount(parents, minlength=3).double() / parents.numel()
    assert float(freq[2]) > float(freq[0])  # best of 3 draws: slot 2 most often ((3/3)^3 - (2/3)^3 = 0.70)
    assert abs(float(freq[2]) - 19 / 27) < 0.03


def test_crossover_partners_differ_from_their_parent():
    fitness = list(range(10))
    sim = fake_task(fitness, k=2000, crossover=0.5)
    rule = R.Tournament()
    parents, partners = select(rule, sim, told(rule, sim, fitness))
    two = partners >= 0
    assert 0.3 < float(two.double().mean()) < 0.5  # 0.5, less the draws of the parent itself
    assert not bool((partners[two] == parents[two]).any())


# ------------------------------------------------------------------ linear ranking
def test_linear_ranking_probabilities():
    score = torch.tensor([0.3, -8.0, 12.0, -1.0, 4.0])  # ranks 3, 1, 5, 2, 4
    p = R.linear_ranking_probs(score, 1.5)
    # Baker: ((2 - s) + 2 (s - 1) (r - 1) / (n - 1)) / n = 0.1, 0.15, 0.2, 0.25, 0.3 for r = 1..5
    assert torch.allclose(p, torch.tensor([0.2, 0.1, 0.3, 0.15, 0.25], dtype=torch.float64))
    assert torch.allclose(R.linear_ranking_probs(score, 1.0), torch.full((5,), 0.2, dtype=torch.float64))
    assert torch.allclose(R.linear_ranking_probs(score, 2.0)[[1, 2]], torch.tensor([0.0, 0.4], dtype=torch.float64))


def test_rank_strategy_draws_the_linear_ranking_distribution():
    fitness = [0.3, -8.0, 12.0, -1.0, 4.0]
    sim = fake_task(fitness, k=100_000)
    rule = R.LinearRanking()
    parents, _ = select(rule, sim, told(rule, sim, fitness))
    freq = torch.bincount(parents, minlength=5).double() / parents.numel()
    assert torch.allclose(freq, torch.tensor([0.2, 0.1, 0.3, 0.15, 0.25], dtype=torch.float64), atol=0.006)


# ------------------------------------------------------------------ fitness sharing
CROWDED = torch.tensor([0] * 8 + [1] * 2)  # species 0 holds 8 genomes, species 1 two


def naive_sharing(fitness, species):
    """The public prototype's sharing: raw fitness over the species' size (higher is better)."""
    _, inv, counts = torch.unique(species, return_inverse=True, return_counts=True)
    return fitness.double() / counts[inv].double()


def favours_crowding(score_fn) -> bool:
    """All-negative fitness; the crowded species is *worse* (-10 against -9). A sharing rule that
    prefers the crowded species' genomes, or gives it the larger total share, rewards crowding."""
    fitness = torch.tensor([-10.0] * 8 + [-9.0] * 2)
    s = score_fn(fitness, CROWDED)
    crowded, sparse = s[:8], s[8:]
    # what a proportional draw gives each species (scores shifted to be positive, as a roulette must)
    w = s - s.min() + 1e-9
    return bool(crowded.max() >= sparse.min()) or float(w[:8].sum()) >= float(w[8:].sum())


def test_the_crowding_check_catches_dividing_negative_fitness():
    assert favours_crowding(naive_sharing)  # -10/8 = -1.25 beats -9/2 = -4.5: crowding rewarded


def test_rank_sharing_with_negative_fitness_does_not_favour_the_crowded_species():
    assert not favours_crowding(R.shared_rank_scores)
    # known answer: ranks 1..8 (mean 4.5) over 8, ranks 9, 10 over 2: species totals 4.5 and 9.5
    s = R.shared_rank_scores(torch.tensor([-10.0] * 8 + [-9.0] * 2), CROWDED)
    assert float(s[:8].sum()) == pytest.approx(4.5) and float(s[8:].sum()) == pytest.approx(9.5)
    # and the strategy draws children in those proportions
    fitness = [-10.0] * 8 + [-9.0] * 2
    sim = fake_task(fitness, species=CROWDED, k=50_000)
    rule = R.FitnessSharing()
    parents, _ = select(rule, sim, told(rule, sim, fitness))
    assert float((parents < 8).double().mean()) == pytest.approx(4.5 / 14, abs=0.01)


def test_rank_sharing_with_equal_fitness_splits_between_species_not_genomes():
    for value in (-7.0, 0.0, 7.0):
        s = R.shared_rank_scores(torch.full((10,), value), CROWDED)
        p = s / s.sum()
        assert float(p[:8].sum()) == pytest.approx(0.5) and float(p[8]) == pytest.approx(4 * float(p[0]))


def test_rank_sharing_with_positive_fitness():
    fitness = torch.tensor([1.0, 4.0, 2.0, 30.0, 3.0])
    species = torch.tensor([0, 0, 0, 1, 1])  # ranks 1, 4, 2 | 5, 3
    s = R.shared_rank_scores(fitness, species)
    assert torch.allclose(s, torch.tensor([1 / 3, 4 / 3, 2 / 3, 5 / 2, 3 / 2], dtype=torch.float64))


# ------------------------------------------------------------------ novelty
def test_novelty_is_the_mean_distance_to_the_k_nearest():
    b = torch.tensor([[0.0], [1.0], [2.0], [3.0], [10.0]])
    nov = R.novelty_scores(b, b, 2, torch.arange(5))
    assert torch.allclose(nov, torch.tensor([1.5, 1.0, 1.0, 1.5, 7.5]))
    assert int(torch.argmax(nov)) == 4  # the outlier is the most novel


def novelty_rule(**params):
    rule = R.NoveltySearch()
    rule.params = R.NoveltyParams(**params)
    rule.setup(SimpleNamespace(mode="world", device="cpu"))
    return rule


def test_the_archive_counts_as_neighbours_grows_and_is_bounded():
    rule = novelty_rule(k=1, archive_size=3, archive_add=1)
    pop = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0]])
    rows = torch.arange(3)
    nov = rule.novelty(pop, rows)
    assert int(torch.argmax(nov)) == 2
    rule.remember(pop, nov)
    assert rule.filled == 1 and torch.equal(rule.archive[0], pop[2])  # the most novel went in
    # the outlier now has its own behaviour in the archive as a neighbour: no longer novel
    assert float(rule.novelty(pop, rows)[2]) == 0.0
    for i in range(5):
        rule.remember(torch.tensor([[float(i), 9.0]]), torch.ones(1))
    assert rule.filled == 3 and rule.added == 6 and rule.archive.shape[0] == 3
    assert sorted(rule.archive[:, 0].tolist()) == [2.0, 3.0, 4.0]  # a ring: the newest three
    back = novelty_rule(k=1, archive_size=3, archive_add=1)
    back.load_state_dict(rule.state_dict())
    assert torch.equal(back.archive, rule.archive) and (back.next, back.added) == (rule.next, rule.added)
    with pytest.raises(ValueError, match="archive_size"):
        novelty_rule(archive_size=2).load_state_dict(rule.state_dict())


def test_novelty_in_the_world_is_checkpointed_and_resumes_exactly(tmp_path):
    world = {"strategies": {"selection": "novelty"}, "plugin": {"novelty": {"archive_size": 40}}}
    ref = Simulation(world, seed=4, device="cpu", overrides=SMALL)
    ref.run(120, stop_on_extinction=False)
    first = Simulation(world, seed=4, device="cpu", overrides=SMALL)
    first.run(60, stop_on_extinction=False)
    path = ck.save_checkpoint(first, tmp_path / "novelty.h5")
    back = ck.load_checkpoint(path, world=first.config)
    back.run(60, stop_on_extinction=False)
    a, b = back.hooks.get_plugin("novelty"), ref.hooks.get_plugin("novelty")
    assert b.added > 40 and b.filled == 40  # grew past its bound and stayed there
    assert torch.equal(a.archive, b.archive) and a.added == b.added
    for name in ("genomes", "energy", "ids"):
        assert np.array_equal(getattr(back.world, name).numpy(), getattr(ref.world, name).numpy()), name


def test_novelty_in_the_world_lets_the_most_novel_eligible_reproduce():
    seen = []

    class Watch:
        @hookimpl(wrapper=True)
        def alife_select_parents(self, sim, slots, neighbours, ready):
            out = yield
            rule = sim.hooks.get_plugin("novelty")
            a = sim.config.agent
            ok = (sim.world.energy[slots] >= a.reproduce_energy) & (sim.world.age[slots] >= a.min_reproduce_age)
            if int(ok.sum()) >= 2:
                most = slots[ok][int(torch.argmax(rule.last_novelty))]
                seen.append(bool(torch.isin(most, out[0])))
                assert set(out[0].tolist()) <= set(slots[ok].tolist())  # only the eligible
            return out

    sim = Simulation({"strategies": {"selection": "novelty"}}, seed=2, device="cpu", overrides=SMALL, plugins=[Watch()])
    sim.run(100)
    assert len(seen) > 10 and all(seen)


def test_task_default_behaviour_is_policy_outputs_on_fixed_probes(cartpole_task):
    from alife.generational.runner import TaskRun

    run = TaskRun(cartpole_task("novelty", generations=3, population=12), seed=0)
    rule = run.hooks.get_plugin("novelty")
    slots = run.world.alive_slots()
    b = run.behaviour(slots)
    assert b.shape == (12, rule.params.probes * 2) and bool((b.abs() <= 1).all())
    assert torch.equal(run.behaviour(slots), b)  # fixed probes: the same genomes, the same behaviour
    assert len({tuple(r) for r in b.tolist()}) == 12
    run.run()
    assert rule.filled == rule.added == 2 * rule.params.archive_add  # two selections ran
    run.close()


def test_task_behaviour_can_be_where_the_episodes_ended():
    """``behaviour = "final-observation"``: a genome's behaviour is the last observation of its
    training episodes (mean over them), what a replay of the same seeds ends on."""
    from alife.generational.runner import TaskRun

    run = TaskRun(ROOT / "worlds" / "mountain_car.toml", seed=0,
                  overrides={"task.generations": 2, "task.population": 6, "task.parents": 3, "task.episodes": 2,
                             "strategies.selection": "novelty", "plugin.novelty.behaviour": "final-observation"})
    rule = run.hooks.get_plugin("novelty")
    seen = []
    orig = run.evaluate

    def spy(genomes, seeds, slots=None):
        out = orig(genomes, seeds, slots)
        if slots is not None:
            seen.append((genomes.clone(), np.array(seeds)))
        return out

    run.evaluate = spy
    run.run()
    assert run.final_obs.shape == (6, 2)  # MountainCar: position, velocity
    assert rule.archive.shape[1] == 2 and rule.added == rule.params.archive_add  # one selection between two generations
    genomes, seeds = seen[-1]
    # replay genome 3 on the same seeds: its behaviour is the mean of where those episodes ended
    run.pool.play(genomes[3:4].expand(len(seeds), -1), run.layout, seeds, run.task.action_mapping)
    torch.testing.assert_close(run.final_obs[3], torch.from_numpy(run.pool.final_obs.mean(0)).float())
    assert bool((run.final_obs[:, 0] >= -1.2).all() and (run.final_obs[:, 0] <= 0.6).all())
    run.close()


# ------------------------------------------------------------------ elitism
def test_keep_best_puts_the_k_best_among_the_parents():
    slots = torch.tensor([0, 1, 2, 3, 4, 5])
    score = torch.tensor([-5.0, 8.0, -1.0, 9.0, 0.0, -7.0], dtype=torch.float64)  # best: 3, 1, 4
    parents = torch.tensor([5, 0, 5, 2, 1])
    partners = torch.tensor([0, -1, 2, -1, -1])
    p, q = keep_best(parents, partners, slots, score, torch.ones(6, dtype=torch.bool), 3)
    # 1 is already a parent; 3 and 4 replace the lowest-scoring proposals (the two of slot 5)
    assert p.tolist() == [3, 0, 4, 2, 1] and q.tolist() == [-1, -1, -1, -1, -1]  # replaced rows lose partners
    assert parents.tolist() == [5, 0, 5, 2, 1]  # the rule's answer is not edited in place
    # eligibility: an elite that cannot pay is passed over
    eligible = torch.tensor([True, True, True, False, True, True])
    p, _ = keep_best(parents, partners, slots, score, eligible, 3)
    assert set(p.tolist()) >= {1, 4, 2}


def test_elitism_wrapper_on_a_task_makes_the_best_breed(cartpole_task):
    from alife.generational.runner import TaskRun

    record = {"checked": 0}

    class Spy:
        @hookimpl
        def alife_fitness(self, sim, fitness):
            record["best"] = set(fitness.slots[np.argsort(-fitness.values, kind="stable")[:3]].tolist())

        @hookimpl
        def alife_agents_born(self, sim, births):
            assert record["best"] <= set(births.parent_slots[:, 0].tolist())
            record["checked"] += 1

    world = cartpole_task("tournament", generations=5, population=16)
    world["plugin"] = {"tournament": {"size": 1}, "elitism": {"k": 3}}  # uniform draws: the best would often miss
    world["plugins"] = ["alife.strategies.elitism"]
    TaskRun(world, seed=0, plugins=[Spy()]).run()
    assert record["checked"] == 4


def test_elitism_wrapper_in_the_world_makes_the_best_payers_parents():
    checked = []

    class Outer:  # registered after the elitism plugin, so its wrapper sees elitism's answer
        @hookimpl(wrapper=True)
        def alife_select_parents(self, sim, slots, neighbours, ready):
            out = yield
            st, a = sim.world, sim.config.agent
            can = slots[st.energy[slots] >= a.child_energy + a.birth_cost]
            if out[0].numel() >= 2 and can.numel() >= 2:
                best = can[torch.argsort(st.lifetime_energy[can], descending=True, stable=True)[:2]]
                checked.append(bool(torch.isin(best, out[0]).all()))
            return out

    world = {"plugins": ["alife.strategies.elitism"], "plugin": {"elitism": {"k": 2}}}
    sim = Simulation(world, seed=3, device="cpu", overrides=SMALL, plugins=[Outer()])
    assert isinstance(sim.hooks.get_plugin("elitism"), Elitism)
    sim.run(80)
    assert len(checked) > 10 and all(checked)


# ------------------------------------------------------------------ modes and worlds
@pytest.mark.parametrize("rule", ["tournament", "rank", "fitness-sharing"])
def test_fitness_rules_are_refused_in_the_world(rule):
    with pytest.raises(PluginError, match=f"{rule}.*runs only in a task run"):
        Simulation({"strategies": {"selection": rule}}, seed=0, device="cpu", overrides=SMALL)


@pytest.fixture
def cartpole_task():
    def make(selection, **task):
        t = {"env_id": "CartPole-v1", "generations": 4, "population": 16, "episodes": 1, "elite": 2,
             "parents": 4, "hidden": 8, "heldout_episodes": 3, "stop_at_threshold": False}
        t.update(task)
        return {"name": "selection-test", "task": t, "mutation": {"sigma_init": 0.1},
                "strategies": {"selection": selection}}
    return make


def test_cartpole_tournament_world_reaches_the_threshold():
    from alife.generational.runner import TaskRun

    s = TaskRun(ROOT / "worlds" / "cartpole_tournament.toml", seed=0,
                overrides={"task.generations": 15, "task.heldout_episodes": 20}).run()
    assert s["strategies"]["selection"] == "tournament"
    assert s["reached_threshold"], s["history"][-1]


def test_cartpole_novelty_world_runs_and_fills_its_archive():
    from alife.generational.runner import TaskRun

    run = TaskRun(ROOT / "worlds" / "cartpole_novelty.toml", seed=0,
                  overrides={"task.generations": 4, "task.heldout_episodes": 3, "task.stop_at_threshold": False})
    s = run.run()
    rule = run.hooks.get_plugin("novelty")
    assert s["strategies"]["selection"] == "novelty" and rule.added == 3 * rule.params.archive_add
    assert run.hooks.get_plugin("elitism").params.k >= 1
