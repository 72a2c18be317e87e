"""Mating ``compatibility``: both partners' compatibility networks must accept.

Each genome's compatibility network reads its own kin tag and the difference to the partner's tag
and gives a logit; a pair mates when a draw under ``sigmoid(logit)`` succeeds for both sides. Mate
choice is therefore heritable and can drive speciation (see ``../shared/seeds/neural-mutator.md``,
learned speciation).
"""

from __future__ import annotations

import torch

from alife.genome import compatibility_logit
from alife.plugins import hookimpl
from alife.strategies.base import Strategy
from alife.strategies.kernels import accepts_cpu, on_cpu


class Compatibility(Strategy):
    role, name = "mating", "compatibility"
    fused_kernel = "mating:compatibility"

    @hookimpl
    def alife_mate(self, sim, a: torch.Tensor, b: torch.Tensor):
        if a.numel() == 0:
            return torch.zeros(0, dtype=torch.bool, device=a.device)
        g = sim.world.genomes
        if on_cpu(g):
            u = torch.rand(2, a.numel(), generator=sim.generator)
            return accepts_cpu(g, a, b, u, sim.layout)
        return accepts_torch(sim, a, b)


ALIFE_PLUGINS = [Compatibility]


def accepts_torch(sim, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    g = sim.world.genomes
    # both directions in one batched pass: rows [a; b] judge partners [b; a]
    judge, judged = g[torch.cat([a, b])], g[torch.cat([b, a])]
    p = torch.sigmoid(compatibility_logit(judge, judged, sim.layout)).view(2, -1)
    u = torch.rand(2, a.numel(), generator=sim.generator, device=a.device)
    return (u < p).all(0)
