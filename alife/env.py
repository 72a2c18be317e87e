"""The persistent world as a PettingZoo ``ParallelEnv``.

The simulation core (``alife.simulation``) lives apart from this adapter, as PettingZoo's own
``*_base.py`` files do. Agent names are ``"a<id>"`` and never reused. An agent born during a step
appears in every dict that step returns (``terminated=False``); an agent that dies appears with
``terminated=True`` and is gone from ``env.agents`` afterwards, as in PettingZoo's
``generated_agents_parallel`` example. Rewards are each agent's energy change over the step.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from pettingzoo import ParallelEnv

from alife import config as config_mod
from alife.genome import OBS_FIXED
from alife.simulation import Simulation

TAG_BOUND = 5.0


def _stack_actions(vals: Sequence[Any]) -> np.ndarray:
    """The ``[n, 5]`` float32 array of ``n`` per-agent actions. When every action is a contiguous
    float32 array of 5 (what ``action_space(a).sample()`` gives, and most policies), their bytes
    are joined in one C call (at 500 agents about a quarter of what ``np.asarray`` over the
    tuple costs; the checks, ``np.result_type`` and the lengths, cost less than the join);
    anything else (lists, tensors, float64, ...) takes ``np.asarray``, which also reports a
    malformed action."""
    try:
        raw = b"".join(vals)  # the buffer protocol: numpy arrays, not lists or tensors
        if (len(raw) == 20 * len(vals) and np.result_type(*vals) == np.float32
                and set(map(len, vals)) == {5}):
            return np.frombuffer(raw, dtype=np.float32).reshape(len(vals), 5)
    except (TypeError, ValueError, BufferError):  # not all numpy, strided, or a 0-d array
        pass
    return np.asarray(vals, dtype=np.float32).reshape(len(vals), 5)


class _EverBorn(Sequence):
    """``possible_agents``: every name that exists or has existed, without storing them."""

    def __init__(self, env: AlifeParallelEnv):
        self._env = env

    def __len__(self) -> int:
        return int(self._env.sim.world.next_id) if self._env.sim is not None else 0

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return f"a{i % len(self)}"

    def __iter__(self) -> Iterator[str]:
        return (f"a{i}" for i in range(len(self)))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str) or not name.startswith("a") or not name[1:].isdigit():
            return False
        return int(name[1:]) < len(self)


class AlifeParallelEnv(ParallelEnv):
    """A PettingZoo ``ParallelEnv`` over an :class:`alife.Simulation`.

    Args:
        world: world file, embedded world name, dict or ``WorldConfig`` (default: ``meadow``).
        seed: seed of the first ``reset``; ``reset(seed=...)`` overrides it.
        render_mode: ``None`` or ``"rgb_array"``.
        max_steps: truncate every agent after this many steps (``None``: never).
        overrides: world keys to override, ``{"world.capacity": 4096}``.
        sim_kwargs: passed to :class:`alife.Simulation` (``device``, ``plugins``, ...).

    ``reset(seed, options={"warmup_steps": N})`` first runs the world on its own brains for ``N``
    steps, so the caller takes over a settled ecosystem rather than the initial transient.
    """

    metadata = {"name": "alife_v0", "render_modes": ["rgb_array"], "is_parallelizable": True}

    def __init__(self, world: Any = None, seed: int | None = None, render_mode: str | None = None,
                 max_steps: int | None = None, overrides: dict[str, Any] | None = None,
                 **sim_kwargs: Any):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.world, self.render_mode, self.max_steps = world, render_mode, max_steps
        self._overrides = dict(overrides or {})
        self._sim_kwargs = sim_kwargs
        self._seed = seed
        self.sim: Simulation | None = None
        self.agents: list[str] = []
        self.possible_agents = _EverBorn(self)
        cfg = config_mod.load(world, self._overrides)
        if cfg.task is not None:  # generational mode has no persistent world to step
            raise config_mod.ConfigError(
                cfg.source, "[task]", "a task world (generational mode); alife.make_env needs an "
                f"ecology world: use alife.generational.runner.TaskRun({cfg.source!r}) or "
                f"`alife run {cfg.source}`")
        # built once from the world so that spaces exist before reset
        probe = Simulation(world, seed=seed or 0, overrides=self._overrides, **sim_kwargs)
        n_obs, n_tag = probe.n_obs, probe.config.brain.tag_dim
        probe.close()
        low = np.full(n_obs, -1.0, dtype=np.float32)
        high = np.full(n_obs, 1.0, dtype=np.float32)
        # kin tags are genome values; observations clip them to +-TAG_BOUND (plugins' channels,
        # after them, are clipped to [-1, 1] by the engine)
        t0 = len(OBS_FIXED)
        low[t0:t0 + n_tag], high[t0:t0 + n_tag] = -TAG_BOUND, TAG_BOUND
        self._obs_space = spaces.Box(low, high, dtype=np.float32)
        self._act_space = spaces.Box(-1.0, 1.0, (5,), dtype=np.float32)

    # spaces are shared objects: every agent has the same body
    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Box:
        return self._act_space

    def _names(self, slots: np.ndarray) -> list[str]:
        return self._name_of[slots].tolist()

    def _observe(self) -> tuple[np.ndarray, np.ndarray]:
        sim, st = self.sim, self.sim.world
        obs_all = sim.sense()
        if obs_all.device.type == "cpu":  # numpy indexing costs less than torch's
            slots = np.flatnonzero(st.np.alive[: st.hw])
            obs = obs_all.numpy()[slots]  # a copy: the dicts must not alias the engine's buffer
        else:
            slots_t = st.alive_slots()
            obs, slots = obs_all[slots_t].cpu().numpy(), slots_t.cpu().numpy()
        np.minimum(obs, self._obs_space.high, out=obs)
        np.maximum(obs, self._obs_space.low, out=obs)
        return obs, slots

    def reset(self, seed: int | None = None, options: dict | None = None):
        if self.sim is not None:
            self.sim.close()
        if seed is None:
            seed = self._seed if self._seed is not None else 0
            self._seed = None if self._seed is None else self._seed + 1
        self.sim = Simulation(self.world, seed=seed, overrides=self._overrides, **self._sim_kwargs)
        warmup = (options or {}).get("warmup_steps", 0)
        if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
            raise ValueError(f"reset options: warmup_steps must be an int >= 0, got {warmup!r}")
        # the world's own brains run first, so the caller takes over a settled ecosystem
        self.sim.run(warmup)
        st = self.sim.world
        self._name_of = np.empty(st.capacity, dtype=object)
        slots = st.alive_slots().cpu().numpy()
        self._name_of[slots] = [f"a{i}" for i in st.ids[: st.hw].cpu().numpy()[slots]]
        obs, slots = self._observe()
        self.agents = self._names(slots)
        self._slots, self._slot_of = slots, None
        observations = dict(zip(self.agents, obs, strict=True))
        return observations, {a: {} for a in self.agents}

    def _actions_array(self, actions: dict[str, Any], hw: int) -> np.ndarray:
        act = np.zeros((hw, 5), dtype=np.float32)
        if not actions:
            return act
        prev = self.agents
        if len(actions) == len(prev) and prev:
            try:  # the usual case: one action per live agent (one C call gathers them)
                vals = operator.itemgetter(*prev)(actions)
            except KeyError:
                vals = None
            if vals is not None:
                act[self._slots] = _stack_actions(vals if len(prev) > 1 else (vals,))
                return act
        if self._slot_of is None:
            self._slot_of = dict(zip(prev, self._slots.tolist(), strict=True))
        keys = [a for a in actions if a in self._slot_of]  # actions for the dead are ignored
        if keys:
            idx = np.fromiter((self._slot_of[a] for a in keys), dtype=np.int64, count=len(keys))
            act[idx] = _stack_actions([actions[a] for a in keys])
        return act

    def step(self, actions: dict[str, Any]):
        sim = self.sim
        if sim is None:
            raise RuntimeError("call reset() before step()")
        st = sim.world
        prev_slots = self._slots
        act = self._actions_array(actions, st.hw)
        e_before = st.energy.cpu().numpy()[prev_slots]
        sim.step(torch.from_numpy(act))

        died = sim.last_deaths
        dead_slots = died.slots if died is not None else np.zeros(0, dtype=np.int64)
        dead_names = self._names(dead_slots)
        born = sim.last_births
        if born is not None and len(born):
            self._name_of[born.slots] = [f"a{i}" for i in born.ids]
        obs, slots = self._observe()
        alive_names = self._names(slots)
        self._slots, self._slot_of = slots, None

        # the five dicts in bulk (C-level dict/zip calls; no Python loop per agent but the
        # infos' fresh dicts): survivors and newborns first, then the dead
        observations = dict(zip(alive_names, obs, strict=True))
        # rewards: survivors their energy change; the dead minus all they had; newborns 0
        e_after = st.energy.cpu().numpy()
        e_prev = np.zeros(st.capacity, dtype=np.float32)
        e_prev[prev_slots] = e_before
        dead_rewards = (-e_prev[dead_slots]).tolist()  # before a newborn takes a freed slot
        if born is not None and len(born):
            e_prev[born.slots] = e_after[born.slots]
        rewards = dict(zip(alive_names, (e_after[slots] - e_prev[slots]).tolist(), strict=True))
        trunc = self.max_steps is not None and st.step >= self.max_steps
        terminations = dict.fromkeys(alive_names, False)
        truncations = dict.fromkeys(alive_names, True) if trunc else terminations.copy()
        if dead_names:
            observations.update(dict.fromkeys(dead_names, np.zeros(self._obs_space.shape, dtype=np.float32)))
            rewards.update(zip(dead_names, dead_rewards, strict=True))
            terminations.update(dict.fromkeys(dead_names, True))
            truncations.update(dict.fromkeys(dead_names, trunc))
        infos = {a: {} for a in terminations}
        self.agents = [] if trunc else alive_names
        return observations, rewards, terminations, truncations, infos

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            return None
        from alife.viewer.render import render_rgb
        return render_rgb(self.sim)

    def close(self) -> None:
        if self.sim is not None:
            self.sim.close()


def make_env(world: Any = None, seed: int | None = None, render_mode: str | None = None,
             max_steps: int | None = None, **overrides: Any) -> AlifeParallelEnv:
    """The world as a PettingZoo ``ParallelEnv``.

    Overrides are world keys with ``__`` for the dot: ``make_env(world__capacity=4096)``; a dict
    ``overrides={"world.capacity": 4096}`` works too.
    """
    ov = dict(overrides.pop("overrides", None) or {})
    sim_kwargs = {k: overrides.pop(k) for k in ("device", "plugins", "modules", "plugins_dirs", "blocked")
                  if k in overrides}
    ov.update({k.replace("__", "."): v for k, v in overrides.items()})
    return AlifeParallelEnv(world, seed=seed, render_mode=render_mode, max_steps=max_steps,
                            overrides=ov, **sim_kwargs)
