"""Batched classic-control dynamics reproduce gymnasium's own environments."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from alife.generational.batched import batched_for
from alife.generational.episodes import EpisodePool


@pytest.mark.parametrize("env_id,steps", [("CartPole-v1", 60), ("Acrobot-v1", 200), ("Pendulum-v1", 200)])
def test_batched_trajectories_match_gymnasium(env_id, steps):
    k = 6
    envs = [gym.make(env_id) for _ in range(k)]
    ref = [gym.make(env_id) for _ in range(k)]
    batch = batched_for(envs[0])
    seeds = np.arange(100, 100 + k)
    obs = batch.reset(envs, seeds)
    ref_obs = np.stack([e.reset(seed=int(s))[0] for e, s in zip(ref, seeds, strict=True)])
    np.testing.assert_array_equal(obs, ref_obs)
    rng = np.random.default_rng(0)
    rows = np.arange(k)
    for _ in range(steps):
        if env_id == "Pendulum-v1":
            actions = rng.uniform(-2.5, 2.5, size=(rows.size, 1)).astype(np.float32)
        else:
            actions = rng.integers(envs[0].action_space.n, size=rows.size)
        o, r, term = batch.step(rows, actions)
        out = [ref[i].unwrapped.step(actions[j]) for j, i in enumerate(rows)]
        np.testing.assert_allclose(o, np.stack([x[0] for x in out]), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(r, [x[1] for x in out], rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(term, [x[2] for x in out])
        rows = rows[~term]
        if rows.size == 0:
            break


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1", "Pendulum-v1"])
def test_batched_and_scalar_pools_agree_on_returns(env_id):
    from alife.config import BrainSection
    from alife.generational.policy import task_layout
    from alife.genome import init_genomes

    fast, slow = EpisodePool(env_id, 120), EpisodePool(env_id, 120, batched=False)
    assert fast.batched is not None and slow.batched is None
    layout = task_layout(fast.spec, BrainSection(), 8)
    genomes = init_genomes(layout, 8, BrainSection(), 0.1, torch.Generator().manual_seed(0))
    seeds = np.arange(8) + 7
    r1, n1 = fast.play(genomes, layout, seeds)
    r2, n2 = slow.play(genomes, layout, seeds)
    np.testing.assert_allclose(r1, r2, rtol=1e-4)
    assert n1 == n2 and n1 <= 8 * 120
