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
from alife.config import WorldConfig
from alife.events import CAUSE_CODE, CAUSES, Births, Deaths, Fitness
from alife.genome import ACTIONS, init_genomes, make_layout, mlp_forward, obs_names, policy_params
from alife.plugins.manager import PluginError, PluginManager, build_manager
from alife.strategies import kernels as SK
from alife.world.arrays import PluginArrays
from alife.world.brain_cpu import PolicyCPU
from alife.world.kernels import (
    HAVE_NUMBA,
    act_move_eat_cpu,
    fight_cpu,
    first_free_cpu,
    live_contacts_cpu,
    metabolism_cpu,
    place_children_cpu,
    regrow_cpu,
    remove_cpu,
    sense_cpu,
)
from alife.world.senses import LOOK, LOOK_ANGLES_F32, NeighbourGrid, observe
from alife.world.state import WorldState


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; ``cuda`` without a GPU is an error."""
    if isinstance(device, torch.device):
        return device
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise config_mod.ConfigError("--device", "device", "cuda was asked for but no CUDA GPU is available")
    if device not in ("cpu", "cuda"):
        raise config_mod.ConfigError("--device", "device", f"expected auto, cpu or cuda, got {device!r}")
    return torch.device(device)


#: role -> the ``fused_kernel`` mark of the built-in strategy :meth:`Simulation._reproduce_fused`
#: stands in for (the strategies carry the mark; the engine imports none of them)
_FUSED_ROLES = {"selection": "selection:energy-threshold", "mating": "mating:compatibility",
                "reproduction": "reproduction:crossover-mutate", "mutation": "mutation:gaussian",
                "speciation": "speciation:kin-drift"}


def _ix_torch(t: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
    """``t[idx]``; ``idx=None``: the indices where ``t`` is true."""
    return t.nonzero().squeeze(1) if idx is None else t[idx]


def _ix_numpy(t: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
    """:func:`_ix_torch` through numpy (CPU tensors): a few microseconds less per call."""
    a = t.numpy()
    return torch.from_numpy(np.flatnonzero(a) if idx is None else a[idx.numpy()])


class Simulation:
    """A persistent ecology-mode world.

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

    def __init__(self, world: Any = None, *, seed: int | None = None, device: str | None = None,
                 overrides: dict[str, Any] | None = None, plugins: Iterable[Any] = (),
                 modules: Iterable[str] = (), plugins_dirs: Iterable[str | Path] = (),
                 blocked: Iterable[str] = (), run_dir: str | Path | None = None,
                 before_start: Callable[[Simulation], None] | None = None):
        ov = dict(overrides or {})
        if seed is not None:
            ov["seed"] = int(seed)
        self.config: WorldConfig = config_mod.load(world, ov)
        cfg = self.config
        self.seed = cfg.seed
        self.run_dir: Path | None = Path(run_dir) if run_dir is not None else None
        #: ``None`` for a new run; the step a resumed run continues from. Recorders opening their
        #: files in ``alife_sim_start`` append, dropping any record with ``step >= resume_step``.
        self.resume_step: int | None = None
        self.device = resolve_device(device if device is not None else cfg.device)
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)
        self.hooks: PluginManager = build_manager(
            cfg.strategies, world_plugins=cfg.plugins, world_base_dir=cfg.base_dir,
            world_source=cfg.source, modules=list(modules), plugins_dirs=list(plugins_dirs),
            blocked=list(blocked), extra=list(plugins), mixture=cfg.mixture)
        try:
            self.layout = make_layout(cfg.brain, extra=self.hooks.genome_tensors(cfg))
        except ValueError as e:
            raise PluginError(f"alife_genome_tensors: {e}") from None
        config_mod.check_memory(cfg, self.layout.size, policy_size=policy_params(self.layout))
        self.segment_index = self.layout.segment_index().to(self.device)
        self.tensor_index = self.layout.tensor_index().to(self.device)
        self.obs_names = obs_names(cfg.brain.tag_dim)
        self.n_obs, self.n_act = len(self.obs_names), len(ACTIONS)
        self.policy_params = policy_params(self.layout)
        #: the variation strategies lineages carry (``world.strategy`` indexes it): a ``[mixture]``'s
        #: strategies, or the one reproduction strategy
        self.mixed_role: str | None = cfg.mixture.role if cfg.mixture is not None else None
        self.strategy_names: tuple[str, ...] = (
            self.hooks.mix[self.mixed_role] if self.mixed_role else (self.hooks.chosen["reproduction"],))
        w = cfg.world
        self.world = WorldState(w.capacity, self.layout.size, self.n_act, w.width, w.height,
                                cfg.brain.tag_dim, self.device)
        #: per-slot and per-species arrays plugins register (``alife_setup``)
        self.arrays = PluginArrays(w.capacity, self.device)
        self.grid = NeighbourGrid(w.width, w.height, cfg.agent.sense_radius,
                                  w.max_neighbours_per_cell, self.device)
        self._obs = torch.zeros(w.capacity, self.n_obs, device=self.device)
        self.totals: dict[str, int] = {"births": 0, "births_refused_capacity": 0, "deaths": 0,
                                       **{f"deaths_{c}": 0 for c in CAUSES}}
        self.stats: dict[str, int] = {}
        self.last_births: Births | None = None
        self.last_deaths: Deaths | None = None
        self.last_observations: torch.Tensor | None = None
        self._learn = self.hooks.has_impls("alife_learn")
        self._after_act = self.hooks.has_impls("alife_after_act")
        self._step_start = self.hooks.has_impls("alife_step_start")
        self._sensed: tuple | None = None
        self._regrowth = self.hooks.has_impls("alife_resource_regrowth")
        self._fitness = self.hooks.has_impls("alife_fitness")
        self._species_born = self.hooks.has_impls("alife_species_born")
        self._species_extinct = self.hooks.has_impls("alife_species_extinct")
        #: ``[[step, count per strategy...], ...]``: living agents per strategy of a ``[mixture]``
        #: world, every ``strategy_series_every`` steps (halved in resolution past 2,000 rows)
        self.strategy_series: list[list[int]] = []
        self.strategy_series_every = 100
        #: living members per species (numpy); species whose members died this step
        self._species_live = np.zeros(0, np.int64)
        self._dead_species: np.ndarray | None = None
        self._closed = False
        self._started = time.perf_counter()
        self._init_extinction_pool()
        #: slots whose genome holds a NaN or Inf; such an agent dies with cause "invalid"
        self._bad_genome = torch.zeros(cfg.world.capacity, dtype=torch.bool, device=self.device)
        #: the fused numba physics (alife.world.kernels) on the CPU, whole-array torch elsewhere
        self._cpu = self.device.type == "cpu" and HAVE_NUMBA
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

    def _assign_strategies(self, sl: slice, n: int) -> None:
        """Initial agents of a ``[mixture]`` world get strategies in proportion to its shares, at
        random (one seeded permutation)."""
        mx = self.config.mixture
        if mx is None or n == 0:
            return
        m = len(mx.strategies)
        shares = np.asarray(mx.shares if mx.shares else [1.0] * m, dtype=np.float64)
        counts = np.floor(shares / shares.sum() * n).astype(np.int64)
        counts[np.argsort(-(shares / shares.sum() * n - counts), kind="stable")[: n - counts.sum()]] += 1
        codes = torch.from_numpy(np.repeat(np.arange(m, dtype=np.int16), counts)).to(self.device)
        perm = torch.randperm(n, generator=self.generator, device=self.device)
        self.world.strategy[sl] = codes[perm]

    def recount_species(self) -> None:
        """Recount the living members of each species (after set-up or a restore)."""
        st = self.world
        n_sp = int(st.species_origin.shape[0])
        sp = st.species[: st.hw][st.alive[: st.hw]].cpu().numpy()
        self._species_live = np.bincount(sp, minlength=n_sp).astype(np.int64)

    def new_species(self, founder_tags: torch.Tensor, parent_species: torch.Tensor, step: int) -> torch.Tensor:
        """Found species (for a speciation strategy): append them to the species table, grow the
        per-species arrays, fire ``alife_species_born``; returns their ids."""
        st = self.world
        ids = st.add_species(founder_tags, parent_species, step)
        total = int(st.species_origin.shape[0])
        self.arrays.new_species(parent_species, total)
        self._species_live = np.concatenate([self._species_live, np.zeros(total - self._species_live.shape[0], np.int64)])
        if self._species_born:
            self.hooks.species_born(self, ids.cpu().numpy(), parent_species.cpu().numpy(), step)
        return ids

    def population_by_strategy(self) -> dict[str, int]:
        """Living agents per variation strategy (``strategy_names``)."""
        st = self.world
        codes = st.strategy[: st.hw][st.alive[: st.hw]].cpu().numpy()
        counts = np.bincount(codes.astype(np.int64), minlength=len(self.strategy_names))
        return {name: int(c) for name, c in zip(self.strategy_names, counts, strict=False)}

    def _sample_strategies(self, step: int) -> None:
        self.strategy_series.append([step, *self.population_by_strategy().values()])
        if len(self.strategy_series) > 2000:  # keep it bounded: every other row, half as often
            self.strategy_series = self.strategy_series[::2]
            self.strategy_series_every *= 2

    def behaviour(self, slots: torch.Tensor) -> torch.Tensor:
        """The behaviour characterisation of the agents in ``slots`` (hook ``alife_behaviour``)."""
        return self.hooks.behaviour(self, slots)

    # ------------------------------------------------------------------ public API
    @property
    def population(self) -> int:
        return self.world.population

    @property
    def step_count(self) -> int:
        return self.world.step

    def state(self) -> dict[str, np.ndarray]:
        """The living agents' arrays (ids, pos, heading, energy, age, species, genomes, ...) and the
        resource field, as numpy copies."""
        return self.world.to_numpy()

    def species_count(self) -> int:
        sp = self.world.species[self.world.alive]
        return int(torch.unique(sp).numel()) if sp.numel() else 0

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

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.hooks.sim_end(self)

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

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

    def sense(self) -> torch.Tensor:
        """Observations ``[hw, n_obs]`` (rows by slot) of the current state, as brains see them."""
        return self._sense()[3]

    def step(self, actions: torch.Tensor | None = None) -> None:
        """Advance one step. ``actions`` (``[hw, 5]``, rows by slot) replaces the brains' choice."""
        cfg, st = self.config, self.world
        step = st.step
        self.stats = {"births": 0, "births_refused_capacity": 0, "deaths": 0}
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
        if self._after_act:
            self.hooks.after_act(self, alive.nonzero().squeeze(1), act)
        energy_before = st.energy[:n].clone() if self._learn else None

        # physics: clean the actions, turn and move, eat
        move_eat = self._move_eat_cpu if self._cpu else self._move_eat
        speed, invalid, attacking = move_eat(act, alive, nb, dist)
        energy = st.energy[:n]

        # physics: fight
        if self._cpu:
            killed = self._fight_cpu(attacking, nb)
        else:
            killed = self._fight(attacking, nb)

        # physics: regrow
        self._regrow(step)

        # metabolism and death
        metabolism = self._metabolism_cpu if self._cpu else self._metabolism
        self._kill(*metabolism(alive, speed, invalid, killed), step)

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
        self._reproduce(nb, dist, step)

        if st.hw == 0 and cfg.world.extinction != "stop":
            self._refill(step)

        # species that lost their last member
        dead_sp, self._dead_species = self._dead_species, None
        if dead_sp is not None and self._species_extinct:
            gone = dead_sp[self._species_live[dead_sp] == 0]
            if gone.size:
                self.hooks.species_extinct(self, gone, step)

        # record
        st.step += 1
        if self.mixed_role is not None and step % self.strategy_series_every == 0:
            self._sample_strategies(step)
        self.hooks.step_end(self, step)

    # The physics phases have two implementations that agree (tests/test_physics.py): whole-array
    # torch operations (CUDA, or a CPU without numba) and fused numba passes over the slot arrays
    # (CPU), which replace about a hundred small torch operations per step.
    def _move_eat(self, act: torch.Tensor, alive: torch.Tensor, nb: torch.Tensor, dist: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Clean the actions, turn and move, eat; returns ``(speed, invalid, attacking)``."""
        cfg, st, a, n = self.config, self.world, self.config.agent, alive.shape[0]
        # genomes are checked where they change (birth, learning): see _bad_genome
        invalid = (~torch.isfinite(act).all(1) | self._bad_genome[:n]) & alive
        act = torch.nan_to_num(act, 0.0, 0.0, 0.0).clamp_(-1.0, 1.0)
        st.last_action[:n] = act
        st.ready[:n] = (act[:, 4] > 0) & alive
        speed = (act[:, 1] + 1.0) * 0.5 * alive.float()
        hd = torch.remainder(st.heading[:n] + act[:, 0] * a.max_turn, 2 * math.pi)
        st.heading[:n] = hd
        pos = st.pos[:n]
        step_len = speed * a.max_speed
        pos[:, 0].add_(hd.cos() * step_len).remainder_(cfg.world.width)
        pos[:, 1].add_(hd.sin() * step_len).remainder_(cfg.world.height)
        # agents in one cell share what it holds in proportion to their bites
        res = st.resource.view(-1)
        wdt, hgt = cfg.world.width, cfg.world.height
        cell = pos[:, 1].long().clamp_(0, hgt - 1) * wdt + pos[:, 0].long().clamp_(0, wdt - 1)
        demand = ((act[:, 2] > 0) & alive).float() * a.bite
        total = torch.bincount(cell, weights=demand, minlength=res.numel()).to(res.dtype)
        frac = torch.where(total > 0, (res / total.clamp(min=1e-12)).clamp(max=1.0), torch.zeros_like(res))
        res.sub_(total * frac)
        food = demand * frac[cell] * a.food_energy
        st.energy[:n] += food
        st.lifetime_energy[:n] += food
        attacking = (act[:, 3] > 0) & alive & (nb >= 0) & (dist <= a.contact_radius)
        return speed, invalid, attacking

    def _move_eat_cpu(self, act: torch.Tensor, alive: torch.Tensor, nb: torch.Tensor, dist: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a, n, v, sc = self.config.agent, alive.shape[0], self.world.np, self._scratch
        speed, invalid, attacking = sc["speed"][:n], sc["invalid"][:n], sc["attacking"][:n]
        act_move_eat_cpu(
            act.contiguous().numpy(), alive.numpy(), self._bad_genome[:n].numpy(), nb.numpy(),
            dist.numpy(), v.heading[:n], v.pos[:n, 0], v.pos[:n, 1], v.energy[:n],
            v.lifetime_energy[:n], v.last_action[:n], v.ready[:n], v.resource, sc["total"],
            sc["cell"][:n], speed, invalid, attacking, max_turn=a.max_turn, max_speed=a.max_speed,
            bite=a.bite, food_energy=a.food_energy, contact=a.contact_radius)
        return torch.from_numpy(speed), torch.from_numpy(invalid), torch.from_numpy(attacking)

    def _fight(self, attacking: torch.Tensor, nb: torch.Tensor) -> torch.Tensor:
        """Attacks on each attacker's nearest agent; returns who was killed."""
        st, a, n = self.world, self.config.agent, attacking.shape[0]
        energy = st.energy[:n]
        killed = torch.zeros(n, dtype=torch.bool, device=self.device)
        attackers = attacking.nonzero().squeeze(1)
        if attackers.numel():
            targets = nb[attackers]
            damage, gain = self.hooks.interact(self, attackers, targets)
            want = torch.zeros(n, device=self.device).index_add_(0, targets, damage)
            have = energy.clamp(min=0)
            scale = torch.where(want > have, have / want.clamp(min=1e-12), torch.ones_like(want))[targets]
            taken = damage * scale
            energy.index_add_(0, targets, -taken)
            energy.index_add_(0, attackers, gain * scale)
            st.lifetime_energy.index_add_(0, attackers, gain * scale)
            killed[targets] = energy[targets] <= 1e-6
            energy.sub_(attacking.float() * a.attack_cost)
        return killed

    def _fight_cpu(self, attacking: torch.Tensor, nb: torch.Tensor) -> torch.Tensor:
        n, v = attacking.shape[0], self.world.np
        killed = np.zeros(n, dtype=np.bool_)
        att = np.flatnonzero(attacking.numpy())
        if att.size:
            targets = nb.numpy()[att]
            damage, gain = self.hooks.interact(self, torch.from_numpy(att), torch.from_numpy(targets))
            fight_cpu(att, targets, damage.float().contiguous().numpy(),
                      gain.float().contiguous().numpy(), v.energy, v.lifetime_energy, killed,
                      self._scratch["want"], self.config.agent.attack_cost)
        return torch.from_numpy(killed)

    def _metabolism(self, alive: torch.Tensor, speed: torch.Tensor, invalid: torch.Tensor,
                    killed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pay the step's cost and age; returns the slots that die and their causes."""
        st, a, n = self.world, self.config.agent, alive.shape[0]
        energy = st.energy[:n]
        cost = a.base_cost + a.move_cost * speed * speed + a.brain_cost * self.policy_params
        energy.sub_(cost * alive.float()).clamp_(max=a.max_energy)
        st.age[:n] += alive.long()
        killed = killed & alive
        starved = alive & (energy <= 0)
        old = alive & (st.age[:n] >= a.max_age)
        invalid = invalid | (alive & ~torch.isfinite(energy))
        slots = (invalid | killed | starved | old).nonzero().squeeze(1)
        # one cause each, by precedence: invalid > eaten > starved > old age
        cause = torch.full((slots.numel(),), CAUSE_CODE["old_age"], dtype=torch.uint8, device=self.device)
        cause[starved[slots]] = CAUSE_CODE["starved"]
        cause[killed[slots]] = CAUSE_CODE["eaten"]
        cause[invalid[slots]] = CAUSE_CODE["invalid"]
        return slots, cause

    def _metabolism_cpu(self, alive: torch.Tensor, speed: torch.Tensor, invalid: torch.Tensor,
                        killed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, n, v, sc = self.config.agent, alive.shape[0], self.world.np, self._scratch
        k = metabolism_cpu(alive.numpy(), v.energy[:n], v.age[:n], speed.numpy(), invalid.numpy(),
                           killed.numpy(), sc["slots"], sc["cause"], base_cost=a.base_cost,
                           move_cost=a.move_cost, brain=a.brain_cost * self.policy_params,
                           max_energy=a.max_energy, max_age=a.max_age, codes=self._cause_codes)
        # copies: the scratch is rewritten next step, and hooks may keep what they are given
        return torch.from_numpy(sc["slots"][:k].copy()), torch.from_numpy(sc["cause"][:k].copy())

    def _regrow(self, step: int) -> None:
        r, rc = self.world.resource, self.config.resource
        factor: Any = 1.0
        if self._regrowth:
            for f in self.hooks.resource_regrowth(self, step):
                if f is not None:
                    factor = factor * f
        if self._cpu and isinstance(factor, (int, float)):
            regrow_cpu(r.numpy(), rc.regrowth, rc.max, rc.seed_growth, float(factor))
            return
        growth = (rc.regrowth * r * (1.0 - r / rc.max) + rc.seed_growth) * factor
        r.add_(growth).clamp_(0.0, rc.max)

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
        sp = st.np.species[slots_np] if self._cpu else st.species[slots].cpu().numpy()
        np.subtract.at(self._species_live, sp, 1)
        self._dead_species = np.unique(sp)
        counts = np.bincount(cause_np, minlength=len(CAUSES))
        for c, name in enumerate(CAUSES):
            self.totals[f"deaths_{name}"] += int(counts[c])
        self.stats["deaths"] = k
        self.totals["deaths"] += k
        if self._pool is not None:
            self._remember(slots[cause != CAUSE_CODE["invalid"]])
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

    def _builtin_reproduction(self) -> bool:
        """Whether the four reproduction roles are played by the built-in strategies alone (no
        other implementation, no wrapper): then the CPU runs them fused."""
        return self._cpu and self.mixed_role is None and all(
            getattr(getattr(self.hooks.role_function(r), "__self__", None), "fused_kernel", None) == mark
            for r, mark in _FUSED_ROLES.items())

    def _reproduce(self, nb: torch.Tensor, dist: torch.Tensor, step: int) -> None:
        st, a, dev, g = self.world, self.config.agent, self.device, self.generator
        n = nb.shape[0]
        self.last_births = None
        if self._fuse and self._builtin_reproduction():
            return self._reproduce_fused(nb, dist, step)
        # the living, and each one's nearest agent if alive and within contact range (else -1)
        if self._cpu:
            live, near = map(torch.from_numpy, live_contacts_cpu(
                nb.numpy(), dist.numpy(), st.np.alive[:n], a.contact_radius))
        else:
            live = st.alive[:n].nonzero().squeeze(1)
            near = nb[live]
            near = torch.where((near >= 0) & (dist[live] <= a.contact_radius) & st.alive[near.clamp(min=0)],
                               near, -1)
        if live.numel() == 0:
            return
        ix = _ix_numpy if self._cpu else _ix_torch  # numpy's indexing costs less on the CPU
        parents, partners = self.hooks.select_parents(self, live, near, ix(st.ready, live))
        k = parents.numel()
        if k == 0:
            return
        self._check_parents(parents, partners)
        two = ix(partners >= 0, None)
        if two.numel():
            ok = self.hooks.mate(self, ix(parents, two), ix(partners, two))
            partners = partners.clone()
            if self._cpu:
                partners.numpy()[two.numpy()[~ok.numpy()]] = -1
            else:
                partners[two[~ok]] = -1
        free = first_free_cpu(st.np.alive, k) if self._cpu else st.free_slots(k)
        if free.numel() < k:
            refused = k - free.numel()
            self.stats["births_refused_capacity"] = refused
            self.totals["births_refused_capacity"] += refused
            parents, partners, k = parents[: free.numel()], partners[: free.numel()], free.numel()
            if k == 0:
                return
        child = self.hooks.reproduce(self, parents, partners)
        jitter = torch.randn(k, 2, generator=g, device=dev)
        turn = torch.rand(k, generator=g, device=dev)
        species = self.hooks.speciate(self, child, ix(st.species, parents).clone(), step)
        first_id = st.next_id
        pay = a.child_energy + a.birth_cost
        if self._cpu:
            child_np, free_np = child.contiguous().numpy(), free.numpy()
            place_children_cpu(st, free_np, parents.numpy(), partners.numpy(), child_np,
                               jitter.numpy(), turn.numpy(), species.numpy(),
                               self._bad_genome.numpy(), child_energy=a.child_energy, pay=pay)
            self._policy_cpu.put(free_np, child_np)  # the kernel wrote genomes behind torch's back
        else:
            self._place_children(free, parents, partners, child, jitter, turn, species, pay)
        self._announce_births(step, first_id, free, parents, partners, species)

    def _check_parents(self, parents: torch.Tensor, partners: torch.Tensor) -> None:
        """The selection role's answer must name living agents (partners: another living agent
        or -1) whose energy pays for every child they parent (see ``alife_select_parents``)."""
        st, a = self.world, self.config.agent
        n = st.hw
        pa, pb = parents.cpu().numpy(), partners.cpu().numpy()
        alive = st.alive[:n].cpu().numpy()
        what = None
        if pa.min() < 0 or pa.max() >= n:
            what = f"parent slot {int(pa[(pa < 0) | (pa >= n)][0])} outside the world's slots [0, {n})"
        elif pb.min() < -1 or pb.max() >= n:
            what = f"partner slot {int(pb[(pb < -1) | (pb >= n)][0])} outside [-1, {n})"
        elif not alive[pa].all():
            what = f"slot {int(pa[~alive[pa]][0])} as a parent, but no agent lives there"
        elif (pb >= 0).any() and not alive[pb[pb >= 0]].all():
            what = f"slot {int(pb[pb >= 0][~alive[pb[pb >= 0]]][0])} as a partner, but no agent lives there"
        elif (pa == pb).any():
            what = f"slot {int(pa[pa == pb][0])} as its own partner"
        else:
            need = np.bincount(pa, minlength=n) * (a.child_energy + a.birth_cost)
            have = st.energy[:n].cpu().numpy()
            short = np.flatnonzero((need > 0) & (need > have))
            if short.size:
                c = short[0]
                what = (f"slot {int(c)} as the first parent of {int(need[c] / (a.child_energy + a.birth_cost))} "
                        f"child(ren), which cost {float(need[c]):.3g} energy (child_energy + birth_cost each), "
                        f"but it has {float(have[c]):.3g}")
        if what is not None:
            self.hooks.bad_result("selection", f"it chose {what}")

    def _announce_births(self, step: int, first_id: int, free: torch.Tensor | np.ndarray,
                         parents: torch.Tensor | np.ndarray, partners: torch.Tensor | np.ndarray,
                         species: torch.Tensor | np.ndarray) -> None:
        """After the children are placed: their plugin arrays and strategies, species counts,
        counters, and the ``alife_agents_born`` event."""
        st = self.world
        t = (lambda x: torch.as_tensor(x, device=self.device))  # noqa: E731
        free_t, par_t, prt_t = t(free), t(parents), t(partners)
        free = free_t.cpu().numpy()
        species = species.cpu().numpy() if isinstance(species, torch.Tensor) else species
        k = free.shape[0]
        if len(self.arrays):
            self.arrays.births(free_t, par_t, prt_t)
        codes = None
        if self.mixed_role is not None:
            codes_t = st.strategy[par_t]
            rate, m = self.config.mixture.switch_rate, len(self.strategy_names)
            if rate > 0:
                switch = torch.rand(k, generator=self.generator, device=self.device) < rate
                other = (codes_t.long() + torch.randint(1, m, (k,), generator=self.generator, device=self.device)) % m
                codes_t = torch.where(switch, other.to(codes_t.dtype), codes_t)
            st.strategy[free_t] = codes_t
            codes = codes_t.cpu().numpy()
        elif not self._cpu:
            st.strategy[free_t] = 0
        else:
            st.np.strategy[free] = 0
        np.add.at(self._species_live, species, 1)
        parent_ids = st.np.parents[free] if self._cpu else st.parents[free_t].cpu().numpy()
        st.next_id += k
        st.hw = max(st.hw, int(free[-1]) + 1)
        self.stats["births"] = k
        self.totals["births"] += k
        births = Births(step, np.arange(first_id, first_id + k), free, parent_ids, species,
                        self.hooks.chosen["reproduction"], codes, self.strategy_names if codes is not None else (),
                        np.stack([par_t.cpu().numpy(), prt_t.cpu().numpy()], axis=1))
        self.last_births = births
        self.hooks.agents_born(self, births)

    def _reproduce_fused(self, nb: torch.Tensor, dist: torch.Tensor, step: int) -> None:
        """The built-in selection, mating, crossover and Gaussian mutation in four numba passes:
        the same decisions and the same generator draws, in the same order, as calling their
        hooks (tests/test_strategy_kernels.py), without a dozen conversions and calls between
        them, which at a few hundred agents cost more than the work."""
        st, a, g, v = self.world, self.config.agent, self.generator, self.world.np
        lay, mu, f32, n = self.layout, self.config.mutation, np.float32, nb.shape[0]
        parents, partners = np.empty(n, np.int64), np.empty(n, np.int64)
        k = SK._parents(nb.numpy(), dist.numpy(), v.alive[:n], v.ready[:n], v.energy[:n], v.age[:n],
                        f32(a.contact_radius), f32(a.reproduce_energy), a.min_reproduce_age,
                        parents, partners)
        if k == 0:
            return
        parents, partners = parents[:k], partners[:k]
        m = int(np.count_nonzero(partners >= 0))
        if m:
            u = torch.rand(2, m, generator=g)
            SK._mate_pairs(v.genomes, parents, partners, u.numpy(), *self._compat_args)
        free = first_free_cpu(v.alive, k).numpy()
        if free.shape[0] < k:
            refused = k - free.shape[0]
            self.stats["births_refused_capacity"] = refused
            self.totals["births_refused_capacity"] += refused
            parents, partners, k = parents[: free.shape[0]], partners[: free.shape[0]], free.shape[0]
            if k == 0:
                return
        m = int(np.count_nonzero(partners >= 0))
        # the hook path draws no coins when no pair is left
        pick = (torch.rand(m, len(lay.entries), generator=g).numpy() if m
                else np.zeros((0, len(lay.entries)), np.float32))
        noise = torch.randn(k, lay.size, generator=g).numpy()
        child = np.empty((k, lay.size), np.float32)
        strays = np.empty(k, np.bool_)
        species = v.species[parents]
        e, t = lay["mutator.log_sigma"], lay["compatibility.tag"]
        n_new = SK._children(
            v.genomes, parents, partners, pick, lay.bounds, noise, e.offset, e.size,
            self._segment_index_np, f32(mu.tau), f32(math.log(mu.sigma_min)), f32(math.log(mu.sigma_max)),
            t.offset, np.ascontiguousarray(st.species_founder.numpy()), species,
            f32(mu.species_threshold), child, strays)
        jitter = torch.randn(k, 2, generator=g).numpy()
        turn = torch.rand(k, generator=g).numpy()
        if n_new:
            idx = np.flatnonzero(strays)
            tags = torch.from_numpy(child[idx, t.offset:t.offset + t.size].copy())
            species[idx] = self.new_species(tags, torch.from_numpy(species[idx]), step).numpy()
        first_id = st.next_id
        place_children_cpu(st, free, parents, partners, child, jitter, turn, species,
                           self._bad_genome.numpy(), child_energy=a.child_energy, pay=a.child_energy + a.birth_cost)
        self._policy_cpu.put(free, child)
        self._announce_births(step, first_id, free, parents, partners, species)

    def _place_children(self, free: torch.Tensor, parents: torch.Tensor, partners: torch.Tensor,
                        child: torch.Tensor, jitter: torch.Tensor, turn: torch.Tensor,
                        species: torch.Tensor, pay: float) -> None:
        """Write the children into their slots (the torch twin of ``place_children_cpu``)."""
        cfg, st, a, dev = self.config, self.world, self.config.agent, self.device
        k = free.numel()
        st.energy.index_add_(0, parents, torch.full((k,), -pay, device=dev))  # the parent pays
        has2 = partners >= 0
        p2c = partners.clamp(min=0)
        st.pos[free] = (st.pos[parents] + jitter * 0.5).remainder_(
            torch.tensor([cfg.world.width, cfg.world.height], dtype=torch.float32, device=dev))
        st.heading[free] = turn * (2 * math.pi)
        st.energy[free] = a.child_energy
        st.lifetime_energy[free] = 0.0
        st.age[free] = 0
        st.genomes[free] = child
        self._bad_genome[free] = ~torch.isfinite(child).all(1)
        st.ids[free] = torch.arange(st.next_id, st.next_id + k, device=dev)
        st.parents[free, 0] = st.ids[parents]
        st.parents[free, 1] = torch.where(has2, st.ids[p2c], -1)
        gen = st.generation[parents]
        st.generation[free] = torch.where(has2, torch.maximum(gen, st.generation[p2c]), gen) + 1
        st.children[free] = 0
        st.children.index_add_(0, parents, torch.ones_like(parents))
        st.children.index_add_(0, partners[has2], torch.ones_like(partners[has2]))
        st.ready[free] = False
        st.last_action[free] = 0.0
        st.species[free] = species
        st.alive[free] = True

    # ------------------------------------------------------------------ extinction policy
    def _init_extinction_pool(self) -> None:
        """``[world] extinction = "reseed"`` keeps the genomes of the last ``initial_agents`` agents
        that died (not of cause "invalid") in a ring buffer: a bounded pool to refill from."""
        self.totals.update(extinctions=0, reseeded=0)
        self._pool: dict[str, torch.Tensor] | None = None
        self._pool_n = self._pool_pos = 0
        if self.config.world.extinction == "reseed":
            b, dev = self.config.world.initial_agents, self.device
            self._pool = {"genomes": torch.zeros(b, self.layout.size, device=dev),
                          "ids": torch.full((b,), -1, dtype=torch.int64, device=dev),
                          "species": torch.zeros(b, dtype=torch.int64, device=dev),
                          "generation": torch.zeros(b, dtype=torch.int64, device=dev),
                          "strategy": torch.zeros(b, dtype=torch.int16, device=dev)}

    def _remember(self, slots: torch.Tensor) -> None:
        assert self._pool is not None
        b, st = self._pool["ids"].shape[0], self.world
        slots = slots[-b:]
        m = slots.numel()
        if m == 0:
            return
        at = (self._pool_pos + torch.arange(m, device=self.device)) % b
        for name in ("genomes", "ids", "species", "generation", "strategy"):
            self._pool[name][at] = getattr(st, name)[slots]
        self._pool_pos = (self._pool_pos + m) % b
        self._pool_n = min(b, self._pool_n + m)

    def _pool_order(self) -> torch.Tensor:
        """Physical rows of the pool, oldest first."""
        assert self._pool is not None
        b = self._pool["ids"].shape[0]
        return (self._pool_pos - self._pool_n + torch.arange(self._pool_n, device=self.device)) % b

    def extinction_pool_arrays(self) -> dict[str, np.ndarray] | None:
        """The reseed pool, oldest first, for checkpoints (``None`` unless extinction = reseed)."""
        if self._pool is None:
            return None
        order = self._pool_order()
        return {k: v[order].cpu().numpy() for k, v in self._pool.items()}

    def restore_extinction_pool(self, arrays: dict[str, np.ndarray] | None) -> None:
        """Put back a pool saved by :meth:`extinction_pool_arrays`."""
        if self._pool is None:
            return
        b = self._pool["ids"].shape[0]
        self._pool_n = self._pool_pos = 0
        if not arrays:
            return
        m = min(b, len(arrays["ids"]))
        for k, v in self._pool.items():
            if k not in arrays:  # a checkpoint from before strategies were mixed: all strategy 0
                v.zero_()
                continue
            v[:m] = torch.from_numpy(np.asarray(arrays[k])[-m:] if m else np.asarray(arrays[k])[:0]).to(v)
        self._pool_n, self._pool_pos = m, m % b

    def _refill(self, step: int) -> None:
        """The population died out: place ``initial_agents`` agents again, from the pool of
        recently dead genomes (``reseed``; newest first) or random genomes (``inject``, or a
        reseed with an empty pool). They are announced as births whose first parent is the agent
        the genome came from (-1 for random genomes)."""
        cfg, st, g, dev = self.config, self.world, self.generator, self.device
        n, w = cfg.world.initial_agents, cfg.world
        if self._pool is not None and self._pool_n > 0:
            order = self._pool_order().flip(0)
            rows = order[torch.arange(n, device=dev) % self._pool_n]
            genomes = self._pool["genomes"][rows].clone()
            parent = self._pool["ids"][rows].clone()
            species = self._pool["species"][rows].clone()
            generation = self._pool["generation"][rows] + 1
            strategy = self._pool["strategy"][rows].clone()
            how = "extinction-reseed"
        else:
            genomes = init_genomes(self.layout, n, cfg.brain, cfg.mutation.sigma_init, g, dev)
            k = min(w.initial_species, n)
            founders = torch.randn(k, cfg.brain.tag_dim, generator=g, device=dev)
            first = self.new_species(founders, torch.full((k,), -1, dtype=torch.int64, device=dev), step)
            species = first[torch.arange(n, device=dev) % k]
            tags = self.layout.view(genomes, "compatibility.tag")
            tags.copy_(founders[torch.arange(n, device=dev) % k]
                       + 0.05 * torch.randn(tags.shape, generator=g, device=dev))
            parent = torch.full((n,), -1, dtype=torch.int64, device=dev)
            generation = torch.zeros(n, dtype=torch.int64, device=dev)
            strategy = None
            how = "extinction-inject"
        sl = slice(0, n)
        ids = torch.arange(st.next_id, st.next_id + n, device=dev)
        st.alive[sl] = True
        st.ids[sl] = ids
        st.pos[sl, 0] = torch.rand(n, generator=g, device=dev) * w.width
        st.pos[sl, 1] = torch.rand(n, generator=g, device=dev) * w.height
        st.heading[sl] = torch.rand(n, generator=g, device=dev) * (2 * math.pi)
        st.energy[sl] = cfg.agent.initial_energy
        st.lifetime_energy[sl] = 0.0
        st.age[sl] = (torch.rand(n, generator=g, device=dev) * (cfg.agent.max_age // 2)).long()
        st.species[sl] = species
        st.genomes[sl] = genomes
        st.parents[sl, 0] = parent
        st.parents[sl, 1] = -1
        st.generation[sl] = generation
        st.children[sl] = 0
        st.ready[sl] = False
        st.last_action[sl] = 0.0
        st.hw, st.next_id = n, st.next_id + n
        self.genomes_changed(torch.arange(n, device=dev))
        if len(self.arrays):  # as newborns of the agents their genomes came from: reset rows
            for name in self.arrays.names("slot"):
                self.arrays[name][sl] = self.arrays.specs[name].fill
        if strategy is not None:
            st.strategy[sl] = strategy
        else:
            self._assign_strategies(sl, n)
        self.recount_species()
        self.totals["extinctions"] += 1
        self.totals["reseeded"] += n
        births = Births(step, ids.cpu().numpy(), np.arange(n), st.parents[sl].cpu().numpy(),
                        species.cpu().numpy(), how, parent_slots=np.full((n, 2), -1, dtype=np.int64))
        self.last_births = births
        self.hooks.agents_born(self, births)
