"""Selection ``truncation``: generational mode's explicit selection on task fitness.

The best ``task.parents`` genomes by training fitness (mean seeded-episode return) are the parent
pool; each child draws its parent uniformly from the pool, and with probability ``task.crossover``
a second, different parent from it (the ``mating`` role then decides whether the pair accepts).
Truncation selection with a uniform draw is the mutate-and-select model of
``../shared/seeds/natural-selection-and-gradient-descent.md``: in the small-mutation limit, a
noisy step up the fitness gradient. Elites are kept by the runner, not here.

It ranks by the ``fitness`` argument of ``alife_select_parents`` (the training fitness of a task run); in an
ecology world it refuses to start with a message saying so.
"""

from __future__ import annotations

import torch

from alife.plugins import hookimpl
from alife.strategies.base import Strategy


class Truncation(Strategy):
    role, name = "selection", "truncation"
    modes = ("task",)  # it ranks by task fitness

    @hookimpl
    def alife_select_parents(self, sim, slots: torch.Tensor, neighbours: torch.Tensor, ready: torch.Tensor,
                             fitness: torch.Tensor):
        return select_truncation(sim, slots, fitness)


ALIFE_PLUGINS = [Truncation]


def select_truncation(sim, slots: torch.Tensor, fitness: torch.Tensor):
    """The best ``task.parents`` of ``slots`` by ``fitness`` (aligned with ``slots``) as the pool."""
    task, g = sim.config.task, sim.generator
    k = int(sim.offspring_count)
    order = torch.argsort(fitness, descending=True, stable=True)
    pool = slots[order[: min(task.parents, slots.numel())]]
    m = pool.numel()
    first = torch.randint(m, (k,), generator=g, device=slots.device)
    partners = torch.full((k,), -1, dtype=torch.long, device=slots.device)
    if task.crossover > 0 and m > 1:
        two = torch.rand(k, generator=g, device=slots.device) < task.crossover
        # a different pool member: shift by 1..m-1 places
        second = (first + torch.randint(1, m, (k,), generator=g, device=slots.device)) % m
        partners = torch.where(two, pool[second], partners)
    return pool[first], partners
