"""Reproduction ``crossover-mutate``: uniform crossover per tensor, then the mutation role.

With two parents each tensor of the layout is inherited whole from one parent or the other (a coin
per tensor and child), so a network is never spliced mid-matrix; then the ``mutation`` role varies
the child. With one parent the child is a copy, then varied.
"""

from __future__ import annotations

import numpy as np
import torch

from alife.plugins import hookimpl
from alife.strategies.base import Strategy
from alife.strategies.kernels import breed_cpu, on_cpu


def tensorwise_crossover(g1: torch.Tensor, g2: torch.Tensor, tensor_index: torch.Tensor,
                         n_tensors: int, generator: torch.Generator) -> torch.Tensor:
    """Child rows taking each layout tensor from ``g1`` or ``g2`` with probability 1/2."""
    pick = torch.rand(g1.shape[0], n_tensors, generator=generator, device=g1.device) < 0.5
    return torch.where(pick[:, tensor_index], g2, g1)


class CrossoverMutate(Strategy):
    role, name = "reproduction", "crossover-mutate"
    fused_kernel = "reproduction:crossover-mutate"

    @hookimpl
    def alife_reproduce(self, sim, parents: torch.Tensor, partners: torch.Tensor):
        return sim.hooks.mutate(sim, breed(sim, parents, partners), parents)


ALIFE_PLUGINS = [CrossoverMutate]


def breed(sim, parents: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
    """The children before mutation: copies of the parents, crossed over tensor by tensor with
    the partner where there is one."""
    g = sim.world.genomes
    if on_cpu(g):
        m = int(np.count_nonzero(partners.numpy() >= 0))
        # the same draw as the torch path: one row of coins per pair
        pick = torch.rand(m, len(sim.layout.entries), generator=sim.generator) if m else None
        return breed_cpu(g, parents, partners, pick, sim.layout.bounds)
    return breed_torch(sim, parents, partners)


def breed_torch(sim, parents: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
    g = sim.world.genomes
    child = g[parents].clone()
    two = partners >= 0
    if bool(two.any()):
        idx = two.nonzero().squeeze(1)
        child[idx] = tensorwise_crossover(child[idx], g[partners[idx]], sim.tensor_index,
                                          len(sim.layout.entries), sim.generator)
    return child
