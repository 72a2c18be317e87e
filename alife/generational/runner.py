"""Generational mode: evolve a population of genomes on a gymnasium task.

Each generation every genome's policy plays the same ``task.episodes`` seeded episodes (common
random numbers: differences in fitness are differences in policy, not in luck of the draw), all
policies batched in one forward pass per step (:mod:`alife.generational.episodes`); fitness is the
mean return. Then the run calls the same role hooks as an ecology world: ``selection`` chooses
parents, ``mating`` accepts or refuses pairs, ``reproduction`` makes children and calls
``mutation``. ``task.elite`` best genomes are carried over unchanged and re-evaluated, their
fitness a running mean over every episode they have played, so a lucky draw does not keep a
genome at the top; with ``task.confirm_every`` the best genome must also rest on
``task.confirm_episodes`` episodes (:meth:`TaskRun.confirm`), so a newcomer ranked first on a few
lucky episodes plays more or gives way. Mutate-and-select as a noisy gradient step is the model of
``../shared/seeds/natural-selection-and-gradient-descent.md``.

The strategy plugins read ``sim.world.genomes``, ``sim.layout``, ``sim.segment_index``,
``sim.tensor_index``, ``sim.generator``, ``sim.config`` and ``sim.hooks``; :class:`TaskRun` offers
those names, so the same plugins run unchanged. Births and deaths are fired as
``alife_agents_born`` / ``alife_agents_died`` with a generation number as the step.

Honest evaluation: the result is the best genome *by training fitness* scored on
``task.heldout_episodes`` held-out seeded episodes (seeds disjoint from training), at the end and
every ``task.heldout_every`` generations; never the max over noisy training means.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alife import config as config_mod
from alife.config import ConfigError, WorldConfig
from alife.events import CAUSE_CODE, Deaths, Fitness
from alife.generational.episodes import EpisodePool, heldout_seeds, training_seeds
from alife.generational.policy import init_conv, task_layout
from alife.genome import init_genomes
from alife.host import Host
from alife.phases.reproduction import Reproduction
from alife.world.state import WorldState


def _check_task(cfg: WorldConfig) -> None:
    t, s = cfg.task, cfg.source
    if t is None:
        raise ConfigError(s, "task", "this world has no [task] table; `alife run` runs it as an ecology world")
    if t.elite >= t.population:
        raise ConfigError(s, "task.elite", f"{t.elite} elites leave no room for children in task.population = {t.population}")
    if t.parents > t.population:
        raise ConfigError(s, "task.parents", f"must not exceed task.population = {t.population}")


def confirm_best(ret_sum: np.ndarray, ret_n: np.ndarray, need_n: int, chunk: int,
                 play: Any, floor: float | None = None) -> tuple[bool, list[int]]:
    """The threshold rule's confirmation, one implementation for every method compared on tasks
    (``TaskRun.confirm``, ``benchmarks/peers.py``): the best genome by training mean
    (``ret_sum / ret_n``, first index on ties) is made to rest on at least ``need_n`` training
    episodes. While it has fewer, ``play(b, k)`` plays ``k`` more (``chunk`` at a time, or all it
    lacks; returns their returns) and the ranking is redone, so a genome ranked first on a few lucky
    episodes either holds its place or gives it to the next best. With ``floor``, stop (False) as
    soon as the best is below it. Updates ``ret_sum``/``ret_n`` in place; returns whether the best
    rests on enough episodes (and is at the floor), and the rows that played."""
    touched: list[int] = []
    while True:
        b = int(np.argmax(ret_sum / ret_n))
        if floor is not None and ret_sum[b] / ret_n[b] < floor:
            return False, touched
        need = int(need_n - ret_n[b])
        if need <= 0:
            return True, touched
        if chunk:
            need = min(need, chunk)
        ret_sum[b] += play(b, need).sum()
        ret_n[b] += need
        touched.append(b)


class TaskRun(Host):
    """A generational run on a gymnasium task (the strategy host in ``mode = "task"``).
    Arguments as for :class:`alife.Simulation`.

    ``world`` is a :class:`alife.world.state.WorldState` with one slot per genome
    (``task.population``), all alive between generations; elites keep their slots, children take
    the slots of the genomes that do not survive. ``lifetime_energy`` and ``energy`` hold each
    genome's training fitness (its mean return)."""

    mode = "task"

    def __init__(self, world: Any, *, seed: int | None = None, device: str | None = None,
                 overrides: dict[str, Any] | None = None, plugins: Iterable[Any] = (),
                 modules: Iterable[str] = (), plugins_dirs: Iterable[str | Path] = (),
                 blocked: Iterable[str] = (), run_dir: str | Path | None = None):
        cfg = config_mod.load(world, overrides)
        if seed is not None:
            # replace, not an override: a loaded config does not round-trip its nan threshold default
            cfg = dataclasses.replace(cfg, seed=int(seed))
        _check_task(cfg)
        task = cfg.task
        pool: Any = EpisodePool(task.env_id, task.max_episode_steps, cfg.source)
        spec = pool.spec
        self._init_host(cfg, device=device, plugins=plugins, modules=modules, plugins_dirs=plugins_dirs,
                        blocked=blocked, run_dir=run_dir,
                        make_layout=lambda extra: task_layout(spec, cfg.brain, task.hidden, extra))
        self.task = task
        self.rng = np.random.default_rng(self.seed)
        self.pool, self.spec = pool, spec
        thr = task.threshold if math.isfinite(task.threshold) else self.pool.reward_threshold
        self.threshold: float | None = None if thr is None else float(thr)
        from alife.generational.workers import evaluator

        self.pool = evaluator(self.pool, task.workers)  # the evaluation seam: in-process or a process pool
        n, dev = task.population, self.device
        self._init_world(WorldState(n, self.layout.size, spec.n_act, 1, 1, cfg.brain.tag_dim, dev))
        #: the torch forms of the phases (a task run has no physics; the numba kernels serve the world)
        self._cpu, self._fuse = False, False
        self.reproduction = Reproduction(self)
        st, g = self.world, self.generator
        genomes = init_genomes(self.layout, n, cfg.brain, cfg.mutation.sigma_init, g, dev)
        if self.spec.image:
            init_conv(genomes, self.layout, cfg.brain.init_scale, g)
        # one founding species, every kin tag near its founder's (as the world's founders)
        founder = torch.randn(1, cfg.brain.tag_dim, generator=g, device=dev)
        tags = self.layout.view(genomes, "compatibility.tag")
        tags.copy_(founder + 0.05 * torch.randn(tags.shape, generator=g, device=dev))
        st.add_species(founder, torch.full((1,), -1, dtype=torch.long, device=dev), 0)
        st.genomes.copy_(genomes)
        st.alive.fill_(True)
        st.ids.copy_(torch.arange(n, device=dev))
        st.species.fill_(0)
        st.hw, st.next_id = n, n
        self.offspring_count = n - task.elite
        self._learn = self.hooks.has_impls("alife_learn")
        self._after_act = self.hooks.has_impls("alife_after_act")
        if self._after_act and task.workers > 1:
            warnings.warn("a plugin implements alife_after_act, which runs in this process only: training "
                          "episodes are played here, not in the task.workers helpers", stacklevel=2)
        #: training fitness the selection role ranks by: each genome's mean return over every
        #: training episode it has played (elites accumulate episodes across generations)
        self.fitness = torch.zeros(n, dtype=torch.float64, device=dev)
        self._ret_sum = np.zeros(n)
        self._ret_n = np.zeros(n)
        self._fixed_seeds = training_seeds(self.rng, task.episodes) if task.eval_seeds == "fixed" else None
        self.generation = 0
        self.env_steps = 0
        #: training env steps spent confirming best genomes (part of ``env_steps``)
        self.confirm_env_steps = 0
        self.heldout_env_steps = 0
        self.train_wall = 0.0
        self._cpu0 = self._cpu_seconds()
        self._heldout_cpu = 0.0
        self.history: list[dict[str, Any]] = []
        self.heldout_history: list[dict[str, Any]] = []
        self.reached: dict[str, Any] | None = None
        self._closed = False
        self.hooks.setup(self)
        self.arrays.new_species(torch.full((1,), -1, dtype=torch.long, device=dev), 1)
        self.recount_species()
        self.hooks.sim_start(self)

    # ------------------------------------------------------------------ evaluation
    @property
    def step_count(self) -> int:
        return self.generation

    def evaluate(self, genomes: torch.Tensor, seeds: np.ndarray,
                 slots: torch.Tensor | None = None) -> tuple[np.ndarray, int]:
        """``[N, len(seeds)]`` returns of every genome on every seed, and the env steps taken.
        With ``slots`` (the genomes' slots: training episodes), ``alife_after_act`` fires each env
        step; held-out episodes score the genome alone and fire no hook."""
        n, e = genomes.shape[0], len(seeds)
        rows = genomes.repeat_interleave(e, dim=0)
        after = None if slots is None else self._after_act_of(slots.repeat_interleave(e))
        returns, steps = self.pool.play(rows, self.layout, np.tile(seeds, n), self.task.action_mapping, after)
        if slots is not None:
            fin = getattr(self.pool, "final_obs", None)
            #: training episodes' last observations, mean over each genome's episodes (``[N, inputs]``;
            #: None where a process pool played them): novelty's ``behaviour = "final-observation"``
            self.final_obs = (None if fin is None else
                              torch.from_numpy(fin.reshape(n, e, -1).mean(1)).to(self.device, torch.float32))
        return returns.reshape(n, e), steps

    def _after_act_of(self, owner: torch.Tensor) -> Any:
        """``alife_after_act`` for episodes whose row ``b`` is played by the genome in slot
        ``owner[b]``: each env step, the playing rows' slots (one entry per episode: a genome
        playing several episodes at once appears once per episode) and their policy outputs."""
        if not self._after_act:
            return None
        return lambda active, outputs: self.hooks.after_act(self, owner[torch.from_numpy(active).to(owner.device)],
                                                            outputs)

    def best_index(self) -> int:
        """Row of the best genome by training fitness (its mean over all its training episodes)."""
        return int(torch.argmax(self.fitness))

    def heldout(self, row: int | None = None) -> dict[str, Any]:
        """Score one genome (default: the best by training fitness) on the held-out episodes."""
        row = self.best_index() if row is None else row
        seeds = heldout_seeds(self.task.heldout_episodes)
        c0 = self._cpu_seconds()
        returns, steps = self.evaluate(self.world.genomes[row:row + 1], seeds)
        self._heldout_cpu += self._cpu_seconds() - c0
        self.heldout_env_steps += steps
        r = returns[0]
        out = {"generation": self.generation, "env_steps": self.env_steps, "genome_id": int(self.world.ids[row]),
               "training_fitness": float(self.fitness[row]),
               "training_episodes": int(self._ret_n[row]), "heldout_mean": float(r.mean()),
               "heldout_std": float(r.std(ddof=1)) if r.size > 1 else 0.0, "heldout_episodes": int(r.size)}
        self.heldout_history.append(out)
        return out

    # ------------------------------------------------------------------ one generation
    def evaluate_generation(self) -> dict[str, Any]:
        """Play this generation's training episodes and update fitness; returns its history row."""
        t0, wall0 = time.perf_counter(), self.train_wall
        seeds = self._fixed_seeds if self._fixed_seeds is not None else training_seeds(self.rng, self.task.episodes)
        returns, steps = self.evaluate(self.world.genomes, seeds, torch.arange(self.population, device=self.device))
        self.env_steps += steps
        self._ret_sum += returns.sum(1)
        self._ret_n += returns.shape[1]
        self.fitness = torch.from_numpy(self._ret_sum / self._ret_n).to(self.device)
        self.world.lifetime_energy.copy_(self.fitness)
        self.world.energy.copy_(self.fitness)
        now = returns.mean(1)
        #: this generation's mean return of each genome (what ``alife_learn`` gets as rewards)
        self.last_returns = now
        hit = False
        if self.reached is None and self.threshold is not None:
            hit = float(now.mean()) >= self.threshold if self.task.threshold_on == "population" else self.confirm(self.threshold)
        self.train_wall = wall0 + time.perf_counter() - t0
        if hit:
            self.reached = {"generation": self.generation, "env_steps": self.env_steps, "wall_s": self.train_wall,
                            "cpu_s": self.train_cpu()}
        row = {"generation": self.generation, "env_steps": self.env_steps, "wall_s": round(self.train_wall, 4),
               "mean": float(now.mean()), "max": float(now.max()), "best_fitness": float(self.fitness.max())}
        self.history.append(row)
        return row

    def _cpu_seconds(self) -> float:
        """CPU seconds of this process, plus those of its episode helpers (``task.workers``)."""
        return time.process_time() + getattr(self.pool, "helper_cpu", 0.0)

    def train_cpu(self) -> float:
        """CPU seconds spent on the run so far (this process and its episode helpers), held-out
        scoring excluded."""
        return self._cpu_seconds() - self._cpu0 - self._heldout_cpu

    def confirm(self, floor: float | None = None) -> bool:
        """Make the best genome by training fitness rest on at least ``task.confirm_episodes``
        training episodes. While the best has fewer, it plays more (fresh training seeds, counted in
        ``env_steps``; ``task.confirm_chunk`` at a time, or all it lacks at once) and the ranking is
        redone, so a newcomer ranked first on a few lucky episodes either holds its place on more
        episodes or gives it to the next best. With ``floor``, stop (returning False) as soon as the
        best is below it; returns True once the best rests on enough episodes (and is at the floor)."""
        def play(b: int, need: int) -> np.ndarray:
            returns, steps = self.pool.play(self.world.genomes[b:b + 1].expand(need, -1),
                                            self.layout, training_seeds(self.rng, need), self.task.action_mapping,
                                            self._after_act_of(torch.full((need,), b, device=self.device)))
            self.env_steps += steps
            self.confirm_env_steps += steps
            return returns

        ok, touched = confirm_best(self._ret_sum, self._ret_n, self.task.confirm_episodes, self.task.confirm_chunk,
                                   play, floor)
        for b in touched:
            self.fitness[b] = self._ret_sum[b] / self._ret_n[b]
            self.world.lifetime_energy[b] = float(self.fitness[b])
        return ok

    def reproduce(self) -> None:
        """The generation's tell (``alife_fitness``), then the reproduction phase every mode
        shares (selection, mating, reproduction and mutation, speciation, births and deaths);
        the ``task.elite`` best keep their slots, the others' slots take the children."""
        t0 = time.perf_counter()
        w, n, step = self.world, self.population, self.generation
        if self._fitness:
            self.hooks.fitness(self, Fitness(step, w.ids.cpu().numpy(), np.arange(n, dtype=np.int64),
                                             self.fitness.cpu().numpy().astype(np.float64),
                                             w.children.cpu().numpy(), "task"))
        elite = torch.argsort(self.fitness, descending=True, stable=True)[: self.task.elite]
        self.stats = {"births": 0, "births_refused_capacity": 0, "deaths": 0}
        self.reproduction.generation(step, elite)
        self._announce_extinct_species(step)
        self.generation += 1
        self.train_wall += time.perf_counter() - t0

    def remove(self, slots: torch.Tensor, step: int) -> None:
        """The genomes in ``slots`` leave the population (cause ``removed``): deaths announced,
        their slots freed for the children (the reproduction phase calls this)."""
        w = self.world
        k = slots.numel()
        deaths = Deaths(step, w.ids[slots].cpu().numpy(), slots.cpu().numpy(),
                        np.full(k, CAUSE_CODE["removed"], dtype=np.uint8))
        self.last_deaths = deaths
        self.hooks.agents_died(self, deaths)
        self.totals["deaths"] += k
        self.totals["deaths_removed"] += k
        self.stats["deaths"] = k
        self._forget_species_members(w.species[slots].cpu().numpy())
        w.alive[slots] = False

    def born(self, slots: torch.Tensor) -> None:
        """Children took ``slots``: they have played no episode yet."""
        s = slots.cpu().numpy()
        self._ret_sum[s] = 0.0
        self._ret_n[s] = 0.0
        self.fitness[slots] = 0.0

    # ------------------------------------------------------------------ the run
    def run(self, progress: bool = False) -> dict[str, Any]:
        """Evolve until ``task.generations`` (or the threshold, with ``stop_at_threshold``); then
        score the best genome on the held-out episodes. Returns the summary."""
        from tqdm import tqdm

        t0 = time.perf_counter()
        task = self.task
        # the per-genome networks are tiny: intra-op threads only spin (measured on CartPole-v1:
        # 18 CPU-s with 2 threads against 1.5 CPU-s with 1, same result), so run single-threaded
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        bar = tqdm(total=task.generations, unit="gen", disable=not progress, dynamic_ncols=True)
        try:
            while True:
                g = self.generation
                self.hooks.step_start(self, g)
                row = self.evaluate_generation()
                if self._learn:  # between-episode learning on the returns
                    slots = self.world.alive_slots()
                    empty = torch.zeros(slots.numel(), 0, device=self.device)
                    self.hooks.learn(self, slots, empty, empty,
                                     torch.as_tensor(self.last_returns, dtype=torch.float32, device=self.device))
                bar.update(1)
                bar.set_postfix(mean=f"{row['mean']:.1f}", best=f"{row['best_fitness']:.1f}",
                                steps=self.env_steps, refresh=False)
                last = (g + 1 >= task.generations or (task.stop_at_threshold and self.reached is not None)
                        or (task.max_env_steps > 0 and self.env_steps >= task.max_env_steps))
                if task.confirm_every and ((g + 1) % task.confirm_every == 0 or last):
                    t1 = time.perf_counter()
                    self.confirm()
                    self.train_wall += time.perf_counter() - t1
                    row["best_fitness"] = float(self.fitness.max())
                    row["env_steps"] = self.env_steps
                    row["wall_s"] = round(self.train_wall, 4)
                if task.heldout_every and (g + 1) % task.heldout_every == 0 and not last:
                    self.heldout()
                if not last:
                    self.reproduce()  # births and deaths of step g, as in an ecology step
                self.world.step = g + 1
                self.hooks.step_end(self, g)
                if last:
                    break
            final = self.heldout()
        finally:
            bar.close()
            torch.set_num_threads(threads)
            self.close()
        return self.summary(final, time.perf_counter() - t0)

    def summary(self, final: dict[str, Any], wall: float) -> dict[str, Any]:
        """What ``summary.json`` holds for a task run."""
        last = self.history[-1]
        return {
            "world": self.config.name, "mode": "task", "env_id": self.task.env_id, "seed": self.seed,
            "device": str(self.device), "workers": self.task.workers, "generations": self.generation + 1, "population": self.population,
            "episodes_per_evaluation": self.task.episodes, "env_steps": self.env_steps,
            "heldout_env_steps": self.heldout_env_steps, "wall_time_s": round(wall, 3),
            "train_wall_time_s": round(self.train_wall, 3), "train_cpu_s": round(self.train_cpu(), 3),
            "heldout_mean": final["heldout_mean"], "heldout_std": final["heldout_std"],
            "heldout_episodes": final["heldout_episodes"], "best_genome_id": final["genome_id"],
            "best_training_fitness": final["training_fitness"],
            "final_population_mean": last["mean"],
            "threshold": self.threshold, "threshold_on": self.task.threshold_on,
            "confirm_episodes": self.task.confirm_episodes, "confirm_env_steps": self.confirm_env_steps,
            "best_training_episodes": final["training_episodes"],
            "reached_threshold": self.reached is not None,
            "generations_to_threshold": None if self.reached is None else self.reached["generation"] + 1,
            "env_steps_to_threshold": None if self.reached is None else self.reached["env_steps"],
            "wall_to_threshold_s": None if self.reached is None else round(self.reached["wall_s"], 3),
            "cpu_to_threshold_s": None if self.reached is None else round(self.reached["cpu_s"], 3),
            "heldout_history": self.heldout_history, "history": self.history,
            "strategies": dict(self.hooks.chosen), "policy_params": self.layout.segment_size("policy"),
            "genome_size": self.layout.size,
            "plugin_fields": self.hooks.summary(self),
        }

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self.hooks.sim_end(self)
            finally:
                self.pool.close()
