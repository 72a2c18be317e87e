"""Seeded episodes for a whole population, every policy batched in one forward pass per env step.

A pool of gymnasium environments (made once, reused every generation) plays one episode per row:
row ``b`` runs the policy in genome row ``b`` from ``env.reset(seed=seeds[b])``. Each step, the
observations of every still-running episode are stacked and all policies act in one batched
forward pass (:func:`alife.generational.policy.act`); gymnasium environments step one at a time,
as ``SyncVectorEnv`` does, since the simulators themselves are scalar, and the observations they
return are encoded together (:class:`alife.generational.policy.ObsEncoder`: stacked, or flattened
by gymnasium for non-``Box`` spaces). Episodes end on ``terminated`` or ``truncated``; no
autoreset, so each row is exactly one seeded episode.

:class:`EpisodePool` is the in-process evaluator of :mod:`alife.generational.workers` (the
evaluation seam): ``play`` takes genome rows as a float array (torch or numpy) and the layout as a
:class:`alife.genome.Layout` or its plain table (``Layout.to_table()``).

Training and held-out episodes draw from disjoint seed ranges (:func:`training_seeds`,
:func:`heldout_seeds`): the Neural Mutator prototype's evaluation episodes were unseeded, and its
"best" was a max over noisy means (``../shared/DESIGN.md``); here every episode is reproducible and
the held-out score is never seen by selection.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from alife.config import ConfigError
from alife.generational.batched import batched_for
from alife.generational.policy import ObsEncoder, PolicySpec, act, policy_spec
from alife.genome import Layout

#: held-out episode seeds are HELDOUT_BASE + i; training seeds are drawn below it, so the two never meet
HELDOUT_BASE = 1 << 31


def training_seeds(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` training episode seeds in ``[0, HELDOUT_BASE)``."""
    return rng.integers(0, HELDOUT_BASE, size=n, dtype=np.int64)


def heldout_seeds(n: int) -> np.ndarray:
    """The ``n`` held-out episode seeds: the same for every run and method, so scores compare."""
    return HELDOUT_BASE + np.arange(n, dtype=np.int64)


def make_env(env_id: str, max_episode_steps: int = 0, source: str = "task") -> Any:
    """``gymnasium.make`` with errors a user can act on (unknown id, missing extra)."""
    import gymnasium as gym

    kwargs: dict[str, Any] = {"disable_env_checker": True}
    if max_episode_steps:
        kwargs["max_episode_steps"] = max_episode_steps
    if not env_id:
        raise ConfigError(source, "task.env_id", "empty; set a gymnasium id such as \"CartPole-v1\"")
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.DependencyNotInstalled as e:
        raise ConfigError(source, "task.env_id", f"{env_id!r} needs an extra package: {e}") from None
    except gym.error.Error as e:
        raise ConfigError(source, "task.env_id", f"{env_id!r} is not a gymnasium environment: {e}") from None


def time_limit(env: Any) -> int | None:
    """The ``TimeLimit`` wrapper's step limit, if ``env`` has one."""
    from gymnasium.wrappers import TimeLimit

    while env is not None:
        if isinstance(env, TimeLimit):
            return int(env._max_episode_steps)
        env = getattr(env, "env", None)
    return None


#: ``after_act(rows, outputs)``: the rows still playing and their policy outputs, once per env step
AfterAct = Callable[[np.ndarray, torch.Tensor], None]


def _edit(after_act: AfterAct | None, active: np.ndarray) -> Callable[[torch.Tensor], None] | None:
    if after_act is None:
        return None
    return lambda y: after_act(active, y)


class EpisodePool:
    """Environments for one task, grown on demand, and the batched episode loop over them.

    With ``batched=True`` (the default) gymnasium's classic-control tasks step through
    :mod:`alife.generational.batched`, the same equations as array operations; other tasks step
    their gymnasium environments one by one.
    """

    def __init__(self, env_id: str, max_episode_steps: int = 0, source: str = "task", batched: bool = True):
        self.env_id, self.max_episode_steps, self.source = env_id, max_episode_steps, source
        self.envs = [make_env(env_id, max_episode_steps, source)]
        first = self.envs[0]
        self.spec: PolicySpec = policy_spec(first.observation_space, first.action_space)
        self.reward_threshold = getattr(first.spec, "reward_threshold", None) if first.spec else None
        self.limit = time_limit(first)
        self.batched = batched_for(first) if batched else None
        self.encode = ObsEncoder(self.spec)
        self._layouts: dict[str, Layout] = {}

    def layout_of(self, layout: Layout | list[dict]) -> Layout:
        """``layout`` as a :class:`Layout`: a table (``Layout.to_table()``) is read once and kept."""
        if isinstance(layout, Layout):
            return layout
        key = json.dumps(layout, sort_keys=True)
        if key not in self._layouts:
            self._layouts[key] = Layout.from_table(layout)
        return self._layouts[key]

    def _grow(self, n: int) -> None:
        while len(self.envs) < n:
            self.envs.append(make_env(self.env_id, self.max_episode_steps, self.source))

    def play(self, genomes: torch.Tensor | np.ndarray, layout: Layout | list[dict], seeds: np.ndarray,
             mapping: str = "tanh", after_act: AfterAct | None = None) -> tuple[np.ndarray, int]:
        """Play one episode per row of ``genomes`` (``[B, size]`` floats) from ``seeds`` (``[B]``).

        ``after_act(rows, outputs)``, if given, is called once per environment step with the rows
        still playing (``[n]`` int64) and their policy outputs (``[n, outputs]``, editable in place;
        see :func:`alife.generational.policy.act`). Returns the ``[B]`` undiscounted returns
        (float64) and the number of environment steps taken. Each row's last observation (encoded,
        ``[B, inputs]`` float32) is kept as ``self.final_obs`` until the next call.
        """
        if isinstance(genomes, np.ndarray):
            genomes = torch.from_numpy(np.ascontiguousarray(genomes, dtype=np.float32))
        layout = self.layout_of(layout)
        b = genomes.shape[0]
        self._grow(b)
        envs = self.envs[:b]
        if self.batched is not None:
            return self._play_batched(genomes, layout, envs, seeds, mapping, after_act)
        obs = self.encode([env.reset(seed=int(s))[0] for env, s in zip(envs, seeds, strict=True)])
        returns = np.zeros(b, dtype=np.float64)
        active = np.arange(b)
        steps = 0
        while active.size:
            idx = torch.from_numpy(active).to(genomes.device)
            x = torch.from_numpy(obs[active]).to(genomes.device)
            actions = act(genomes.index_select(0, idx), layout, self.spec, x, mapping, _edit(after_act, active))
            keep = np.ones(active.size, dtype=bool)
            new = []
            for j, i in enumerate(active):
                o, r, terminated, truncated, _ = envs[i].step(actions[j])
                returns[i] += float(r)
                new.append(o)
                keep[j] = not (terminated or truncated)
            obs[active] = self.encode(new)
            steps += active.size
            active = active[keep]
        self.final_obs = obs
        return returns, steps

    def _play_batched(self, genomes: torch.Tensor, layout: Any, envs: list[Any], seeds: np.ndarray,
                      mapping: str, after_act: AfterAct | None) -> tuple[np.ndarray, int]:
        b = genomes.shape[0]
        obs = self.encode.stacked(self.batched.reset(envs, seeds))
        returns = np.zeros(b, dtype=np.float64)
        active = np.arange(b)
        steps = t = 0
        limit = self.limit if self.limit is not None else np.iinfo(np.int64).max
        while active.size:
            idx = torch.from_numpy(active).to(genomes.device)
            x = torch.from_numpy(obs[active]).to(genomes.device)
            actions = act(genomes.index_select(0, idx), layout, self.spec, x, mapping, _edit(after_act, active))
            o, r, terminated = self.batched.step(active, actions)
            returns[active] += r
            obs[active] = self.encode.stacked(o)
            steps += active.size
            t += 1
            active = active[~terminated & (t < limit)]
        self.final_obs = obs
        return returns, steps

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs.clear()
