"""Play a batch of seeded episodes in several processes (``task.workers``).

Episodes are independent (row ``b``: genome row ``b`` from ``reset(seed=seeds[b])``), so a batch
splits across processes without changing any return: row ``b`` goes to process ``b % workers``
(interleaved, so each process gets a share of every genome's episodes and of the long ones). This
process plays its share while ``workers - 1`` helper processes (``spawn``ed once, each with its own
environments, single-threaded) play theirs. The environments of non-classic-control tasks step one
by one in Python (Box2D on LunarLander), so the work is CPU-bound and scales with free cores; the
returns and step counts are the same as with one process.

Helpers play on the CPU: a run on ``cuda`` sends its genome rows to them as numpy arrays.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import torch

from alife.generational.episodes import EpisodePool

_POOL: EpisodePool | None = None
_LAYOUT: Any = None


def _init(env_id: str, max_episode_steps: int, source: str, layout: Any) -> None:
    global _POOL, _LAYOUT
    torch.set_num_threads(1)
    _POOL = EpisodePool(env_id, max_episode_steps, source)
    _LAYOUT = layout


def _play(genomes: np.ndarray, seeds: np.ndarray, mapping: str) -> tuple[np.ndarray, int, float]:
    assert _POOL is not None
    c0 = time.process_time()
    returns, steps = _POOL.play(torch.from_numpy(genomes), _LAYOUT, seeds, mapping)
    return returns, steps, time.process_time() - c0


class ParallelPool:
    """:class:`EpisodePool`'s ``play`` spread over ``workers`` processes (this one included)."""

    def __init__(self, pool: EpisodePool, layout: Any, workers: int):
        if workers < 2:
            raise ValueError("ParallelPool needs workers >= 2; use the EpisodePool itself otherwise")
        self.local, self.workers = pool, workers
        #: CPU seconds the helper processes spent playing (``time.process_time`` there)
        self.helper_cpu = 0.0
        ctx = multiprocessing.get_context("spawn")
        self.executor = ProcessPoolExecutor(
            workers - 1, mp_context=ctx, initializer=_init,
            initargs=(pool.env_id, pool.max_episode_steps, pool.source, layout))

    def __getattr__(self, name: str) -> Any:
        # spec, reward_threshold, limit, envs ...: the local pool's
        return getattr(self.local, name)

    def play(self, genomes: torch.Tensor, layout: Any, seeds: np.ndarray,
             mapping: str = "tanh") -> tuple[np.ndarray, int]:
        b, w = genomes.shape[0], self.workers
        seeds = np.asarray(seeds)
        if b < 2 * w:  # too few episodes to be worth the round trip
            return self.local.play(genomes, layout, seeds, mapping)
        parts = [np.arange(i, b, w) for i in range(w)]
        rows = genomes.detach().cpu().numpy()
        futures = [self.executor.submit(_play, np.ascontiguousarray(rows[idx]), seeds[idx], mapping)
                   for idx in parts[1:]]
        mine = torch.from_numpy(parts[0]).to(genomes.device)
        r0, steps = self.local.play(genomes.index_select(0, mine), layout, seeds[parts[0]], mapping)
        returns = np.empty(b, dtype=np.float64)
        returns[parts[0]] = r0
        for idx, f in zip(parts[1:], futures, strict=True):
            r, s, cpu = f.result()
            returns[idx] = r
            steps += s
            self.helper_cpu += cpu
        return returns, steps

    def close(self) -> None:
        try:
            self.executor.shutdown(wait=True, cancel_futures=True)
        finally:
            self.local.close()
