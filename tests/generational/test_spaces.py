"""Any gymnasium space a policy can drive: observations flattened by gymnasium (batched), actions
read from the outputs per kind, and small tasks of each kind learnt."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector.utils import concatenate, create_empty_array

from alife.config import BrainSection
from alife.generational import TaskRun
from alife.generational.episodes import EpisodePool
from alife.generational.policy import ObsEncoder, act, policy_spec, task_layout
from alife.genome import init_genomes, mlp_forward

NESTED = spaces.Dict({
    "pos": spaces.Box(-1.0, 1.0, (2,)),
    "room": spaces.Discrete(3, start=2),
    "inner": spaces.Tuple((spaces.MultiDiscrete([[2, 3], [4, 1]]), spaces.MultiBinary(3),
                           spaces.Tuple((spaces.Discrete(5),)))),
}, seed=0)


@pytest.mark.parametrize("space", [spaces.Discrete(7, seed=1), spaces.Discrete(4, start=-2, seed=1),
                                   spaces.MultiDiscrete([3, 5, 2], seed=1), spaces.MultiBinary((2, 3), seed=1),
                                   spaces.Tuple((spaces.Discrete(32), spaces.Discrete(11), spaces.Discrete(2)), seed=1),
                                   NESTED])
def test_batched_encoding_is_gymnasiums_flatten_row_by_row(space):
    spec = policy_spec(space, spaces.Discrete(2))
    enc = ObsEncoder(spec)
    assert spec.n_in == spaces.flatdim(space) and not spec.image
    for n in (1, 5, 9, 5):  # the per-size batched spaces are cached; sizes come back
        items = [space.sample() for _ in range(n)]
        out = enc(items)
        ref = np.stack([spaces.flatten(space, o) for o in items]).astype(np.float32)
        assert out.dtype == np.float32 and out.shape == (n, spec.n_in)
        np.testing.assert_array_equal(out, ref)
        # what a batched environment returns: the observations already stacked part by part
        np.testing.assert_array_equal(enc.stacked(concatenate(space, items, create_empty_array(space, n))), ref)


def test_plain_box_observations_are_stacked_unchanged():
    spec = policy_spec(spaces.Box(0, 255, (8, 8, 1), np.uint8), spaces.Discrete(2))
    items = [np.full((8, 8, 1), i, np.uint8) for i in range(3)]
    out = ObsEncoder(spec)(items)
    assert spec.image and out.dtype == np.uint8 and out.shape == (3, 8, 8, 1) and (out[2] == 2).all()


def _outputs(spec, n=6, seed=0):
    brain = BrainSection()
    layout = task_layout(spec, brain, hidden=5)
    genomes = init_genomes(layout, n, brain, 1.0, torch.Generator().manual_seed(seed))
    x = torch.randn(n, spec.n_in, generator=torch.Generator().manual_seed(seed + 1))
    y = mlp_forward(genomes, layout, "policy", x, out_act="linear").numpy()
    return layout, genomes, x, y


def test_multi_discrete_action_is_the_argmax_of_each_part():
    spec = policy_spec(spaces.Box(-1, 1, (3,)), spaces.MultiDiscrete([3, 1, 4], start=[0, 5, -2]))
    assert spec.action == "multi-discrete" and spec.n_act == 8
    layout, genomes, x, y = _outputs(spec, n=16)
    a = act(genomes, layout, spec, x)
    want = np.stack([y[:, 0:3].argmax(1), np.full(16, 5), y[:, 4:8].argmax(1) - 2], 1)
    np.testing.assert_array_equal(a, want)
    assert all(spaces.MultiDiscrete([3, 1, 4], start=[0, 5, -2]).contains(r) for r in a)
    same = policy_spec(spaces.Box(-1, 1, (3,)), spaces.MultiDiscrete([[2, 2], [2, 2]]))  # equal parts, 2-D
    layout, genomes, x, y = _outputs(same)
    np.testing.assert_array_equal(act(genomes, layout, same, x), y.reshape(6, 4, 2).argmax(2).reshape(6, 2, 2))


def test_multi_binary_and_discrete_start_actions():
    spec = policy_spec(spaces.Box(-1, 1, (3,)), spaces.MultiBinary((2, 2)))
    layout, genomes, x, y = _outputs(spec, n=20)
    a = act(genomes, layout, spec, x)
    assert a.shape == (20, 2, 2) and set(np.unique(a)) == {0, 1}
    np.testing.assert_array_equal(a.reshape(20, 4), (y > 0).astype(np.int8))
    spec = policy_spec(spaces.Box(-1, 1, (3,)), spaces.Discrete(3, start=-1))
    layout, genomes, x, y = _outputs(spec)
    np.testing.assert_array_equal(act(genomes, layout, spec, x), y.argmax(1) - 1)


class DictTask(gym.Env):
    """8 steps; the observation is a Dict whose Discrete part ``target`` (and MultiBinary part
    ``flags``) say which action pays 1 (in halves for the two-part actions); a Box part is noise.
    A policy blind to them scores 2 of 8 (Discrete), 3 of 8 (MultiDiscrete), 4 of 8 (MultiBinary)."""

    def __init__(self, kind: str = "discrete"):
        self.kind = kind
        self.observation_space = spaces.Dict({"target": spaces.Discrete(4), "flags": spaces.MultiBinary(2),
                                              "noise": spaces.Box(-1.0, 1.0, (2,))})
        self.action_space = {"discrete": spaces.Discrete(4), "multi-discrete": spaces.MultiDiscrete([4, 2]),
                             "multi-binary": spaces.MultiBinary(2)}[kind]

    def _obs(self):
        self.o = {"target": int(self.np_random.integers(4)), "flags": self.np_random.integers(0, 2, 2).astype(np.int8),
                  "noise": self.np_random.uniform(-1, 1, 2).astype(np.float32)}
        return self.o

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        o = self.o
        if self.kind == "discrete":
            r = float(int(action) == o["target"])
        elif self.kind == "multi-discrete":
            r = 0.5 * (int(action[0]) == o["target"]) + 0.5 * (int(action[1]) == o["flags"][0])
        else:
            r = 0.5 * float((np.asarray(action) == o["flags"]).sum())
        self.t += 1
        return self._obs(), r, self.t >= 8, False, {}


def _dict_env(kind: str) -> str:
    env_id = f"AlifeTest/Dict-{kind}-v0"
    if env_id not in gym.registry:
        gym.register(id=env_id, entry_point=DictTask, kwargs={"kind": kind})
    return env_id


@pytest.mark.parametrize("kind,chance", [("discrete", 2.0), ("multi-discrete", 3.0), ("multi-binary", 4.0)])
def test_dict_observation_tasks_are_learnt(kind, chance):
    """A policy blind to the Dict's parts scores ``chance`` on average (20 held-out episodes: a
    standard error near 0.3); the evolved one must beat it by 2."""
    world = {"task": {"env_id": _dict_env(kind), "generations": 40, "population": 32, "episodes": 2,
                      "elite": 2, "parents": 6, "hidden": 8, "heldout_episodes": 20, "stop_at_threshold": False},
             "mutation": {"sigma_init": 0.2}}
    run = TaskRun(world, seed=0)
    assert run.spec.n_in == 4 + 2 + 2 and run.spec.action == kind
    s = run.run()
    assert s["history"][0]["mean"] < chance + 1.5
    assert s["heldout_mean"] >= chance + 2.0, s["heldout_mean"]


def test_blackjack_tuple_observation_runs():
    world = {"task": {"env_id": "Blackjack-v1", "generations": 4, "population": 16, "episodes": 20,
                      "elite": 2, "parents": 4, "hidden": 8, "heldout_episodes": 200}}
    run = TaskRun(world, seed=0)
    assert run.spec.n_in == 32 + 11 + 2 and run.spec.action == "discrete"
    s = run.run()
    assert s["generations"] == 4 and s["heldout_episodes"] == 200
    assert -1.0 <= s["heldout_mean"] <= 1.0 and s["env_steps"] >= 4 * 16 * 20


def test_taxi_world_runs_batched_from_its_transition_table():
    run = TaskRun("worlds/taxi.toml", seed=0, overrides={"task.generations": 2, "task.population": 8,
                                                         "task.episodes": 1, "task.elite": 1, "task.parents": 2,
                                                         "task.heldout_episodes": 5})
    assert type(run.pool.batched).__name__ == "TaxiBatch" and run.spec.n_in == 500
    s = run.run()
    assert s["threshold"] == 8 and s["env_steps"] <= 2 * 8 * 200


def test_taxi_batched_equals_gymnasium_stepping():
    fast, slow = EpisodePool("Taxi-v4"), EpisodePool("Taxi-v4", batched=False)
    assert fast.batched is not None and slow.batched is None
    layout = task_layout(fast.spec, BrainSection(), 8)
    genomes = init_genomes(layout, 24, BrainSection(), 1.0, torch.Generator().manual_seed(0))
    seeds = np.arange(24) + 11
    r1, n1 = fast.play(genomes, layout, seeds)
    r2, n2 = slow.play(genomes, layout, seeds)
    np.testing.assert_array_equal(r1, r2)
    assert n1 == n2 and len(set(r1.tolist())) > 1
