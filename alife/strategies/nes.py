"""Mutation ``nes``: natural evolution strategies inside a population that is born and dies.

Each species keeps its own search distribution over genomes, a centre and a per-coordinate
spread (separable NES, :mod:`alife.strategies.nes_core`), as per-species arrays the engine grows
and saves (``nes.mean``, ``nes.sigma``). A birth samples the child's genome from its species'
distribution, in mirrored pairs within a step (``z, -z``), and the child carries its noise ``z``
(per-slot array ``nes.z``). The "tell" is the fitness event: in the world, at death, the energy
gathered over the life (plus ``offspring_weight`` per child); on a task, the mean episode return,
once per genome. When a species has ``window`` completed results, its distribution takes one
natural-gradient step on them (utilities by rank within the species, ``shaping``), all due species in one batched
update. A new species starts from its founder: its centre becomes the founding child's genome,
its spread its parent species' spread.

With ``objective = "maxvar"`` or ``"maxent"`` it is evolvability ES: the ranked quantity is the
behaviour's distance from the species' mean behaviour (MaxVar) or its negative log density among
the species' behaviours (MaxEnt), behaviours from the ``alife_behaviour`` hook at the tell.

On a task the first generation is itself a sample (``first_generation = "sample"``): the
founders only set the centre (their mean), as SNES's first generation is drawn around its centre.

Parameters: ``[plugin.nes]``. In a ``[mixture]`` only the lineages that carry ``nes`` are sampled
and told. The parent's own genome plays no part: the species' distribution is the heredity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from alife.config import setting
from alife.plugins import hookimpl
from alife.strategies import nes_core
from alife.strategies.base import Strategy


@dataclass
class NESParams:
    sigma_init: float = setting(0.05, "initial spread of every coordinate", lo=0.0, lo_open=True, hi=10.0)
    sigma_min: float = setting(1e-4, "smallest spread", lo=0.0, lo_open=True, hi=10.0)
    sigma_max: float = setting(1.0, "largest spread", lo=0.0, lo_open=True, hi=100.0)
    lr_mean: float = setting(1.0, "learning rate of the centre (SNES: 1)", lo=0.0, hi=100.0)
    lr_sigma: float = setting(0.0, "learning rate of the spread; 0: SNES's (3 + ln d) / (5 sqrt d)", lo=0.0, hi=10.0)
    window: int = setting(20, "completed results a species gathers before its distribution takes a step", lo=2, hi=1 << 16)
    offspring_weight: float = setting(0.0, "world fitness: lifetime energy plus this much per child", lo=0.0, hi=1e6)
    mirrored: bool = setting(True, "sample noise in mirrored pairs z, -z")
    shaping: str = setting("nes", "fitness shaping within a species' window: nes (Wierstra et al. 2014's log-rank "
                           "utilities, as SNES) or centred (centred ranks); both scaled to sum |u| = 1",
                           choices=nes_core.SHAPINGS)
    objective: str = setting("fitness", "what is ranked: fitness (NES), or behaviour diversity (evolvability ES)",
                             choices=("fitness", "maxvar", "maxent"))
    search: str = setting("genome", "coordinates the distribution searches: the whole genome, or the policy segment "
                          "alone (the others stay at the species' centre; on a task nothing else is expressed "
                          "unless another strategy reads the mutator or compatibility networks). SNES's default "
                          "spread rate counts only the searched coordinates", choices=("genome", "policy"))
    bandwidth: float = setting(0.0, "MaxEnt's kernel width in behaviour units (the evolvability seed's k_sigma: entropy on "
                               "the behaviour's own scale, so wider spread counts); 0: Silverman's rule on each sample "
                               "(scale-free: only evenness counts)", lo=0.0, hi=1e6)
    first_generation: str = setting("sample", "on a task (generational mode): sample, the first generation is drawn from "
                                    "the distribution centred on the founders' mean (as SNES's first generation around "
                                    "its centre) and told like every other; founders, the world's founders are played "
                                    "as they are and never told (a generation of steps the distribution learns "
                                    "nothing from). In the world the founders are always the world's",
                                    choices=("sample", "founders"))
    buffer: int = setting(8192, "results kept waiting for their species' window (the oldest are dropped beyond)", lo=16, hi=1 << 22)


class NES(Strategy):
    role, name, Params = "mutation", "nes", NESParams

    def setup(self, sim: Any) -> None:
        p = self.params
        if p.sigma_min > p.sigma_max or not (p.sigma_min <= p.sigma_init <= p.sigma_max):
            from alife.config import ConfigError

            raise ConfigError(sim.config.source, "plugin.nes.sigma_init", "needs sigma_min <= sigma_init <= sigma_max")
        g, dev = sim.layout.size, sim.device
        sim.arrays.add_species("nes.mean", shape=(g,), inherit="parent")
        sim.arrays.add_species("nes.sigma", shape=(g,), inherit="parent", fill=p.sigma_init)
        sim.arrays.add_slot("nes.z", shape=(g,), inherit="reset")
        sim.arrays.add_slot("nes.told", dtype=torch.bool, inherit="reset")
        sim.arrays.add_slot("nes.born", dtype=torch.bool, inherit="reset")  # sampled by NES (not a founder)
        self.code = sim.strategy_names.index(self.name) if self.name in sim.strategy_names else None
        #: searched coordinates (noise elsewhere is zero: those stay at the centre, and with
        #: utilities that sum to zero their spread never moves)
        self.searched = torch.ones(g, dtype=torch.bool, device=dev)
        if p.search == "policy":
            lo, hi = sim.layout.segment_range("policy")
            self.searched[:] = False
            self.searched[lo:hi] = True
        self.lr_sigma = p.lr_sigma or nes_core.default_lr_sigma(int(self.searched.sum()))
        # results waiting for their species' window, in a preallocated pool of ``buffer`` rows
        # (noise, value, species, behaviour, arrival number; ``used`` marks the rows in use), so a
        # step's tell writes only its own rows
        n = p.buffer
        self.z = torch.zeros(n, g, device=dev)
        self.f = torch.zeros(n, dtype=torch.float64, device=dev)
        self.sp = torch.zeros(n, dtype=torch.int64, device=dev)
        self.b = torch.zeros(n, 0, device=dev)
        self.stamp = torch.zeros(n, dtype=torch.int64, device=dev)
        self.used = torch.zeros(n, dtype=torch.bool, device=dev)
        self.arrived = 0
        self.updates = 0
        self._pending: torch.Tensor | None = None
        self._new_species: list[torch.Tensor] = []

    # ------------------------------------------------------------------ start
    @hookimpl
    def alife_sim_start(self, sim: Any) -> None:
        if sim.resume_step is not None:
            return  # the distributions come from the checkpoint
        st = sim.world
        live = st.alive_slots()
        n_sp = sim.arrays.n_species
        sums = torch.zeros(n_sp, sim.layout.size, device=sim.device).index_add_(0, st.species[live], st.genomes[live])
        counts = torch.bincount(st.species[live], minlength=n_sp).clamp(min=1).unsqueeze(1)
        sim.arrays["nes.mean"][:] = sums / counts
        if sim.mode == "task" and self.params.first_generation == "sample":
            self._sample_founders(sim, live)

    def _sample_founders(self, sim: Any, live: torch.Tensor) -> None:
        """Replace this strategy's founders by a sample of their species' distribution (mirrored
        pairs, as any birth), noise kept, so the first generation's results are told."""
        st = sim.world
        if self.code is not None:
            live = live[st.strategy[live] == self.code]
        if live.numel() == 0:
            return
        species = st.species[live]
        z = self._noise(sim, species)
        st.genomes[live] = sim.arrays["nes.mean"][species] + sim.arrays["nes.sigma"][species] * z
        sim.arrays["nes.z"][live] = z
        sim.arrays["nes.born"][live] = True

    # ------------------------------------------------------------------ ask
    @hookimpl
    def alife_mutate(self, sim: Any, genomes: torch.Tensor, parents: torch.Tensor) -> torch.Tensor:
        species = sim.world.species[parents]
        z = self._noise(sim, species)
        mean, sigma = sim.arrays["nes.mean"][species], sim.arrays["nes.sigma"][species]
        self._pending = z
        return mean + sigma * z

    def _noise(self, sim: Any, species: torch.Tensor) -> torch.Tensor:
        """Standard-normal noise for samples of ``species`` (one row each), mirrored pairs among
        the samples of one species (sorted by species, neighbours paired), zero outside the
        searched coordinates."""
        d = sim.layout.size
        order = torch.argsort(species, stable=True)
        z = torch.empty(species.numel(), d, device=sim.device)
        z[order] = self._pairs(species[order], d, sim.generator, sim.device)
        if self.params.search != "genome":
            z *= self.searched
        return z

    def _pairs(self, sp_sorted: torch.Tensor, d: int, g: torch.Generator, dev: Any) -> torch.Tensor:
        k = sp_sorted.numel()
        if not self.params.mirrored or k < 2:
            return torch.randn(k, d, generator=g, device=dev)
        # position within its species' run; odd positions mirror the row before them
        first = torch.ones(k, dtype=torch.bool, device=dev)
        first[1:] = sp_sorted[1:] != sp_sorted[:-1]
        start = torch.cummax(torch.where(first, torch.arange(k, device=dev), 0), 0).values
        pos = torch.arange(k, device=dev) - start
        z = torch.randn(k, d, generator=g, device=dev)
        odd = (pos % 2 == 1).nonzero().squeeze(1)
        z[odd] = -z[odd - 1]
        return z

    @hookimpl
    def alife_species_born(self, sim: Any, species: np.ndarray, parents: np.ndarray, step: int) -> None:
        self._new_species.append(torch.as_tensor(species, device=sim.device))

    @hookimpl
    def alife_agents_born(self, sim: Any, births: Any) -> None:
        z, self._pending = self._pending, None
        new, self._new_species = self._new_species, []
        slots = torch.as_tensor(births.slots, device=sim.device)
        if births.strategies is not None and self.code is not None:
            slots = slots[torch.as_tensor(births.strategies == self.code, device=sim.device)]
        if z is None or z.shape[0] != slots.numel():
            return  # not births NES sampled (a refill after extinction)
        sim.arrays["nes.z"][slots] = z
        sim.arrays["nes.born"][slots] = True
        if new:  # a new species starts from its founder: the centre is the founding child's genome
            new_ids = torch.cat(new)
            sp = sim.world.species[slots]
            found = torch.isin(sp, new_ids)
            if bool(found.any()):
                fs, fsp = slots[found], sp[found]
                sim.arrays["nes.mean"][fsp] = sim.world.genomes[fs]
                sim.arrays["nes.born"][fs] = False  # its noise was not drawn around this centre

    # ------------------------------------------------------------------ tell
    @hookimpl
    def alife_fitness(self, sim: Any, fitness: Any) -> None:
        slots = torch.as_tensor(fitness.slots, device=sim.device)
        keep = sim.arrays["nes.born"][slots] & ~sim.arrays["nes.told"][slots]
        if self.code is not None:
            keep &= sim.world.strategy[slots] == self.code
        if not bool(keep.any()):
            return
        idx = keep.nonzero().squeeze(1)
        s = slots[idx]
        sim.arrays["nes.told"][s] = True
        value = torch.as_tensor(fitness.values, dtype=torch.float64, device=sim.device)[idx]
        value = value + self.params.offspring_weight * torch.as_tensor(fitness.offspring, device=sim.device)[idx]
        behaviour = sim.behaviour(s).float() if self.params.objective != "fitness" else torch.zeros(s.numel(), 0, device=sim.device)
        if self.b.shape[1] != behaviour.shape[1]:
            self.b = torch.zeros(self.z.shape[0], behaviour.shape[1], device=sim.device)
        m = s.numel()
        rows = (~self.used).nonzero().squeeze(1)[:m]
        if rows.numel() < m:  # full: the oldest results make room
            old = torch.argsort(torch.where(self.used, self.stamp, torch.iinfo(torch.int64).max))
            rows = torch.cat([rows, old[: m - rows.numel()]])
        self.z[rows] = sim.arrays["nes.z"][s]
        self.f[rows] = value
        self.sp[rows] = sim.world.species[s]
        self.b[rows] = behaviour
        self.stamp[rows] = torch.arange(self.arrived, self.arrived + m, device=sim.device)
        self.used[rows] = True
        self.arrived += m
        self._update(sim)

    def _update(self, sim: Any) -> None:
        n_sp = sim.arrays.n_species
        live = self.used.nonzero().squeeze(1)
        counts = torch.bincount(self.sp[live], minlength=n_sp)
        due = counts >= self.params.window
        if not bool(due.any()):
            return
        take = live[due[self.sp[live]]]
        take = take[torch.argsort(self.stamp[take])]  # in arrival order
        z, f, sp, b = self.z[take], self.f[take], self.sp[take], self.b[take]
        if self.params.objective == "maxvar":
            m = torch.zeros(n_sp, b.shape[1], device=b.device).index_add_(0, sp, b) / counts.clamp(min=1).unsqueeze(1)
            f = ((b - m[sp]) ** 2).sum(1).double()
        elif self.params.objective == "maxent":
            f = torch.empty_like(f)
            for s_id in due.nonzero().squeeze(1).tolist():  # one kernel density per species due
                rows = (sp == s_id).nonzero().squeeze(1)
                f[rows] = nes_core.maxent(b[rows], self.params.bandwidth or None).double()
        p = self.params
        mean, sigma = sim.arrays["nes.mean"], sim.arrays["nes.sigma"]
        d = due.nonzero().squeeze(1)
        # only the species due: their rows, renumbered 0..len(d)-1 (thousands of species may wait)
        local = torch.full((n_sp,), -1, dtype=torch.int64, device=sp.device)
        local[d] = torch.arange(d.numel(), device=sp.device)
        new_mean, new_sigma = nes_core.tell_grouped(mean[d], sigma[d], local[sp], z, f, p.lr_mean,
                                                    self.lr_sigma, p.sigma_min, p.sigma_max, p.shaping)
        mean[d], sigma[d] = new_mean, new_sigma
        self.used[take] = False
        self.updates += int(d.numel())

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"z": self.z, "f": self.f, "species": self.sp, "behaviour": self.b, "stamp": self.stamp,
                "used": self.used, "arrived": self.arrived, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        dev = self.z.device
        self.z = torch.as_tensor(state["z"], dtype=torch.float32, device=dev).clone()
        self.f = torch.as_tensor(state["f"], dtype=torch.float64, device=dev).clone()
        self.sp = torch.as_tensor(state["species"], dtype=torch.int64, device=dev).clone()
        self.b = torch.as_tensor(state["behaviour"], dtype=torch.float32, device=dev).clone()
        self.stamp = torch.as_tensor(state["stamp"], dtype=torch.int64, device=dev).clone()
        self.used = torch.as_tensor(state["used"], dtype=torch.bool, device=dev).clone()
        self.arrived, self.updates = int(state["arrived"]), int(state["updates"])
        n = self.params.buffer
        shapes = [t.shape[0] for t in (self.z, self.f, self.sp, self.b, self.stamp, self.used)]
        if any(r != n for r in shapes) or self.z.shape[1:] != self.z.shape[1:]:
            raise ValueError(f"nes state: buffers of {shapes} rows, expected {n} (plugin.nes.buffer)")


ALIFE_PLUGINS = [NES]
