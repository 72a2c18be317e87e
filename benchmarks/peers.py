"""EvoTorch's SNES and PGPE as the peer in ``benchmarks/tasks.py``, on alife's own episodes.

The peer optimises the same policy network (the ``policy`` segment of the task layout) on the
same seeded training episodes through the same batched episode loop, so environment steps,
the threshold rule and the held-out episodes are identical for both sides; only the search
differs. SNES: Schaul, Glasmachers & Schmidhuber 2011, "High dimensions and heavy tails for
natural evolution strategies"; PGPE: Sehnke et al. 2010, with the ClipUp optimiser of Toklu et
al. 2020 (EvoTorch's default).

:func:`run_random` is the floor beside them: uniformly random actions (the action space's own
``sample``, seeded) on the same held-out episodes.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from alife import config as config_mod
from alife.generational.episodes import EpisodePool, heldout_seeds, training_seeds
from alife.generational.policy import task_layout
from alife.generational.runner import confirm_best
from alife.genome import init_genomes

#: searcher settings, the same for every task (a few values tried on CartPole-v1; see docs/results.md)
SETTINGS: dict[str, dict[str, Any]] = {
    "snes": {"stdev_init": 0.5},
    "pgpe": {"popsize": 40, "center_learning_rate": 0.05, "stdev_learning_rate": 0.1, "stdev_init": 0.1},
}


def available() -> bool:
    try:
        import evotorch  # noqa: F401
    except ImportError:
        return False
    return True


def run_peer(algo: str, world: str, seed: int, max_env_steps: int) -> dict[str, Any]:
    """One EvoTorch run on ``world``'s task until the threshold rule holds or the step budget ends.

    The threshold rule is the generational runner's ``threshold_on = "best"``, the same function
    (``alife.generational.runner.confirm_best``): the best sample of a generation by training fitness, confirmed on
    ``task.confirm_episodes`` training episodes (extra episodes counted in the steps), must reach
    the threshold; a sample that falls back below it on the extra episodes gives its place to the
    next best of the same generation. The held-out genome is the best of the last generation by
    its mean over all the training episodes it played.
    """
    from evotorch import Problem
    from evotorch.algorithms import PGPE, SNES

    torch.manual_seed(seed)  # EvoTorch samples from torch's global generator
    cfg = config_mod.load(world)
    task = cfg.task
    pool = EpisodePool(task.env_id, task.max_episode_steps, cfg.source)
    thr = task.threshold if math.isfinite(task.threshold) else pool.reward_threshold
    layout = task_layout(pool.spec, cfg.brain, task.hidden)
    lo, hi = layout.segment_range("policy")
    rng = np.random.default_rng(seed)
    state: dict[str, Any] = {"steps": 0}

    def genomes_of(x: torch.Tensor) -> torch.Tensor:
        g = torch.zeros(x.shape[0], layout.size)
        g[:, lo:hi] = x.detach().float()
        return g

    def play(x: torch.Tensor, seeds: np.ndarray) -> np.ndarray:
        n, e = x.shape[0], len(seeds)
        returns, steps = pool.play(genomes_of(x).repeat_interleave(e, 0), layout, np.tile(seeds, n),
                                   task.action_mapping)
        state["steps"] += steps
        return returns.reshape(n, e)

    def fitness(x: torch.Tensor) -> torch.Tensor:
        r = play(x, training_seeds(rng, task.episodes))
        state["x"], state["sum"], state["n"] = x.detach().clone(), r.sum(1), np.full(len(r), float(r.shape[1]))
        return torch.as_tensor(r.mean(1), dtype=torch.float32)

    center = init_genomes(layout, 1, cfg.brain, 0.05, torch.Generator().manual_seed(seed))[0, lo:hi]
    problem = Problem("max", fitness, solution_length=hi - lo, initial_bounds=(-0.1, 0.1),
                      vectorized=True, seed=seed)
    kw = dict(SETTINGS[algo], center_init=center)
    searcher = SNES(problem, **kw) if algo == "snes" else PGPE(problem, **kw)
    c0, t0 = time.process_time(), time.perf_counter()
    reached = None
    gens = 0
    while state["steps"] < max_env_steps:
        searcher.step()
        gens += 1
        if thr is not None and confirm_best(state["sum"], state["n"], task.confirm_episodes, task.confirm_chunk,
                                            lambda b, k: play(state["x"][b:b + 1], training_seeds(rng, k))[0],
                                            thr)[0]:
            reached = {"env_steps": state["steps"], "cpu_s": time.process_time() - c0,
                       "wall_s": time.perf_counter() - t0, "generations": gens}
            break
    best = state["x"][int(np.argmax(state["sum"] / state["n"]))]
    steps_before = state["steps"]
    held = play(best[None], heldout_seeds(task.heldout_episodes))[0]
    pool.close()
    return {"method": f"evotorch-{algo}", "seed": seed, "threshold": thr, "generations": gens, "env_steps": steps_before,
            "reached": reached is not None,
            "env_steps_to_threshold": None if reached is None else reached["env_steps"],
            "cpu_to_threshold_s": None if reached is None else reached["cpu_s"],
            "wall_to_threshold_s": None if reached is None else reached["wall_s"],
            "heldout_mean": float(held.mean()), "heldout_std": float(held.std(ddof=1))}


def run_random(world: str, seed: int) -> dict[str, Any]:
    """Uniformly random actions on ``world``'s held-out episodes (no training, no steps spent)."""
    cfg = config_mod.load(world)
    task = cfg.task
    pool = EpisodePool(task.env_id, task.max_episode_steps, cfg.source)
    env = pool.envs[0]
    env.action_space.seed(seed)
    returns = []
    for s in heldout_seeds(task.heldout_episodes):
        env.reset(seed=int(s))
        total, done = 0.0, False
        while not done:
            _, r, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(r)
            done = terminated or truncated
        returns.append(total)
    pool.close()
    held = np.asarray(returns)
    return {"method": "random-actions", "seed": seed, "generations": 0, "env_steps": 0, "reached": False,
            "env_steps_to_threshold": None, "cpu_to_threshold_s": None, "wall_to_threshold_s": None,
            "heldout_mean": float(held.mean()), "heldout_std": float(held.std(ddof=1)), "trained": False}
