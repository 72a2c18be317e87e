"""Task policies: one batched forward pass equals each genome run alone; CNNs learn from pixels."""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces

from alife.config import BrainSection
from alife.generational import TaskRun
from alife.generational.policy import act, init_conv, policy_spec, task_layout
from alife.genome import init_genomes


def _genomes(spec, n: int, seed: int = 0):
    brain = BrainSection()
    layout = task_layout(spec, brain, hidden=6)
    g = torch.Generator().manual_seed(seed)
    genomes = init_genomes(layout, n, brain, 0.05, g)
    init_conv(genomes, layout, 1.0, g)
    return layout, genomes


def test_batched_cnn_equals_one_genome_at_a_time():
    spec = policy_spec(spaces.Box(0, 255, (12, 10, 3), np.uint8), spaces.Box(-1.0, 3.0, (2,)))
    assert spec.image and not spec.discrete
    layout, genomes = _genomes(spec, 5)
    obs = torch.randint(0, 256, (5, 12, 10, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    together = act(genomes, layout, spec, obs, "tanh")
    alone = np.concatenate([act(genomes[i:i + 1], layout, spec, obs[i:i + 1], "tanh") for i in range(5)])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)
    assert together.shape == (5, 2) and (together >= -1).all() and (together <= 3).all()
    assert len(np.unique(together[:, 0].round(5))) == 5  # every genome its own network


def test_discrete_vector_policy_picks_the_argmax():
    spec = policy_spec(spaces.Box(-1, 1, (2, 3)), spaces.Discrete(4))
    assert spec.n_in == 6 and spec.n_act == 4
    layout, genomes = _genomes(spec, 3)
    a = act(genomes, layout, spec, torch.randn(3, 2, 3), "tanh")
    assert a.shape == (3,) and a.dtype.kind == "i" and ((0 <= a) & (a < 4)).all()


def test_clip_mapping_clips_linear_outputs():
    spec = policy_spec(spaces.Box(-1, 1, (3,)), spaces.Box(-0.5, 0.5, (1,)))
    layout, genomes = _genomes(spec, 8)
    layout.view(genomes, "policy.b2").fill_(10.0)
    a = act(genomes, layout, spec, torch.zeros(8, 3), "clip")
    assert (a == 0.5).all()


def test_cnn_policy_reads_pixels_on_a_tiny_image_task(tiny_image_env_id):
    """A policy blind to its pixels scores about 4 of 8; the CNN population must find 8."""
    world = {"task": {"env_id": tiny_image_env_id, "generations": 12, "population": 24, "episodes": 2,
                      "elite": 2, "parents": 6, "hidden": 8, "heldout_episodes": 20, "threshold": 7.5},
             "mutation": {"sigma_init": 0.2}}
    run = TaskRun(world, seed=0)
    assert run.spec.image and "policy.conv0.w" in run.layout
    s = run.run()
    assert s["history"][0]["mean"] < 6.0  # chance is 4 of 8
    assert s["reached_threshold"] and s["heldout_mean"] >= 7.5
