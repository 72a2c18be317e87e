"""Mutation ``cauchy``: heavy-tailed steps, mostly small and now and then a long jump.

Fast evolutionary programming (Yao, Liu and Lin, "Evolutionary programming made faster", IEEE
TEC 1999) replaces Gaussian noise by Cauchy noise of the same scale. Each genome keeps its
heritable step size per segment (``mutator.log_sigma``), which is varied log-normally first, as
the built-in ``gaussian`` operator does.
"""

import math

import torch

from alife.plugins import hookimpl

# the role this plugin plays, and the name a world file chooses it by
ALIFE_STRATEGIES = {"mutation": "cauchy"}

MAX_JUMP = 10.0  # steps are cut at 10 sigma, so one draw cannot blow a weight up


@hookimpl
def alife_mutate(sim, genomes, parents):
    m, g = sim.config.mutation, sim.generator
    # the step sizes: a view into the genomes, so editing it edits them
    log_sigma = sim.layout.view(genomes, "mutator.log_sigma")  # [k, 3]: one per segment
    log_sigma += m.tau * torch.randn(log_sigma.shape, generator=g, device=genomes.device)
    log_sigma.clamp_(math.log(m.sigma_min), math.log(m.sigma_max))
    sigma = log_sigma.exp()[:, sim.segment_index]  # [k, genome_size]: each position's step size

    u = torch.rand(genomes.shape, generator=g, device=genomes.device)
    jump = torch.tan(math.pi * (u - 0.5)).clamp_(-MAX_JUMP, MAX_JUMP)  # standard Cauchy draws
    e = sim.layout["mutator.log_sigma"]
    jump[:, e.offset:e.offset + e.size] = 0.0  # the step sizes were varied above
    return genomes + jump * sigma
