"""The simulation: one world, one plugin manager, one seeded generator; a step in phases.

Phases of :meth:`Simulation.step` (see ``ARCHITECTURE.md``): sense, act, physics (move, eat,
fight, regrow), metabolism and death, within-life learning, reproduction (select parents, mate,
make children, mutate), record. Hooks fire at phase boundaries with whole-population arrays.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alife import config as config_mod
from alife.events import CAUSE_CODE, CAUSES, Deaths, Fitness
from alife.genome import ACTIONS, init_genomes, make_layout, mlp_forward, obs_names, policy_params
from alife.host import Host, resolve_device  # noqa: F401 (resolve_device: its old home)
from alife.phases.extinction import Extinction
from alife.phases.physics import CpuPhysics, TorchPhysics
from alife.phases.reproduction import Reproduction
from alife.strategies import kernels as SK
from alife.world.brain_cpu import PolicyCPU
from alife.world.kernels import (
    HAVE_NUMBA,
    remove_cpu,
    sense_cpu,
)
from alife.world.senses import LOOK, LOOK_ANGLES_F32, NeighbourGrid, observe
from alife.world.state import WorldState


class Simulation(Host):
    """A persistent ecology-mode world (the strategy host in ``mode = "world"``).

    Args:
        world: a world file path, an embedded world name, a dict, a ``WorldConfig`` or ``None``
            for the embedded default (``meadow``).
        seed: seeds everything random in the run; ``None`` takes the world file's ``seed``.
        device: ``auto``, ``cpu`` or ``cuda``; ``None`` takes the world file's ``device``.
        overrides: ``{"world.capacity": 4096, ...}``, applied on top of the world file.
        plugins: extra plugin objects (modules or instances) to register.
        modules: plugin module names (``-p NAME``).
        plugins_dirs: directories of single-file plugins (``--plugins-dir``).
        blocked: plugin names not to load (``-p no:NAME``).
        run_dir: the run folder recorders write into (``None``: no files).
        before_start: called with the populated simulation before ``alife_sim_start`` fires;
            :func:`alife.checkpoint.restore` overwrites the state and sets ``resume_step`` there.
    """

    mode = "world"

    def __init__(self, world: Any = None, *, seed: int | None = None, device: str | None = None,
                 overrides: dict[str, Any] | None = None, plugins: Iterable[Any] = (),
                 modules: Iterable[str] = (), plugins_dirs: Iterable[str | Path] = (),
                 blocked: Iterable[str] = (), run_dir: str | Path | None = None,
                 before_start: Callable[[Simulation], None] | None = None):
        ov = dict(overrides or {})
        if seed is not None:
            ov["seed"] = int(seed)
        cfg = config_mod.load(world, ov)
        if cfg.task is not None:  # generational mode: never build an ecology world in its place
            raise config_mod.ConfigError(
                cfg.source, "[task]", "a task world (generational mode); alife.Simulation runs ecology "
                f"worlds only: use alife.generational.runner.TaskRun({cfg.source!r}) or "
                f"`alife run {cfg.source}`")
        self._init_host(cfg, device=device, plugins=plugins, modules=modules, plugins_dirs=plugins_dirs,
                        blocked=blocked, run_dir=run_dir,
                        make_layout=self._layout_with_channels)
        config_mod.check_memory(cfg, self.layout.size, policy_size=policy_params(self.layout))
        self.n_obs, self.n_act = len(self.obs_names), len(ACTIONS)
        self.policy_params = policy_params(self.layout)
        w = cfg.world
        self._init_world(WorldState(w.capacity, self.layout.size, self.n_act, w.width, w.height,
                                    cfg.brain.tag_dim, self.device))
        self.grid = NeighbourGrid(w.width, w.height, cfg.agent.sense_radius,
                                  w.max_neighbours_per_cell, self.device)
        #: mate search (``agent.mate_radius``): the nearest ready agent within that radius
        mr = cfg.agent.mate_radius
        self.mate_grid = (None if mr <= 0 else self.grid if mr <= cfg.agent.sense_radius
                          else NeighbourGrid(w.width, w.height, mr, w.max_neighbours_per_cell, self.device))
        self._obs = torch.zeros(w.capacity, self.n_obs, device=self.device)
        self.last_observations: torch.Tensor | None = None
        self._learn = self.hooks.has_impls("alife_learn")
        self._after_act = self.hooks.has_impls("alife_after_act")
        self._step_start = self.hooks.has_impls("alife_step_start")
        self._sensed: tuple | None = None
        self._regrowth = self.hooks.has_impls("alife_resource_regrowth")
        self._started = time.perf_counter()
        self.extinction = Extinction(self)
        #: slots whose genome holds a NaN or Inf; such an agent dies with cause "invalid"
        self._bad_genome = torch.zeros(cfg.world.capacity, dtype=torch.bool, device=self.device)
        #: the fused numba physics (alife.world.kernels) on the CPU, whole-array torch elsewhere
        self._cpu = self.device.type == "cpu" and HAVE_NUMBA
        self.reproduction = Reproduction(self)
        c = cfg.world.capacity
        #: the numba kernels' reused outputs and scratch (numpy; tensors view them where returned)
        f32, i64, b = np.float32, np.int64, np.bool_
        self._scratch = {
            "speed": np.zeros(c, f32), "invalid": np.zeros(c, b), "attacking": np.zeros(c, b),
            "cell": np.zeros(c, i64), "slots": np.zeros(c, i64), "cause": np.zeros(c, np.uint8),
            "total": np.zeros(w.width * w.height, np.float64), "want": np.zeros(c, f32),
            "nb": np.zeros(c, i64), "off": np.zeros((2, c), f32), "dist": np.zeros(c, f32),
        } if self._cpu else {}
        self._policy_cpu = PolicyCPU(self.layout, c) if self._cpu else None
        e = self.layout["compatibility.tag"]
        self._tag_cols = (e.offset, e.offset + e.size)
        #: the built-in reproduction roles run fused on the CPU (False: through their hooks)
        self._fuse = self._cpu
        self._segment_index_np = self.segment_index.cpu().numpy()
        self._compat_args = SK.compat_args(self.layout)
        gr, ag = self.grid, cfg.agent
        self._sense_params = np.array(
            [gr.gx, gr.gy, gr.cw, gr.ch, gr.w, gr.h, ag.sense_radius ** 2, cfg.resource.max,
             ag.sense_radius, ag.max_energy, ag.max_age, LOOK], dtype=np.float32)
        self._cause_codes = tuple(CAUSE_CODE[c] for c in ("invalid", "eaten", "starved", "old_age"))
        self.hooks.setup(self)
        if len(self.arrays):
            config_mod.check_memory(cfg, self.layout.size, policy_size=self.policy_params,
                                    extra_slot_bytes=self.arrays.slot_bytes())
        self._populate()
        if before_start is not None:
            before_start(self)
        self.hooks.sim_start(self)

    @property
    def _cpu(self) -> bool:
        """Whether the step runs the numba kernels (the CPU with numba) or whole-array torch."""
        return self.__dict__["_cpu_path"]

    @_cpu.setter
    def _cpu(self, on: bool) -> None:  # tests switch a CPU simulation to the torch reference
        self.__dict__["_cpu_path"] = bool(on)
        self.physics = CpuPhysics(self) if on else TorchPhysics(self)

    def _builtin_reproduction(self) -> bool:
        return self.reproduction.builtin()

    # ------------------------------------------------------------------ set-up
    def _populate(self) -> None:
        cfg, st, g, dev = self.config, self.world, self.generator, self.device
        n, w = cfg.world.initial_agents, cfg.world
        st.resource.fill_(cfg.resource.initial * cfg.resource.max)
        genomes = init_genomes(self.layout, n, cfg.brain, cfg.mutation.sigma_init, g, dev)
        k = min(w.initial_species, n)
        founders = torch.randn(k, cfg.brain.tag_dim, generator=g, device=dev)
        species = torch.arange(n, device=dev) % k
        tags = self.layout.view(genomes, "compatibility.tag")
        tags.copy_(founders[species] + 0.05 * torch.randn(tags.shape, generator=g, device=dev))
        st.add_species(founders, torch.full((k,), -1, dtype=torch.int64, device=dev), 0)
        sl = slice(0, n)
        st.alive[sl] = True
        st.ids[sl] = torch.arange(n, device=dev)
        st.pos[sl, 0] = torch.rand(n, generator=g, device=dev) * w.width
        st.pos[sl, 1] = torch.rand(n, generator=g, device=dev) * w.height
        st.heading[sl] = torch.rand(n, generator=g, device=dev) * (2 * math.pi)
        st.energy[sl] = cfg.agent.initial_energy
        # spread initial ages so the founders do not all die of old age in the same step
        st.age[sl] = (torch.rand(n, generator=g, device=dev) * (cfg.agent.max_age // 2)).long()
        st.species[sl] = species
        st.genomes[sl] = genomes
        st.hw, st.next_id = n, n
        self.arrays.new_species(torch.full((k,), -1, dtype=torch.int64, device=dev), k)
        self._assign_strategies(sl, n)
        self.recount_species()

    # ------------------------------------------------------------------ public API
    @property
    def step_count(self) -> int:
        return self.world.step

    def state(self) -> dict[str, np.ndarray]:
        """The living agents' arrays (ids, pos, heading, energy, age, species, genomes, ...) and the
        resource field, as numpy copies."""
        return self.world.to_numpy()

    def run(self, steps: int, progress: bool | Callable[[Simulation], None] = False,
            stop_on_extinction: bool = True) -> dict[str, int]:
        """Run ``steps`` steps (fewer if the population dies out). ``progress`` may be a callback
        called after every step."""
        cb = progress if callable(progress) else None
        bar = None
        if progress is True:
            from tqdm import tqdm
            bar = tqdm(total=steps, unit="step")
        try:
            for _ in range(steps):
                self.step()
                if cb:
                    cb(self)
                if bar is not None:
                    bar.update(1)
                    if self.world.step % 25 == 0:
                        bar.set_postfix(pop=self.population, births=self.totals["births"],
                                        deaths=self.totals["deaths"], refresh=False)
                if stop_on_extinction and self.population == 0:
                    break
        finally:
            if bar is not None:
                bar.close()
        return dict(self.totals)

    def _layout_with_channels(self, extra: tuple) -> Any:
        """The genome layout, its policy input grown by the plugins' observation channels
        (``alife_observations``, after the world's senses and kin tags)."""
        cfg = self.config
        names = list(obs_names(cfg.brain.tag_dim))
        #: plugin observation channels: name -> (first column, size)
        self.obs_channels: dict[str, tuple[int, int]] = {}
        for name, size, _plugin in self.hooks.observations(cfg):
            self.obs_channels[name] = (len(names), size)
            names += [f"{name}[{i}]" for i in range(size)] if size > 1 else [name]
        self.obs_names: tuple[str, ...] = tuple(names)
        self._n_base_obs = len(obs_names(cfg.brain.tag_dim))
        return make_layout(cfg.brain, n_obs=len(names), extra=extra)

    def observation_columns(self, name: str) -> slice:
        """The columns of the plugin observation channel ``name`` in ``sim.sense()``'s rows."""
        try:
            first, size = self.obs_channels[name]
        except KeyError:
            raise KeyError(f"no observation channel {name!r}; declared: {sorted(self.obs_channels) or 'none'}") from None
        return slice(first, first + size)

    # ------------------------------------------------------------------ the step
    def _sense(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        st, n = self.world, self.world.hw
        cached = self._sensed
        if cached is not None and cached[0] == (st.step, n):
            return cached[1]
        if self._cpu:
            sc, v, (t0, t1) = self._scratch, st.np, self._tag_cols
            nb, off, dist, obs = sc["nb"][:n], sc["off"][:, :n], sc["dist"][:n], self._obs[:n]
            sense_cpu(v.pos[:n], v.alive[:n], v.heading[:n], v.energy[:n], v.age[:n], v.ready[:n],
                      v.genomes[:n, t0:t1], v.resource, nb, off, dist, obs.numpy(),
                      self._sense_params, LOOK_ANGLES_F32)
            nb, off, dist = torch.from_numpy(nb), torch.from_numpy(off).T, torch.from_numpy(dist)
        else:
            tags = self.layout.view(st.genomes[:n], "compatibility.tag")
            nb, off, dist = self.grid.nearest(st.pos[:n], st.alive[:n], self.config.agent.sense_radius)
            obs = observe(st, nb, off, dist, self.config, tags, self._obs)
            # a NaN in a neighbour's genome or energy must not poison the agents that see it
            obs.nan_to_num_(0.0, 0.0, 0.0)
        if self.obs_channels:
            self.hooks.observe(self, n, obs)
            extra = obs[:, self._n_base_obs:]
            extra.nan_to_num_(0.0, 0.0, 0.0).clamp_(-1.0, 1.0)
        self.last_observations = obs
        # kept for the step that follows a PettingZoo observation of the same state
        self._sensed = ((st.step, n), (nb, off, dist, obs))
        return nb, off, dist, obs

    def genomes_changed(self, slots: torch.Tensor | None = None) -> None:
        """Tell the engine that genomes were written from outside (a plugin, a restore, a test):
        it re-checks them for NaN/Inf, which makes their agents die with cause "invalid"."""
        st = self.world
        self._sensed = None
        if self._policy_cpu is not None:
            self._policy_cpu.invalidate()
        if slots is None:
            self._bad_genome.copy_(~torch.isfinite(st.genomes).all(1))
        else:
            self._bad_genome[slots] = ~torch.isfinite(st.genomes[slots]).all(1)

    def mean_action(self) -> dict[str, float]:
        """The mean of each action (turn, speed, eat, attack, mate; as cleaned, in [-1, 1]) over
        the living agents in the last step."""
        st = self.world
        a = st.last_action[: st.hw][st.alive[: st.hw]]
        m = a.mean(0).tolist() if a.shape[0] else [float("nan")] * len(ACTIONS)
        return {name: float(v) for name, v in zip(ACTIONS, m, strict=True)}

    def sense(self) -> torch.Tensor:
        """Observations ``[hw, n_obs]`` (rows by slot) of the current state, as brains see them."""
        return self._sense()[3]

    def step(self, actions: torch.Tensor | None = None) -> None:
        """Advance one step. ``actions`` (``[hw, 5]``, rows by slot) replaces the brains' choice.

        On the CPU path the step holds torch to one thread and gives the caller's count back
        after (a fraction of a microsecond): its kernels are serial, and torch's pool, waiting
        for a core another process keeps busy, made it 4x slower (docs/performance.md)."""
        threads = torch.get_num_threads() if self._cpu else 1
        if threads == 1:
            return self._step(actions)
        torch.set_num_threads(1)
        try:
            return self._step(actions)
        finally:
            torch.set_num_threads(threads)

    def _step(self, actions: torch.Tensor | None) -> None:
        cfg, st = self.config, self.world
        step = st.step
        self.stats = {"births": 0, "births_refused_capacity": 0, "deaths": 0, "pairs_proposed": 0,
                      "pairs_refused": 0, "births_two_parents": 0}
        if self._step_start:  # a plugin may change the world before sensing
            self._sensed = None
            self.hooks.step_start(self, step)
        n = st.hw
        alive = st.alive[:n]

        # sense
        nb, off, dist, obs = self._sense()

        # act
        if actions is None:
            if self._policy_cpu is not None:
                act = self._policy_cpu.forward(st.genomes, obs)
            else:
                act = mlp_forward(st.genomes[:n], self.layout, "policy", obs)
        else:
            act = actions[:n].to(self.device, torch.float32)
        if self._after_act:  # the acting agents' rows, one per slot; written back after the hook
            acting = alive.nonzero().squeeze(1)
            rows = act[acting]
            self.hooks.after_act(self, acting, rows)
            act[acting] = rows
        energy_before = st.energy[:n].clone() if self._learn else None

        # physics: clean the actions, turn and move, eat
        speed, invalid, attacking = self.physics.move_eat(act, alive, nb, dist)
        energy = st.energy[:n]

        # physics: fight
        killed = self.physics.fight(attacking, nb)

        # physics: regrow
        self.physics.regrow(step)

        # metabolism and death
        self._kill(*self.physics.metabolism(alive, speed, invalid, killed), step)

        # within-life learning
        if self._learn:
            live = st.alive[:n].nonzero().squeeze(1)
            act = st.last_action[:n]
            self.hooks.learn(self, live, obs[live], act[live], (energy - energy_before)[live])
            # the plugin may have written through .data (no version bump): re-read its rows
            rows = st.genomes[live]
            self._bad_genome[live] = ~torch.isfinite(rows).all(1)
            if self._policy_cpu is not None:
                self._policy_cpu.put(live.numpy(), rows.numpy())

        # reproduction
        self.reproduction.run(nb, dist, step)

        if st.hw == 0 and cfg.world.extinction != "stop":
            self.extinction.refill(step)

        # species that lost their last member
        self._announce_extinct_species(step)

        # record
        st.step += 1
        if self.mixed_role is not None and step % self.strategy_series_every == 0:
            self._sample_strategies(step)
        self.hooks.step_end(self, step)

    def _kill(self, slots: torch.Tensor, cause: torch.Tensor, step: int) -> None:
        """Remove the agents in ``slots`` that died of ``cause`` (uint8 codes of CAUSES)."""
        st = self.world
        k = slots.numel()
        if k == 0:
            self.last_deaths = None
            return
        cause_np = cause.cpu().numpy()
        slots_np = slots.cpu().numpy()
        ids = st.np.ids[slots_np] if self._cpu else st.ids[slots].cpu().numpy()
        deaths = Deaths(step, ids, slots_np, cause_np)
        self.last_deaths = deaths
        self.hooks.agents_died(self, deaths)
        if self._fitness:
            self.hooks.fitness(self, Fitness(
                step, ids, slots_np, st.lifetime_energy[slots].cpu().numpy().astype(np.float64),
                st.children[slots].cpu().numpy(), "world"))
        self._forget_species_members(st.np.species[slots_np] if self._cpu else st.species[slots].cpu().numpy())
        counts = np.bincount(cause_np, minlength=len(CAUSES))
        for c, name in enumerate(CAUSES):
            self.totals[f"deaths_{name}"] += int(counts[c])
        self.stats["deaths"] = k
        self.totals["deaths"] += k
        if self.extinction.pool is not None:
            self.extinction.remember(slots[cause != CAUSE_CODE["invalid"]])
        if self._cpu:
            st.hw = remove_cpu(slots.numpy(), cause_np, CAUSE_CODE["invalid"], st.np, st.hw)
            if (cause_np == CAUSE_CODE["invalid"]).any():
                torch.autograd.graph.increment_version(st.genomes)  # zeroed through numpy
            return
        bad = slots[cause == CAUSE_CODE["invalid"]]
        if bad.numel():  # a dead slot's NaNs would still be read as "no neighbour" rows
            st.genomes[bad] = 0.0
            st.energy[bad] = 0.0
        st.alive[slots] = False
        st.ready[slots] = False
        st.ids[slots] = -1
        st.shrink_hw()

    # ------------------------------------------------------------------ extinction pool (checkpoints)
    def extinction_pool_arrays(self) -> dict[str, np.ndarray] | None:
        """The reseed pool, oldest first, for checkpoints (``None`` unless extinction = reseed)."""
        return self.extinction.arrays()

    def restore_extinction_pool(self, arrays: dict[str, np.ndarray] | None) -> None:
        """Put back a pool saved by :meth:`extinction_pool_arrays`."""
        self.extinction.restore(arrays)
