"""What the persistent world and a generational task run share: the strategy host.

:class:`Host` is the base of :class:`alife.Simulation` (``mode = "world"``) and
:class:`alife.generational.runner.TaskRun` (``mode = "task"``). It builds, the same way in both,
everything a strategy plugin reads: the plugin manager with its roles resolved for the mode, the
genome layout with the tensors plugins add, the seeded generator, the slot arrays
(``world``: a :class:`alife.world.state.WorldState`) and the plugin arrays (``arrays``), the
species table and its living counts, the strategies lineages carry, the counters, and the one
reproduction phase (:class:`alife.phases.reproduction.Reproduction`). A strategy plugin's code
therefore has no branch on the mode: it reads ``sim.world``, ``sim.layout``, ``sim.generator``,
``sim.arrays``, ``sim.config``, ``sim.hooks`` and calls ``sim.new_species`` alike in both.

What differs is what a mode does around that phase: the world senses, acts, moves and dies each
step and places children beside their parents; a task run plays seeded episodes each generation,
keeps its elites in their slots and puts the children in the slots of the genomes that did not
survive. Each mode says which hooks it fires (:data:`alife.plugins.hookspecs.HOOK_MODES`); a
plugin implementing a hook its mode never fires is refused at start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alife.config import WorldConfig
from alife.events import CAUSES, Births, Deaths
from alife.genome import Layout
from alife.plugins.manager import PluginError, PluginManager, build_manager
from alife.world.arrays import PluginArrays
from alife.world.state import WorldState


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; ``cuda`` without a GPU is an error."""
    from alife.config import ConfigError

    if isinstance(device, torch.device):
        return device
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device", "device", "cuda was asked for but no CUDA GPU is available")
    if device not in ("cpu", "cuda"):
        raise ConfigError("--device", "device", f"expected auto, cpu or cuda, got {device!r}")
    return torch.device(device)


class Host:
    """The strategy host (see the module docstring). Subclasses set ``mode``."""

    mode: str = ""

    def _init_host(self, cfg: WorldConfig, *, device: Any, plugins: Iterable[Any], modules: Iterable[str],
                   plugins_dirs: Iterable[str | Path], blocked: Iterable[str], run_dir: str | Path | None,
                   make_layout: Callable[[tuple], Layout]) -> None:
        """Everything before the slot arrays: config, seed, device, generator, plugins (roles
        resolved for the mode, hooks the mode never fires refused), layout, counters."""
        self.config: WorldConfig = cfg
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
            blocked=list(blocked), extra=list(plugins), mixture=cfg.mixture, mode=self.mode)
        try:
            self.layout = make_layout(tuple(self.hooks.genome_tensors(cfg)))
        except ValueError as e:
            raise PluginError(f"alife_genome_tensors: {e}") from None
        self.segment_index = self.layout.segment_index().to(self.device)
        self.tensor_index = self.layout.tensor_index().to(self.device)
        #: the variation strategies lineages carry (``world.strategy`` indexes it): a ``[mixture]``'s
        #: strategies, or the one reproduction strategy
        self.mixed_role: str | None = cfg.mixture.role if cfg.mixture is not None else None
        self.strategy_names: tuple[str, ...] = (
            self.hooks.mix[self.mixed_role] if self.mixed_role else (self.hooks.chosen["reproduction"],))
        self.totals: dict[str, int] = {"births": 0, "births_refused_capacity": 0, "deaths": 0,
                                       **{f"deaths_{c}": 0 for c in CAUSES},
                                       "pairs_proposed": 0, "pairs_refused": 0, "births_two_parents": 0}
        self.stats: dict[str, int] = {}
        self.last_births: Births | None = None
        self.last_deaths: Deaths | None = None
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

    def _init_world(self, world: WorldState) -> None:
        """The slot arrays, and the plugin arrays beside them."""
        self.world = world
        #: per-slot and per-species arrays plugins register (``alife_setup``)
        self.arrays = PluginArrays(world.capacity, self.device)

    # ------------------------------------------------------------------ what strategies read
    @property
    def population(self) -> int:
        return self.world.population

    def species_count(self) -> int:
        sp = self.world.species[self.world.alive]
        return int(torch.unique(sp).numel()) if sp.numel() else 0

    def new_species(self, founder_tags: torch.Tensor, parent_species: torch.Tensor, step: int) -> torch.Tensor:
        """Found species (for a speciation strategy): append them to the species table, grow the
        per-species arrays, fire ``alife_species_born``; returns their ids."""
        st = self.world
        ids = st.add_species(founder_tags, parent_species, step)
        total = int(st.species_origin.shape[0])
        self.arrays.new_species(parent_species, total)
        if self._species_extinct:
            self._species_live = np.concatenate([self._species_live, np.zeros(total - self._species_live.shape[0], np.int64)])
        if self._species_born:
            self.hooks.species_born(self, ids.cpu().numpy(), parent_species.cpu().numpy(), step)
        return ids

    def recount_species(self) -> None:
        """Recount the living members of each species (after set-up or a restore)."""
        st = self.world
        n_sp = int(st.species_origin.shape[0])
        sp = st.species[: st.hw][st.alive[: st.hw]].cpu().numpy()
        self._species_live = np.bincount(sp, minlength=n_sp).astype(np.int64)

    def population_by_strategy(self) -> dict[str, int]:
        """Living agents per variation strategy (``strategy_names``)."""
        st = self.world
        codes = st.strategy[: st.hw][st.alive[: st.hw]].cpu().numpy()
        counts = np.bincount(codes.astype(np.int64), minlength=len(self.strategy_names))
        return {name: int(c) for name, c in zip(self.strategy_names, counts, strict=False)}

    def behaviour(self, slots: torch.Tensor) -> torch.Tensor:
        """The behaviour characterisation of the agents in ``slots`` (hook ``alife_behaviour``)."""
        return self.hooks.behaviour(self, slots)

    # ------------------------------------------------------------------ shared bookkeeping
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

    def _sample_strategies(self, step: int) -> None:
        self.strategy_series.append([step, *self.population_by_strategy().values()])
        if len(self.strategy_series) > 2000:  # keep it bounded: every other row, half as often
            self.strategy_series = self.strategy_series[::2]
            self.strategy_series_every *= 2

    def _forget_species_members(self, species: np.ndarray) -> None:
        """Members of ``species`` (one entry per dead agent) died: count them out, and remember
        which species to check for extinction at the end of the step."""
        if self._species_extinct:  # the counts serve the extinction event alone
            np.subtract.at(self._species_live, species, 1)
            self._dead_species = np.unique(species)

    def _announce_extinct_species(self, step: int) -> None:
        dead_sp, self._dead_species = self._dead_species, None
        if dead_sp is not None and self._species_extinct:
            gone = dead_sp[self._species_live[dead_sp] == 0]
            if gone.size:
                self.hooks.species_extinct(self, gone, step)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.hooks.sim_end(self)

    def __enter__(self) -> Host:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
