"""The strategy host: strategy objects, plugin state and arrays in checkpoints, heritable tensors,
species and fitness events, the speciation role, strategies mixed per lineage, learned weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from alife import checkpoint as ck
from alife.config import ConfigError, check_memory, load
from alife.errors import FileFormatError
from alife.genome import GenomeTensor, mlp_forward
from alife.plugins import hookimpl
from alife.plugins.manager import PluginError
from alife.simulation import Simulation
from alife.strategies.base import Strategy

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "one_fifth.py"
SMALL = {"world.width": 32, "world.height": 32, "world.initial_agents": 120, "world.capacity": 1024}


def one_fifth_world(**over):
    return {"plugins": [str(EXAMPLE)], "strategies": {"mutation": "one-fifth"},
            "plugin": {"one-fifth": {"window": 5, **over}}}


def sim_of(world=None, seed=3, **kw):
    return Simulation(world, seed=seed, device="cpu", overrides={**SMALL, **kw.pop("overrides", {})}, **kw)


def same_state(a: Simulation, b: Simulation) -> None:
    sa, sb = a.world.to_numpy(only_alive=False), b.world.to_numpy(only_alive=False)
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)
    for name in a.arrays.names():
        torch.testing.assert_close(a.arrays[name], b.arrays[name], rtol=0, atol=0)
    assert torch.equal(a.generator.get_state(), b.generator.get_state())


# ------------------------------------------------------------------ strategy objects
def test_strategy_params_are_checked_like_world_keys():
    with pytest.raises(PluginError, match=r"<dict>: plugin\.one-fifth\.windw: unknown key; did you mean 'window'"):
        sim_of(one_fifth_world(windw=3))
    with pytest.raises(PluginError, match=r"plugin\.one-fifth\.factor: expected a value <= 1.0, got 2.0"):
        sim_of(one_fifth_world(factor=2.0))
    sim = sim_of(one_fifth_world(factor=0.5))
    assert sim.hooks.get_plugin("one-fifth").params.factor == 0.5


def test_built_in_strategies_are_strategy_objects_and_two_simulations_do_not_share_them():
    a, b = sim_of(), sim_of()
    ga, gb = a.hooks.get_plugin("gaussian"), b.hooks.get_plugin("gaussian")
    assert isinstance(ga, Strategy) and isinstance(gb, Strategy) and ga is not gb
    assert a._builtin_reproduction()  # the fused CPU path is still chosen for the built-ins


# ------------------------------------------------------------------ plugin state and arrays in checkpoints
def test_resumed_stateful_strategy_repeats_the_uninterrupted_run(tmp_path):
    ref = sim_of(one_fifth_world())
    ref.run(300, stop_on_extinction=False)
    plug = ref.hooks.get_plugin("one-fifth")
    assert int(plug.trials.sum() + plug.successes.sum()) > 0 or (ref.arrays["one-fifth.sigma"] != 0.05).any()

    first = sim_of(one_fifth_world())
    first.run(150, stop_on_extinction=False)
    path = ck.save_checkpoint(first, tmp_path / "c.h5")
    resumed = ck.load_checkpoint(path, world=first.config)  # plugins come from the user's world, not the file
    assert torch.equal(resumed.hooks.get_plugin("one-fifth").trials, first.hooks.get_plugin("one-fifth").trials)
    resumed.run(150, stop_on_extinction=False)
    same_state(resumed, ref)
    assert torch.equal(resumed.hooks.get_plugin("one-fifth").successes, plug.successes)


def test_resume_refuses_missing_or_orphan_plugin_state(tmp_path):
    sim = sim_of(one_fifth_world())
    sim.run(20)
    path = ck.save_checkpoint(sim, tmp_path / "c.h5")
    import h5py

    with h5py.File(path, "a") as f:  # a checkpoint that lost the plugin's state
        del f["plugin_state/one-fifth"]
    with pytest.raises(FileFormatError, match="no state for plugin 'one-fifth'"):
        ck.load_checkpoint(path, world=sim.config)

    class Keeper:
        def __init__(self):
            self.n = torch.arange(3)

        @hookimpl
        def alife_step_end(self, sim, step):
            self.n += 1

        def state_dict(self):
            return {"n": self.n, "note": "json too"}

        def load_state_dict(self, state):
            assert state["note"] == "json too"
            self.n = torch.as_tensor(state["n"])

    plain = sim_of(plugins=[Keeper()])
    plain.run(5)
    p2 = ck.save_checkpoint(plain, tmp_path / "k.h5")
    back = ck.load_checkpoint(p2, plugins=[Keeper()])
    assert back.hooks.get_plugin("Keeper").n.tolist() == [5, 6, 7]
    with pytest.raises(FileFormatError, match="holds state for plugin\\(s\\) 'Keeper', which this run does not load"):
        ck.load_checkpoint(p2)


def test_plugin_arrays_inherit_grow_and_round_trip(tmp_path):
    class Arrays:
        @hookimpl
        def alife_setup(self, sim):
            sim.arrays.add_slot("t.first", fill=1.0, inherit="first")
            sim.arrays.add_slot("t.mean", shape=(2,), inherit="mean")
            sim.arrays.add_slot("t.reset", dtype=torch.int64, inherit="reset", fill=7)
            sim.arrays.add_species("t.sp", inherit="parent", fill=-1.0)

        @hookimpl
        def alife_step_start(self, sim, step):  # mark every living agent with its own slot
            sim.arrays["t.first"][: sim.world.hw] = torch.arange(sim.world.hw, dtype=torch.float32)
            sim.arrays["t.mean"][: sim.world.hw] = torch.arange(sim.world.hw, dtype=torch.float32)[:, None]
            sim.arrays["t.reset"][: sim.world.hw] = 0
            sp = sim.arrays["t.sp"]
            sp[:] = torch.arange(sp.shape[0], dtype=torch.float32)

        @hookimpl
        def alife_agents_born(self, sim, births):
            ps = torch.as_tensor(births.parent_slots)
            slots = torch.as_tensor(births.slots)
            first = sim.arrays["t.first"][slots]
            assert torch.equal(first, ps[:, 0].float())
            two = ps[:, 1] >= 0
            want = torch.where(two, (ps[:, 0] + ps[:, 1].clamp(min=0)).float() / 2, ps[:, 0].float())
            assert torch.equal(sim.arrays["t.mean"][slots][:, 0], want)
            assert (sim.arrays["t.reset"][slots] == 7).all()
            self.births = getattr(self, "births", 0) + len(births)

        @hookimpl
        def alife_species_born(self, sim, species, parents, step):
            sp = sim.arrays["t.sp"]
            assert sp.shape[0] == sim.world.species_origin.shape[0]
            # a daughter species starts from its parent species' row (which is the parent's id)
            assert torch.equal(sp[torch.as_tensor(species)], torch.as_tensor(parents).float())
            self.species = getattr(self, "species", 0) + len(species)

    plug = Arrays()
    sim = sim_of(plugins=[plug], overrides={"mutation.species_threshold": 0.3})
    sim.run(120)
    assert plug.births > 100 and plug.species > 0
    path = ck.save_checkpoint(sim, tmp_path / "a.h5")
    back = ck.load_checkpoint(path, plugins=[Arrays()])
    for name in sim.arrays.names():
        assert torch.equal(back.arrays[name], sim.arrays[name])
    # the memory check counts them
    bytes_per_slot = sim.arrays.slot_bytes()
    assert bytes_per_slot == 4 + 8 + 8
    cfg = load(None, {"world.capacity": 1_000_000})
    check_memory(cfg, 100, available=10**9)
    with pytest.raises(ConfigError, match="world.capacity"):
        check_memory(cfg, 100, available=10**9, extra_slot_bytes=1000)


def test_checkpoint_of_a_run_without_the_arrays_plugin_is_refused(tmp_path):
    class Reg:
        @hookimpl
        def alife_setup(self, sim):
            sim.arrays.add_slot("x.y")

    path = ck.save_checkpoint(sim_of(), tmp_path / "c.h5")
    with pytest.raises(FileFormatError, match=r"lacks the plugin array\(s\) x.y"):
        ck.load_checkpoint(path, plugins=[Reg()])


# ------------------------------------------------------------------ heritable tensors
class LearningRate:
    @hookimpl
    def alife_genome_tensors(self, config):
        return [GenomeTensor("mutator", "lr", (2,), init=0.5)]


def test_plugin_tensor_is_in_the_layout_initialised_and_mutated(tmp_path):
    sim = sim_of(plugins=[LearningRate()])
    e = sim.layout["mutator.lr"]
    assert e.segment == "mutator" and e.shape == (2,)
    assert sim.layout.entries[sim.layout.entries.index(e) - 1].segment == "mutator"  # after the segment's own
    lr = sim.layout.view(sim.world.genomes[sim.world.alive], "mutator.lr")
    assert torch.all(lr == 0.5)
    sim.run(100)
    born = sim.world.alive & (sim.world.generation > 0)
    assert bool(born.any())
    assert not torch.all(sim.layout.view(sim.world.genomes[born], "mutator.lr") == 0.5)  # varied with its segment
    path = ck.save_checkpoint(sim, tmp_path / "c.h5")
    with pytest.raises(FileFormatError, match="it has genome tensor 'mutator.lr', which this run's plugins do not add"):
        ck.load_checkpoint(path)


def test_clashing_genome_tensors_are_refused():
    class Clash:
        @hookimpl
        def alife_genome_tensors(self, config):
            return [GenomeTensor("policy", "w1", (3,))]

    with pytest.raises(PluginError, match="'policy.w1' is declared twice"):
        sim_of(plugins=[Clash()])


# ------------------------------------------------------------------ events and roles
def test_species_extinct_and_fitness_events_agree_with_the_state():
    class Watch:
        def __init__(self):
            self.born, self.extinct, self.told = [], [], 0

        @hookimpl
        def alife_species_born(self, sim, species, parents, step):
            self.born += species.tolist()

        @hookimpl
        def alife_species_extinct(self, sim, species, step):
            self.extinct += species.tolist()

        @hookimpl
        def alife_agents_died(self, sim, deaths):
            self.last = deaths

        @hookimpl
        def alife_fitness(self, sim, fitness):
            assert fitness.mode == "world"
            np.testing.assert_array_equal(fitness.ids, self.last.ids)
            np.testing.assert_array_equal(fitness.values, sim.world.lifetime_energy[fitness.slots].double().numpy())
            np.testing.assert_array_equal(fitness.offspring, sim.world.children[fitness.slots].numpy())
            self.told += len(fitness)

    w = Watch()
    sim = sim_of(plugins=[w], overrides={"mutation.species_threshold": 0.3})
    sim.run(200)
    st = sim.world
    n_sp = st.species_origin.shape[0]
    living = set(st.species[st.alive].tolist())
    assert w.born == list(range(sim.config.world.initial_species, n_sp))
    assert not living & set(w.extinct)
    assert set(range(n_sp)) - living == set(w.extinct)  # every species without members was announced once
    assert len(w.extinct) == len(set(w.extinct))
    assert w.told == sim.totals["deaths"]


def test_behaviour_default_and_override():
    sim = sim_of()
    slots = sim.world.alive_slots()
    b = sim.behaviour(slots)
    assert b.shape == (slots.numel(), 7)

    class Mine:
        @hookimpl
        def alife_behaviour(self, sim, slots):
            return torch.ones(slots.numel(), 2)

    assert sim_of(plugins=[Mine()]).behaviour(slots).shape == (slots.numel(), 2)


class OneSpecies(Strategy):
    role, name = "speciation", "one-species"

    @hookimpl
    def alife_speciate(self, sim, genomes, parent_species, step):
        return torch.zeros_like(parent_species) + self.answer

    answer = 0


def test_speciation_is_a_role():
    sim = sim_of(plugins=[OneSpecies()], overrides={"strategies.speciation": "one-species",
                                                   "mutation.species_threshold": 0.01})
    assert not sim._builtin_reproduction()
    sim.run(60)
    assert sim.world.species_origin.shape[0] == sim.config.world.initial_species
    assert set(sim.world.species[sim.world.alive].tolist()) <= set(range(sim.config.world.initial_species))
    bad = OneSpecies()
    bad.answer = 10**9
    sim = sim_of(plugins=[bad], overrides={"strategies.speciation": "one-species"})
    with pytest.raises(PluginError, match=r"one-species.*species ids in \[0, 4\)"):
        sim.run(60)


class Chooses(Strategy):
    """A selection rule that answers what ``pick(sim, slots)`` gives."""

    role, name = "selection", "chooses"

    def __init__(self, pick):
        super().__init__()
        self.pick = pick

    @hookimpl
    def alife_select_parents(self, sim, slots, neighbours, ready, fitness):
        return self.pick(sim, slots)


def _dead_slot(sim):
    dead = (~sim.world.alive[: sim.world.hw]).nonzero().squeeze(1)
    return int(dead[0]) if dead.numel() else sim.world.hw - 1


@pytest.mark.parametrize("pick, message", [
    (lambda sim, s: (torch.tensor([10**6]), torch.tensor([-1])), r"parent slot 1000000 outside the world's slots"),
    (lambda sim, s: (s[:1], torch.tensor([10**6])), r"partner slot 1000000 outside \[-1,"),
    (lambda sim, s: (torch.tensor([_dead_slot(sim)]), torch.tensor([-1])), r"as a parent, but no agent lives there"),
    (lambda sim, s: (s[:1], s[:1]), r"as its own partner"),
    (lambda sim, s: (s[:1].repeat(1000), torch.full((1000,), -1)), r"first parent of 1000 child\(ren\)"),
], ids=["parent-out-of-range", "partner-out-of-range", "dead-parent", "own-partner", "cannot-pay"])
def test_a_selection_answer_naming_slots_it_must_not_is_refused(pick, message):
    sim = sim_of(plugins=[Chooses(pick)], overrides={"strategies.selection": "chooses"})
    sim.world.alive[sim.world.alive_slots()[-1]] = False  # one free slot below the high-water mark
    with pytest.raises(PluginError, match=r"strategy selection='chooses'.*" + message):
        sim.run(1)


# ------------------------------------------------------------------ mixtures
class Tagged(Strategy):
    """A mutation that counts its calls and marks nothing: a copy."""

    role = "mutation"

    def __init__(self):
        super().__init__()
        self.calls, self.rows = 0, 0

    @hookimpl
    def alife_mutate(self, sim, genomes, parents):
        self.calls += 1
        self.rows += genomes.shape[0]
        assert (sim.world.strategy[parents] == sim.strategy_names.index(self.name)).all()
        return genomes


class Left(Tagged):
    name = "left"


class Right(Tagged):
    name = "right"


def mixed(rate=0.0, shares=(0.25, 0.75), plugins_extra=(), **kw):
    left, right = Left(), Right()
    sim = sim_of({"mixture": {"role": "mutation", "strategies": ["left", "right"], "shares": list(shares),
                              "switch_rate": rate}}, plugins=[left, right, *plugins_extra], **kw)
    return sim, left, right


def test_mixture_shares_inheritance_and_one_call_per_strategy():
    sim, left, right = mixed()
    assert sim.population_by_strategy() == {"left": 30, "right": 90}
    born = []

    class Births:
        @hookimpl
        def alife_agents_born(self, sim, births):
            assert births.strategy_names == ("left", "right")
            st = sim.world.strategy
            np.testing.assert_array_equal(births.strategies, st[torch.as_tensor(births.slots)].numpy())
            # switch_rate 0: a child carries its first parent's strategy
            np.testing.assert_array_equal(births.strategies, st[torch.as_tensor(births.parent_slots[:, 0])].numpy())
            assert set(births.strategy_of_rows()) <= {"left", "right"}
            born.append(len(births))

    sim.hooks.register(Births(), "births-watch")
    steps_with_births = 0
    for _ in range(150):
        sim.step()
        if sim.stats["births"]:
            steps_with_births += 1
    assert sum(born) == sim.totals["births"] > 50
    assert left.calls + right.calls <= 2 * steps_with_births and left.rows + right.rows == sim.totals["births"]
    assert left.calls > 0 and right.calls > 0


def test_mixture_switch_rate_one_always_switches():
    sim, *_ = mixed(rate=1.0)
    seen = []

    class W:
        @hookimpl
        def alife_agents_born(self, sim, births):
            seen.append((births.strategies.copy(), sim.world.strategy[torch.as_tensor(births.parent_slots[:, 0])].numpy().copy()))

    sim.hooks.register(W(), "w")
    sim.run(80)
    assert seen
    for child, parent in seen:
        assert (child != parent).all()


def test_mixture_is_refused_with_an_unknown_strategy():
    with pytest.raises(PluginError, match="mixture.strategies: mutation strategy 'nope': no loaded plugin"):
        sim_of({"mixture": {"role": "mutation", "strategies": ["gaussian", "nope"]}})
    with pytest.raises(ConfigError, match="mixture.strategies: expected at least two"):
        sim_of({"mixture": {"role": "mutation", "strategies": ["gaussian"]}})


def test_mixture_world_runs_and_checkpoints(tmp_path):
    sim = Simulation(ROOT / "worlds" / "mixture.toml", seed=2, device="cpu", overrides=SMALL)
    assert set(sim.population_by_strategy()) == {"gaussian", "one-fifth"}
    sim.run(100)
    path = ck.save_checkpoint(sim, tmp_path / "m.h5")
    back = ck.load_checkpoint(path, world=sim.config)
    assert back.population_by_strategy() == sim.population_by_strategy()
    back.run(50)
    sim.run(50)
    same_state(back, sim)


# ------------------------------------------------------------------ within-life learning
def test_learned_weights_reach_the_brains_through_data_writes():
    class Learn:
        @hookimpl
        def alife_learn(self, sim, slots, observations, actions, rewards):
            sim.world.genomes.data[slots] += 0.3  # bypasses torch's version counter

    sim = sim_of(plugins=[Learn()])
    sim.run(3)
    obs = sim.sense()
    n = obs.shape[0]
    got = sim._policy_cpu.forward(sim.world.genomes, obs)
    want = mlp_forward(sim.world.genomes[:n], sim.layout, "policy", obs)
    alive = sim.world.alive[:n]
    assert (got[alive] - want[alive]).abs().max() < 1e-5


# ------------------------------------------------------------------ the example on a task
def test_example_strategy_runs_on_cartpole():
    pytest.importorskip("gymnasium")
    from alife.generational.runner import TaskRun

    run = TaskRun(ROOT / "docs" / "examples" / "one_fifth_cartpole.toml", seed=1,
                  overrides={"task.generations": 3, "task.heldout_episodes": 3, "task.stop_at_threshold": False})
    run.run()
    plug = run.hooks.get_plugin("one-fifth")
    assert run.arrays["one-fifth.sigma"].shape == (1,)
    # 3 generations x 30 genomes told; the window (10) adapted sigma at least once
    assert float(run.arrays["one-fifth.sigma"][0]) != 0.1 or int(plug.trials[0]) > 0
    spec = importlib.util.spec_from_file_location("one_fifth_lines", EXAMPLE)
    assert spec is not None
    assert len(EXAMPLE.read_text().splitlines()) < 150


def test_lineage_file_records_each_births_strategy_and_population_by_strategy(tmp_path):
    from alife.lineage import open as open_lineage
    from alife.lineage.analysis import strategy_population
    from alife.recording.lineage import LineageRecorder

    sim, *_ = mixed(plugins_extra=[LineageRecorder(tmp_path / "lineage.h5", commit_every=10)])
    seen = {}

    class Every10:
        @hookimpl
        def alife_step_end(self, sim, step):
            if step % 10 == 0:
                seen[step] = sim.population_by_strategy()

    sim.hooks.register(Every10(), "every10")
    sim.run(120)
    sim.close()
    lin = open_lineage(tmp_path / "lineage.h5")
    assert {"left", "right"} <= set(lin.strategy_names)
    roots = lin.births[lin.births["step"] == -1]
    assert (roots["strategy"].value_counts()[["left", "right"]] == [30, 90]).all()  # the mixture's shares
    table = strategy_population(lin, every=10)
    for step, counts in seen.items():
        assert table.loc[step, "left"] == counts["left"] and table.loc[step, "right"] == counts["right"], step


def test_mating_counters_agree_with_the_births():
    class Count:
        def __init__(self):
            self.two = 0

        @hookimpl
        def alife_agents_born(self, sim, births):
            self.two += int((births.parent_ids[:, 1] >= 0).sum())

    c = Count()
    sim = sim_of(plugins=[c], overrides={"agent.contact_radius": 3.0})
    sim.run(150)
    t = sim.totals
    assert t["births_two_parents"] == c.two > 0
    assert 0 < t["pairs_refused"] <= t["pairs_proposed"]
    assert t["births_two_parents"] <= t["pairs_proposed"] - t["pairs_refused"]
    means = sim.mean_action()
    assert set(means) == {"turn", "speed", "eat", "attack", "mate"} and all(-1 <= v <= 1 for v in means.values())
