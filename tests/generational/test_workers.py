"""The evaluation seam: plain data across processes, and the same returns for any worker count."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from alife.config import BrainSection
from alife.generational.episodes import EpisodePool
from alife.generational.policy import task_layout
from alife.generational.workers import ProcessPool, evaluator, job, play_job, task_of
from alife.genome import init_genomes


def _setup(env_id: str, n: int):
    pool = EpisodePool(env_id)
    layout = task_layout(pool.spec, BrainSection(), 8)
    genomes = init_genomes(layout, n, BrainSection(), 1.0, torch.Generator().manual_seed(3))
    return pool, layout, genomes, np.arange(n, dtype=np.int64) + 1000


def test_a_job_is_plain_data_and_plays_like_the_pool():
    pool, layout, genomes, seeds = _setup("Blackjack-v1", 12)
    work = job(genomes, layout, seeds, "tanh")
    assert set(work) == {"genomes", "layout", "seeds", "mapping"}
    assert work["genomes"].dtype == np.float32 and work["genomes"].shape == genomes.shape
    assert json.loads(json.dumps(work["layout"])) == layout.to_table()  # a list of dicts, nothing of ours
    task = task_of(pool)
    assert json.loads(json.dumps(task)) == task
    out = play_job(task, work)
    r, steps = pool.play(genomes, layout, seeds)
    np.testing.assert_array_equal(out["returns"], r)
    assert out["steps"] == steps and out["cpu_s"] >= 0


def test_one_worker_is_the_pool_itself():
    pool, *_ = _setup("CartPole-v1", 2)
    assert evaluator(pool, 1) is pool
    with pytest.raises(ValueError, match="workers >= 2"):
        ProcessPool(pool, 1)


@pytest.mark.parametrize("env_id,workers", [("Taxi-v4", 3), ("Blackjack-v1", 2)])  # batched; Tuple observations
def test_any_worker_count_gives_the_same_returns(env_id, workers):
    local, layout, genomes, seeds = _setup(env_id, 30)
    want, want_steps = local.play(genomes, layout, seeds)
    procs = evaluator(EpisodePool(env_id), workers)
    try:
        assert isinstance(procs, ProcessPool) and procs.spec == local.spec
        got, steps = procs.play(genomes, layout, seeds)
        got_np, steps_np = procs.play(genomes.numpy(), layout.to_table(), seeds)  # numpy rows, a table
    finally:
        procs.close()
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_np, want)
    assert steps == steps_np == want_steps and procs.helper_cpu > 0
