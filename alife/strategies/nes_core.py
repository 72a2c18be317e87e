"""Separable natural evolution strategies as pure ask/tell functions, and the evolvability-ES
objectives. No world, no state of their own: explicit tensors in, tensors out, a generator passed.

The search distribution is a Gaussian with a centre ``mean`` and a per-coordinate spread
``sigma`` (separable NES, SNES: Schaul, Glasmachers & Schmidhuber, "High dimensions and heavy
tails for natural evolution strategies", GECCO 2011). Choices and where they come from:

- **The update** follows the score function (Wierstra et al., "Natural evolution strategies",
  JMLR 15, 2014): with ``x = mean + sigma * z``, the natural gradient of expected utility is
  ``sum_i u_i z_i`` for the centre and ``sum_i u_i (z_i^2 - 1)`` for the log spread, so
  ``mean += lr_mean * sigma * g_mean`` and ``sigma *= exp(lr_sigma / 2 * g_sigma)``. The spread is
  learnt (the evograd seed's prototype could only move the centre).
- **Default learning rates**: ``lr_mean = 1`` and ``lr_sigma = (3 + ln d) / (5 sqrt d)`` for ``d``
  coordinates (SNES, Schaul et al. 2011, table 1).
- **Fitness shaping** by rank, invariant to monotone transforms of fitness and robust to outliers;
  the utilities sum to zero and their absolute values to about one whatever the sample size, so a
  learning rate means the same at any population. ``"nes"`` (the default): the NES utilities of
  Wierstra et al. 2014 (section 3.1), ``max(0, ln(n/2 + 1) - ln(n - rank)) / sum - 1/n``, only
  the better half pulls the centre, weighted by log rank (what SNES uses, Schaul et al. 2011, and
  EvoTorch's SNES); ``"centred"``: centred ranks (Salimans et al., "Evolution strategies as a
  scalable alternative to reinforcement learning", 2017), linear in rank, divided by the sum of
  their absolute values (Salimans et al. divide the step by ``n`` instead: the same scale).
- **Mirrored sampling** (Brockhoff et al., "Mirrored sampling and sequential selection for
  evolution strategies", PPSN 2010): noise comes in pairs ``z, -z``, which removes the noise's
  first-order bias from the centre's gradient.
- **Evolvability ES** (Gajewski, Clune, Stanley & Lehman, "Evolvability ES", GECCO 2019): the same
  gradient estimator with a behavioural objective in place of fitness, MaxVar (each sample's
  squared distance from the mean behaviour: the variance of behaviour) or MaxEnt (each sample's
  negative log kernel density among the behaviours: their entropy).
"""

from __future__ import annotations

import math

import torch


def default_lr_sigma(d: int) -> float:
    """SNES's learning rate for the spread of ``d`` coordinates."""
    return (3.0 + math.log(d)) / (5.0 * math.sqrt(d))


def mirrored_noise(n: int, d: int, generator: torch.Generator, device: torch.device | str = "cpu",
                   mirrored: bool = True) -> torch.Tensor:
    """``[n, d]`` standard normal noise; mirrored: rows ``2j`` and ``2j + 1`` are ``z, -z`` (an odd
    last row is a fresh draw)."""
    if not mirrored:
        return torch.randn(n, d, generator=generator, device=device)
    half = torch.randn((n + 1) // 2, d, generator=generator, device=device)
    return torch.stack([half, -half], 1).reshape(-1, d)[:n]


def ask(mean: torch.Tensor, sigma: torch.Tensor, n: int, generator: torch.Generator,
        mirrored: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples of the distribution: ``(z, x)`` with ``x = mean + sigma * z``."""
    z = mirrored_noise(n, mean.shape[-1], generator, mean.device, mirrored)
    return z, mean + sigma * z


SHAPINGS = ("nes", "centred")


def _rank_weights(rank: torch.Tensor, n: torch.Tensor, shaping: str) -> torch.Tensor:
    """Unnormalised weight of ascending ``rank`` (0 worst) in a sample of ``n`` (float tensors)."""
    if shaping == "nes":
        return torch.clamp(torch.log(n / 2 + 1) - torch.log(n - rank), min=0.0)
    if shaping == "centred":
        return rank / (n - 1).clamp(min=1) - 0.5
    raise ValueError(f"fitness shaping {shaping!r}: expected one of {', '.join(SHAPINGS)}")


def _normalised(w: torch.Tensor, total: torch.Tensor, size: float | torch.Tensor, shaping: str) -> torch.Tensor:
    """Rank weights ``w`` made utilities: divided by their sample's ``total`` (the sum of the
    weights for ``"nes"``, of their absolute values for ``"centred"``), and for ``"nes"`` less the
    uniform share ``1 / size``, so they sum to zero. One rule for one sample and for groups."""
    w = w / total
    return w - 1.0 / size if shaping == "nes" else w


def utilities(fitness: torch.Tensor, shaping: str = "nes") -> torch.Tensor:
    """Rank-based utilities of a sample (higher fitness, higher utility; ties broken by order):
    they sum to zero and their absolute values to about one (exactly one for ``"centred"``).
    ``"nes"``: Wierstra et al. 2014's log-rank utilities; ``"centred"``: centred ranks, scaled."""
    n = fitness.shape[0]
    if n < 2:
        return torch.zeros(n, dtype=torch.float32, device=fitness.device)
    rank = torch.empty(n, dtype=torch.float32, device=fitness.device)
    rank[torch.argsort(fitness, stable=True)] = torch.arange(n, dtype=torch.float32, device=fitness.device)
    w = _rank_weights(rank, torch.tensor(float(n), device=fitness.device), shaping)
    return _normalised(w, w.sum() if shaping == "nes" else w.abs().sum(), n, shaping)


def tell(mean: torch.Tensor, sigma: torch.Tensor, z: torch.Tensor, fitness: torch.Tensor,
         lr_mean: float = 1.0, lr_sigma: float | None = None, sigma_min: float = 1e-8,
         sigma_max: float = 1e8, shaping: str = "nes") -> tuple[torch.Tensor, torch.Tensor]:
    """The distribution after one natural-gradient step on ``(z, fitness)`` (higher is better),
    fitness shaped by ``shaping`` (:func:`utilities`). Returns new ``(mean, sigma)``; the inputs
    are not changed."""
    u = utilities(fitness, shaping).to(z.dtype)
    lr_s = default_lr_sigma(mean.shape[-1]) if lr_sigma is None else lr_sigma
    g_mean = u @ z
    g_sigma = u @ (z * z - 1.0)
    return mean + lr_mean * sigma * g_mean, (sigma * torch.exp(0.5 * lr_s * g_sigma)).clamp(sigma_min, sigma_max)


def tell_grouped(mean: torch.Tensor, sigma: torch.Tensor, group: torch.Tensor, z: torch.Tensor,
                 fitness: torch.Tensor, lr_mean: float = 1.0, lr_sigma: float | None = None,
                 sigma_min: float = 1e-8, sigma_max: float = 1e8,
                 shaping: str = "nes") -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`tell` for many distributions at once: rows of ``mean``/``sigma`` ``[G, d]``, each
    sample ``i`` belonging to ``group[i]``; ranks are taken within each group. Groups with no
    sample keep their distribution. One pass, no loop over groups."""
    n, g = fitness.shape[0], mean.shape[0]
    if n == 0:
        return mean, sigma
    order = torch.argsort(fitness, stable=True)
    order = order[torch.argsort(group[order], stable=True)]  # by group, then by fitness
    sg = group[order]
    counts = torch.bincount(group, minlength=g)
    starts = torch.cumsum(counts, 0) - counts
    pos = torch.arange(n, device=group.device) - starts[sg]
    size = counts[sg].to(torch.float32)
    w = _rank_weights(pos.to(torch.float32), size, shaping)
    norm = torch.zeros(g, dtype=torch.float32, device=z.device).index_add_(0, sg, w if shaping == "nes" else w.abs())
    w = _normalised(w, norm[sg].clamp(min=1e-30), size, shaping)
    u = torch.zeros(n, dtype=z.dtype, device=z.device)
    u[order] = torch.where(size > 1, w, torch.zeros_like(size)).to(z.dtype)
    g_mean = torch.zeros_like(mean).index_add_(0, group, u.unsqueeze(1) * z)
    g_sigma = torch.zeros_like(mean).index_add_(0, group, u.unsqueeze(1) * (z * z - 1.0))
    lr_s = default_lr_sigma(mean.shape[-1]) if lr_sigma is None else lr_sigma
    return mean + lr_mean * sigma * g_mean, (sigma * torch.exp(0.5 * lr_s * g_sigma)).clamp(sigma_min, sigma_max)


def maxvar(behaviour: torch.Tensor) -> torch.Tensor:
    """MaxVar's per-sample objective: squared distance of each behaviour ``[n, b]`` from their
    mean (its gradient through the distribution is the gradient of behavioural variance)."""
    return ((behaviour - behaviour.mean(0)) ** 2).sum(1)


def maxent(behaviour: torch.Tensor, bandwidth: float | None = None) -> torch.Tensor:
    """MaxEnt's per-sample objective: minus the log Gaussian-kernel density of each behaviour
    among all (its gradient is the gradient of the behaviours' entropy estimate). A fixed
    ``bandwidth`` (the seed's ``k_sigma``) measures entropy on the behaviour's own scale, so a wider
    spread scores higher; the default, Silverman's rule on the sample's spread, rescales the kernel
    with the sample and rewards only evenness (on the seed's problem it settles where MaxVar does)."""
    n = behaviour.shape[0]
    if bandwidth is None:
        std = behaviour.std(0).mean().clamp(min=1e-6)
        bandwidth = float(1.06 * std * n ** (-0.2))
    d2 = torch.cdist(behaviour, behaviour) ** 2
    return -torch.logsumexp(-d2 / (2 * bandwidth ** 2), dim=1)


def entropy_estimate(behaviour: torch.Tensor, bins: int = 20) -> float:
    """Shannon entropy (nats) of a 1-d behaviour sample in ``bins`` equal bins over its range."""
    b = behaviour.reshape(-1).double()
    lo, hi = float(b.min()), float(b.max())
    if hi <= lo:
        return 0.0
    p = torch.histc(b, bins=bins, min=lo, max=hi)
    p = p[p > 0] / b.numel()
    return float(-(p * p.log()).sum())
