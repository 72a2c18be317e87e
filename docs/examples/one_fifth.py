"""Mutation ``one-fifth``: Rechenberg's 1/5 success rule, one step size per species.

Rechenberg (Evolutionsstrategie, 1973) adapts the mutation step size from the share of mutations
that succeed: above 1/5 the steps are too timid and grow, below 1/5 they overshoot and shrink.
Here a child "succeeds" when its final result (its fitness event: the energy it gathered over its
life in the world, its mean episode return on a task) beats what its parent had when the child was
made. Each species keeps its own step size; a daughter species starts from its parent's.

What it shows of the strategy host:

- typed parameters from ``[plugin.one-fifth]`` (``Params``), checked like any world key;
- a per-species array the engine keeps (``one-fifth.sigma``: grown when species are founded,
  inherited by daughter species, saved in checkpoints);
- a heritable genome tensor (``mutator.parent_score``: the parent's result, carried by the child);
- its own state (success counts per species) through ``state_dict`` / ``load_state_dict``;
- the fitness event (``alife_fitness``), the same in the world and on a task.

Use it with ``[strategies] mutation = "one-fifth"`` and ``plugins = ["one_fifth.py"]`` (see
``one_fifth.toml``), or in a ``[mixture]`` beside ``gaussian`` (``worlds/mixture.toml``).
"""

from dataclasses import dataclass

import numpy as np
import torch

from alife.config import ConfigError, setting
from alife.genome import GenomeTensor
from alife.plugins import hookimpl
from alife.strategies.base import Strategy

SCORE = "mutator.parent_score"


@dataclass
class Params:
    sigma_init: float = setting(0.05, "initial step size of every species", lo=0.0, lo_open=True, hi=10.0)
    sigma_min: float = setting(1e-4, "smallest step size", lo=0.0, lo_open=True, hi=10.0)
    sigma_max: float = setting(0.5, "largest step size", lo=0.0, lo_open=True, hi=100.0)
    factor: float = setting(0.85, "a step size is multiplied by this (too few successes) or divided by it", lo=0.0, lo_open=True, hi=1.0)
    window: int = setting(20, "results a species gathers before its step size is adapted", lo=1, hi=1 << 20)


class OneFifth(Strategy):
    role, name, Params = "mutation", "one-fifth", Params

    def setup(self, sim):
        if self.params.sigma_min > self.params.sigma_max:
            raise ConfigError(sim.config.source, "plugin.one-fifth.sigma_min", "must not exceed sigma_max")
        sim.arrays.add_species("one-fifth.sigma", fill=self.params.sigma_init, inherit="parent")
        self.code = sim.strategy_names.index(self.name) if self.name in getattr(sim, "strategy_names", ()) else None
        n_species = sim.arrays.n_species
        self.successes = torch.zeros(n_species, dtype=torch.int64)
        self.trials = torch.zeros(n_species, dtype=torch.int64)

    @hookimpl
    def alife_genome_tensors(self, config):
        return [GenomeTensor("mutator", "parent_score", (1,))]

    @hookimpl
    def alife_mutate(self, sim, genomes, parents):
        species = sim.world.species[parents]
        sigma = sim.arrays["one-fifth.sigma"][species].to(genomes.device)  # [k]
        noise = torch.randn(genomes.shape, generator=sim.generator, device=genomes.device)
        e = sim.layout[SCORE]
        noise[:, e.offset:e.offset + e.size] = 0.0
        out = genomes + noise * sigma.unsqueeze(1)
        # the child carries what its parent had gathered so far: the bar it must beat
        sim.layout.view(out, SCORE)[:, 0] = sim.world.lifetime_energy[parents].to(out.dtype)
        return out

    def _grow(self, n):
        if n > self.trials.numel():
            pad = torch.zeros(n - self.trials.numel(), dtype=torch.int64)
            self.successes, self.trials = torch.cat([self.successes, pad]), torch.cat([self.trials, pad])

    @hookimpl
    def alife_species_born(self, sim, species, parents, step):
        self._grow(sim.arrays.n_species)

    @hookimpl
    def alife_fitness(self, sim, fitness):
        slots = torch.as_tensor(fitness.slots, device=sim.world.genomes.device)
        if self.code is not None:  # in a mixture: only the lineages that carry this strategy
            slots = slots[sim.world.strategy[slots] == self.code]
        if slots.numel() == 0:
            return
        bar = sim.layout.view(sim.world.genomes[slots], SCORE)[:, 0].cpu()
        values = torch.as_tensor(fitness.values)[np.isin(fitness.slots, slots.cpu().numpy())]
        species = sim.world.species[slots].cpu()
        self._grow(sim.arrays.n_species)
        n = self.trials.numel()
        self.trials += torch.bincount(species, minlength=n)
        self.successes += torch.bincount(species, weights=(values > bar).double(), minlength=n).long()
        due = (self.trials >= self.params.window).nonzero().squeeze(1)
        if due.numel():
            p, sigma = self.params, sim.arrays["one-fifth.sigma"]
            rate = self.successes[due].double() / self.trials[due].double()
            scale = torch.where(rate > 0.2, 1.0 / p.factor, p.factor).to(sigma.dtype)
            sigma[due.to(sigma.device)] = (sigma[due.to(sigma.device)] * scale.to(sigma.device)).clamp(p.sigma_min, p.sigma_max)
            self.successes[due] = 0
            self.trials[due] = 0

    def state_dict(self):
        return {"successes": self.successes, "trials": self.trials}

    def load_state_dict(self, state):
        self.successes = torch.as_tensor(state["successes"], dtype=torch.int64).clone()
        self.trials = torch.as_tensor(state["trials"], dtype=torch.int64).clone()


ALIFE_PLUGINS = [OneFifth]
