"""The world as a PettingZoo ParallelEnv: conformance, births and deaths, names never reused."""

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test
from pettingzoo.utils.conversions import parallel_to_aec

import alife
from alife.plugins import hookimpl

TINY = {"world__width": 24, "world__height": 24, "world__initial_agents": 60, "world__capacity": 400}


class Census:
    """Counts births and deaths across every simulation the env builds (one per reset)."""

    def __init__(self):
        self.born, self.died = 0, 0

    @hookimpl
    def alife_agents_born(self, sim, births):
        self.born += len(births)

    @hookimpl
    def alife_agents_died(self, sim, deaths):
        self.died += len(deaths)


def test_parallel_api_test_with_births_and_deaths():
    census = Census()
    env = alife.make_env(plugins=[census], **TINY)
    parallel_api_test(env, num_cycles=1000)
    assert census.born > 0 and census.died > 0


def test_aec_api_test_with_births_and_deaths():
    census = Census()
    env = alife.make_env(plugins=[census], **TINY)
    api_test(parallel_to_aec(env), num_cycles=1000)
    assert census.born > 0 and census.died > 0


def test_newborns_in_every_dict_and_dead_terminated():
    env = alife.make_env(seed=3, **TINY)
    obs, _ = env.reset(seed=3)
    seen_birth = seen_death = False
    ever = set(env.agents)
    for _ in range(300):
        before = set(env.agents)
        acts = {a: env.action_space(a).sample() for a in env.agents}
        obs, rew, term, trunc, info = env.step(acts)
        keys = set(obs)
        assert keys == set(rew) == set(term) == set(trunc) == set(info)
        born = keys - before
        if born:
            seen_birth = True
            assert not any(term[a] for a in born)
            assert not born & ever, "a name was reused"
            ever |= born
        dead = {a for a in keys if term[a]}
        if dead:
            seen_death = True
            assert dead <= before | born
            assert not dead & set(env.agents)
        assert set(env.agents) == keys - dead
        for a in env.agents:
            assert env.observation_space(a).contains(obs[a])
    assert seen_birth and seen_death
    assert all(a.startswith("a") and a[1:].isdigit() for a in ever)


def test_names_match_state_ids():
    env = alife.make_env(seed=1, **TINY)
    env.reset(seed=1)
    for _ in range(50):
        env.step({a: np.zeros(5, np.float32) for a in env.agents})
    ids = env.sim.state()["ids"]
    assert sorted(env.agents) == sorted(f"a{i}" for i in ids)


def test_rewards_are_energy_changes():
    env = alife.make_env(seed=2, **TINY)
    env.reset(seed=2)
    e0 = dict(zip((f"a{i}" for i in env.sim.state()["ids"]), env.sim.state()["energy"], strict=True))
    _, rew, term, _, _ = env.step({a: np.zeros(5, np.float32) for a in env.agents})
    e1 = dict(zip((f"a{i}" for i in env.sim.state()["ids"]), env.sim.state()["energy"], strict=True))
    for a, r in rew.items():
        if a in e0 and a in e1:
            assert r == pytest.approx(e1[a] - e0[a], abs=1e-5)
        elif term[a]:
            assert r == pytest.approx(-e0[a], abs=1e-5)


def test_reset_seed_reproduces():
    env = alife.make_env(**TINY)
    runs = []
    for _ in range(2):
        obs, _ = env.reset(seed=5)
        for _ in range(20):
            obs, *_ = env.step({a: np.full(5, 0.5, np.float32) for a in env.agents})
        runs.append((list(env.agents), np.stack([obs[a] for a in env.agents])))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_max_steps_truncates():
    env = alife.make_env(max_steps=5, **TINY)
    env.reset(seed=0)
    for _ in range(5):
        _, _, _, trunc, _ = env.step({a: np.zeros(5, np.float32) for a in env.agents})
    assert trunc and all(trunc.values())
    assert env.agents == []


def test_warmup_steps_hand_over_the_world_a_simulation_reaches_on_its_own():
    env = alife.make_env(**TINY)
    obs, infos = env.reset(seed=4, options={"warmup_steps": 30})
    sim = alife.Simulation(seed=4, overrides={k.replace("__", "."): v for k, v in TINY.items()})
    sim.run(30)
    st = sim.state()
    assert env.sim.step_count == 30
    assert sorted(env.agents) == sorted(f"a{i}" for i in st["ids"])
    assert set(obs) == set(env.agents) and set(infos) == set(env.agents)
    assert len(env.possible_agents) == int(sim.world.next_id) > 60  # births during the warm-up
    np.testing.assert_array_equal(env.sim.state()["genomes"], st["genomes"])
    env.step({a: np.zeros(5, np.float32) for a in env.agents})
    with pytest.raises(ValueError, match="warmup_steps"):
        env.reset(seed=4, options={"warmup_steps": -1})
