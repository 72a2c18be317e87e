"""The evaluation seam: where a batch of seeded episodes is played (``task.workers``).

Everything that plays episodes for a run is an :class:`Evaluator`::

    play(genomes, layout, seeds, mapping) -> (returns [B] float64, environment steps)
    spec, reward_threshold, limit          # what the task's spaces and registration say
    close()

``genomes`` is a ``[B, size]`` float array (torch or numpy), ``layout`` a
:class:`alife.genome.Layout` or its plain table (``Layout.to_table()``: a list of dicts), ``seeds``
``[B]`` integers; row ``b`` is one episode of genome row ``b`` from ``reset(seed=seeds[b])``.
Episodes are independent and seeded, so an evaluator may split the rows any way it likes and the
returns and step count are the same (``tests/generational/test_workers.py``).

Two evaluators today, chosen by :func:`evaluator`:

- in-process: :class:`alife.generational.episodes.EpisodePool` itself (``workers = 1``);
- :class:`ProcessPool` (``workers = W > 1``): row ``b`` goes to process ``b % W`` (interleaved,
  so each process gets a share of every genome's episodes and of the long ones); this process
  plays its share while ``W - 1`` helper processes (``spawn``ed once, single-threaded, each with
  its own environments) play theirs.

Across a process boundary only plain data travel, never a pickled object of ours: the task as a
dict (:func:`task_of`: ``env_id``, ``max_episode_steps``, ``source``) and a job as a dict
(:func:`job`: the genome rows as a ``float32`` array, the layout table, the seeds, the action
mapping); :func:`play_job` turns one into returns, steps and CPU seconds in whatever process runs
it. A Ray pool plugs in here the same way: an evaluator whose ``play`` splits the rows as
:class:`ProcessPool` does and sends each part as ``ray.remote(play_job).remote(task, job)``
(Ray carries numpy arrays and lists of dicts as they are), offered by :func:`evaluator` for a
new ``task.workers`` setting; nothing else in the run changes.

The environments of non-batched tasks step one by one in Python (Box2D on LunarLander), so the
work is CPU-bound and scales with free cores. Helpers play on the CPU: a run on ``cuda`` sends its
genome rows to them as numpy arrays.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol

import numpy as np
import torch

from alife.generational.episodes import AfterAct, EpisodePool
from alife.generational.policy import PolicySpec
from alife.genome import Layout


class Evaluator(Protocol):
    """Plays seeded episodes for rows of genomes (see the module docstring)."""

    spec: PolicySpec
    reward_threshold: float | None
    limit: int | None

    def play(self, genomes: torch.Tensor | np.ndarray, layout: Layout | list[dict], seeds: np.ndarray,
             mapping: str = "tanh", after_act: AfterAct | None = None) -> tuple[np.ndarray, int]: ...

    def close(self) -> None: ...


def task_of(pool: EpisodePool) -> dict[str, Any]:
    """The task an :class:`EpisodePool` plays, as plain data another process can rebuild it from."""
    return {"env_id": pool.env_id, "max_episode_steps": pool.max_episode_steps, "source": pool.source}


def job(genomes: torch.Tensor | np.ndarray, layout: Layout | list[dict], seeds: np.ndarray,
        mapping: str) -> dict[str, Any]:
    """One batch of episodes as plain data: ``float32`` genome rows, the layout table, seeds, mapping."""
    if isinstance(genomes, torch.Tensor):
        genomes = genomes.detach().cpu().numpy()
    return {"genomes": np.ascontiguousarray(genomes, dtype=np.float32),
            "layout": layout.to_table() if isinstance(layout, Layout) else layout,
            "seeds": np.asarray(seeds, dtype=np.int64), "mapping": str(mapping)}


#: this process's episode pools, one per task (a helper process serves one task)
_POOLS: dict[tuple, EpisodePool] = {}


def play_job(task: dict[str, Any], work: dict[str, Any]) -> dict[str, Any]:
    """Play one :func:`job` of ``task`` (:func:`task_of`) here: its returns, steps and CPU seconds."""
    key = (task["env_id"], task["max_episode_steps"], task["source"])
    pool = _POOLS.get(key)
    if pool is None:
        pool = _POOLS[key] = EpisodePool(*key)
    c0 = time.process_time()
    returns, steps = pool.play(work["genomes"], work["layout"], work["seeds"], work["mapping"])
    return {"returns": returns, "steps": int(steps), "cpu_s": time.process_time() - c0}


def _init_helper() -> None:
    torch.set_num_threads(1)


class ProcessPool:
    """An :class:`Evaluator` over ``workers`` processes: this one's :class:`EpisodePool` and
    ``workers - 1`` helpers."""

    def __init__(self, pool: EpisodePool, workers: int):
        if workers < 2:
            raise ValueError("ProcessPool needs workers >= 2; use the EpisodePool itself otherwise")
        self.local, self.workers = pool, workers
        self.spec, self.reward_threshold, self.limit = pool.spec, pool.reward_threshold, pool.limit
        self.task = task_of(pool)
        #: CPU seconds the helper processes spent playing (``time.process_time`` there)
        self.helper_cpu = 0.0
        ctx = multiprocessing.get_context("spawn")
        self.executor = ProcessPoolExecutor(workers - 1, mp_context=ctx, initializer=_init_helper)

    def play(self, genomes: torch.Tensor | np.ndarray, layout: Layout | list[dict], seeds: np.ndarray,
             mapping: str = "tanh", after_act: AfterAct | None = None) -> tuple[np.ndarray, int]:
        b, w = genomes.shape[0], self.workers
        seeds = np.asarray(seeds)
        # too few episodes to be worth the round trip; or a plugin's alife_after_act, which runs in
        # this process only (helpers run no plugins): the same returns, played here
        if b < 2 * w or after_act is not None:
            out = self.local.play(genomes, layout, seeds, mapping, after_act)
            self.final_obs = self.local.final_obs
            return out
        self.final_obs = None  # the helpers' episodes end in their processes
        parts = [np.arange(i, b, w) for i in range(w)]
        rows = genomes.detach().cpu().numpy() if isinstance(genomes, torch.Tensor) else np.asarray(genomes)
        futures = [self.executor.submit(play_job, self.task, job(rows[idx], layout, seeds[idx], mapping))
                   for idx in parts[1:]]
        if isinstance(genomes, torch.Tensor):
            mine: Any = genomes.index_select(0, torch.from_numpy(parts[0]).to(genomes.device))
        else:
            mine = rows[parts[0]]
        r0, steps = self.local.play(mine, layout, seeds[parts[0]], mapping)
        returns = np.empty(b, dtype=np.float64)
        returns[parts[0]] = r0
        for idx, f in zip(parts[1:], futures, strict=True):
            out = f.result()
            returns[idx] = out["returns"]
            steps += out["steps"]
            self.helper_cpu += out["cpu_s"]
        return returns, steps

    def close(self) -> None:
        try:
            self.executor.shutdown(wait=True, cancel_futures=True)
        finally:
            self.local.close()


def evaluator(pool: EpisodePool, workers: int) -> Evaluator:
    """The evaluator for ``task.workers``: ``pool`` itself for 1, a :class:`ProcessPool` above."""
    return pool if workers <= 1 else ProcessPool(pool, workers)
