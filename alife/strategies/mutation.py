"""Mutation ``gaussian``: Gaussian noise with a heritable, self-adapted step size per segment.

Each genome carries ``mutator.log_sigma``, one log step size for each segment (policy, mutator,
compatibility). A child first perturbs its step sizes log-normally (``tau``), then adds
``N(0, sigma_segment^2)`` to every parameter of that segment: the (1, lambda)-ES self-adaptation
of Schwefel and Rechenberg, which the natural-selection-as-gradient-descent seed reads as a noisy
gradient step whose size is itself under selection. This is also the matched-size control against
which learned mutators are compared.
"""

from __future__ import annotations

import math

import torch

from alife.genome import SEGMENTS
from alife.plugins import hookimpl
from alife.strategies.base import Strategy
from alife.strategies.kernels import gaussian_cpu, on_cpu


def gaussian_mutate(genomes: torch.Tensor, layout, segment_index: torch.Tensor, tau: float,
                    sigma_min: float, sigma_max: float, generator: torch.Generator) -> torch.Tensor:
    """Self-adaptive Gaussian mutation through the layout (pure function, used by other operators)."""
    k = genomes.shape[0]
    if k == 0:
        return genomes
    e = layout["mutator.log_sigma"]
    if on_cpu(genomes) and genomes.is_contiguous() and not genomes.requires_grad:
        # the same draw as below, then one pass (alife.strategies.kernels)
        noise = torch.randn(genomes.shape, generator=generator)
        gaussian_cpu(genomes, e.offset, e.size, noise, segment_index.numpy(), tau, sigma_min, sigma_max)
        return genomes
    return gaussian_mutate_torch(genomes, layout, segment_index, tau, sigma_min, sigma_max, generator)


def gaussian_mutate_torch(genomes: torch.Tensor, layout, segment_index: torch.Tensor, tau: float,
                          sigma_min: float, sigma_max: float, generator: torch.Generator) -> torch.Tensor:
    """The whole-array torch form of :func:`gaussian_mutate` (any device)."""
    e = layout["mutator.log_sigma"]
    # one draw: its log_sigma columns vary the step sizes (log-normally), the rest the parameters
    noise = torch.randn(genomes.shape, generator=generator, device=genomes.device)
    ls = layout.view(genomes, "mutator.log_sigma")
    ls.add_(noise[:, e.offset:e.offset + e.size] * tau)
    ls.clamp_(math.log(sigma_min), math.log(sigma_max))
    sigma = ls.exp()[:, segment_index]  # [k, size]: each position's segment step size
    noise[:, e.offset:e.offset + e.size] = 0.0  # the step sizes were varied above
    return genomes.add_(noise * sigma)


class Gaussian(Strategy):
    """Parameters come from the world's ``[mutation]`` table (shared with task mode)."""

    role, name = "mutation", "gaussian"
    fused_kernel = "mutation:gaussian"

    @hookimpl
    def alife_mutate(self, sim, genomes: torch.Tensor, parents: torch.Tensor):
        m = sim.config.mutation
        assert sim.layout["mutator.log_sigma"].shape == (len(SEGMENTS),)
        return gaussian_mutate(genomes, sim.layout, sim.segment_index, m.tau, m.sigma_min, m.sigma_max, sim.generator)


ALIFE_PLUGINS = [Gaussian]
