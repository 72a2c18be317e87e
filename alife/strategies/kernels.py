"""CPU kernels (numba) for the built-in strategies.

At a few hundred agents a step's time on a CPU goes mostly to the fixed cost of small torch
operations (several microseconds each), and the built-in selection, crossover, mutation and
speciation take about a dozen each. On the CPU their hooks call these kernels instead, with the
same random draws from the simulation's generator made by the same torch calls, so both paths
consume the generator alike and give the same children (tests/test_strategy_kernels.py). The torch
code stays the reference and runs on CUDA.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from alife.world.kernels import HAVE_NUMBA

if HAVE_NUMBA:
    from alife.world.kernels import _live_contacts

if HAVE_NUMBA:
    from numba import njit

    @njit(cache=True)
    def _select(slots, neighbours, ready_live, energy, age, ready, alive, min_energy, min_age,
                parents, partners):
        k = 0
        for c in range(slots.shape[0]):
            s = slots[c]
            if energy[s] >= min_energy[s % min_energy.shape[0]] and age[s] >= min_age:
                nb = neighbours[c]
                partner = -1
                if ready_live[c] and nb >= 0 and ready[nb] and alive[nb]:
                    partner = nb
                parents[k] = s
                partners[k] = partner
                k += 1
        return k

    @njit(cache=True)
    def _breed(genomes, parents, partners, pick, bounds, child):
        """Copy each parent's genome; where there is a partner, take each layout tensor ``t``
        from it when ``pick[row, t] < 0.5`` (one ``pick`` row per pair, in order)."""
        row = 0
        for c in range(parents.shape[0]):
            p, q = parents[c], partners[c]
            if q < 0:
                for z in range(genomes.shape[1]):
                    child[c, z] = genomes[p, z]
                continue
            for t in range(bounds.shape[0] - 1):
                src = q if pick[row, t] < 0.5 else p
                for z in range(bounds[t], bounds[t + 1]):
                    child[c, z] = genomes[src, z]
            row += 1

    @njit(cache=True)
    def _gaussian(genomes, ls_lo, nseg, noise, segment, tau, lo, hi):
        """Self-adaptive Gaussian mutation; ``noise``'s log_sigma columns vary the step sizes."""
        sigma = np.empty(nseg, np.float32)
        for c in range(genomes.shape[0]):
            for s in range(nseg):
                v = genomes[c, ls_lo + s] + noise[c, ls_lo + s] * tau
                v = min(max(v, lo), hi)
                genomes[c, ls_lo + s] = v
                sigma[s] = np.exp(v)
            for z in range(genomes.shape[1]):
                if ls_lo <= z < ls_lo + nseg:
                    continue  # the step sizes were varied above, log-normally
                genomes[c, z] += noise[c, z] * sigma[segment[z]]

    @njit(cache=True)
    def _strays(child, tag_lo, founders, species, threshold, out):
        n_new = 0
        for c in range(child.shape[0]):
            f = species[c]
            d2 = np.float32(0.0)
            for q in range(founders.shape[1]):
                d = child[c, tag_lo + q] - founders[f, q]
                d2 += d * d
            out[c] = np.sqrt(d2) > threshold
            n_new += out[c]
        return n_new

    @njit(cache=True)
    def _accepts(genomes, a, b, u, tag, w1, b1, w2, b2, t, hidden, out):
        """Both partners' compatibility networks accept: ``u[side, c] < sigmoid(logit)``."""
        for c in range(a.shape[0]):
            ok = True
            for side in range(2):
                i, j = (a[c], b[c]) if side == 0 else (b[c], a[c])
                logit = genomes[i, b2]
                for h in range(hidden):
                    row = w1 + h * 2 * t
                    acc = genomes[i, b1 + h]
                    for q in range(t):
                        own = genomes[i, tag + q]
                        acc += genomes[i, row + q] * own
                        acc += genomes[i, row + t + q] * (genomes[j, tag + q] - own)
                    logit += genomes[i, w2 + h] * np.tanh(acc)
                p = 1.0 / (1.0 + np.exp(-logit))
                ok = ok and u[side, c] < p
            out[c] = ok

    # ---- the four built-in reproduction roles fused (see alife.Simulation._reproduce_fused)
    @njit(cache=True)
    def _parents(nb, dist, alive, ready, energy, age, contact, min_energy, min_age, parents, partners):
        """The living with their contacts (``live_contacts_cpu``), then ``energy-threshold``
        selection (``select_cpu``); returns the number of parents."""
        live = np.empty(nb.shape[0], np.int64)
        near = np.empty(nb.shape[0], np.int64)
        m = _live_contacts(nb, dist, alive, contact, live, near)
        live, near = live[:m], near[:m]
        return _select(live, near, ready[live], energy, age, ready, alive, min_energy, min_age,
                       parents, partners)

    @njit(cache=True)
    def _mate_pairs(genomes, parents, partners, u, tag, w1, b1, w2, b2, t, hidden):
        """``compatibility`` mating over the pairs in order (``u[:, row]`` per pair); a refused
        partner becomes -1."""
        m = u.shape[1]
        a = np.empty(m, np.int64)
        b = np.empty(m, np.int64)
        rows = np.empty(m, np.int64)
        r = 0
        for c in range(parents.shape[0]):
            if partners[c] >= 0:
                a[r], b[r], rows[r] = parents[c], partners[c], c
                r += 1
        ok = np.empty(m, np.bool_)
        _accepts(genomes, a, b, u, tag, w1, b1, w2, b2, t, hidden, ok)
        for r in range(m):
            if not ok[r]:
                partners[rows[r]] = -1

    @njit(cache=True)
    def _children(genomes, parents, partners, pick, bounds, noise, ls_lo, nseg, segment, tau, lo,
                  hi, tag_lo, founders, species, threshold, child, strays):
        """Crossover, Gaussian mutation and the species threshold, one child at a time."""
        _breed(genomes, parents, partners, pick, bounds, child)
        _gaussian(child, ls_lo, nseg, noise, segment, tau, lo, hi)
        return _strays(child, tag_lo, founders, species, threshold, strays)


def on_cpu(t: torch.Tensor) -> bool:
    """Whether the numba kernels serve tensors like ``t``."""
    return HAVE_NUMBA and t.device.type == "cpu"


def thresholds_np(min_energy: float | torch.Tensor) -> np.ndarray:
    """The kernels' form of a reproduction threshold: a float32 array of one value (the world's)
    or one per slot (indexed by slot)."""
    if isinstance(min_energy, torch.Tensor):
        return min_energy.numpy()
    return np.full(1, min_energy, np.float32)


def select_cpu(st, slots: torch.Tensor, neighbours: torch.Tensor, ready: torch.Tensor,
               min_energy: float | torch.Tensor, min_age: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``energy-threshold`` selection; ``min_energy`` one threshold or one per slot."""
    v = st.np
    parents = np.empty(slots.shape[0], np.int64)
    partners = np.empty(slots.shape[0], np.int64)
    k = _select(slots.numpy(), neighbours.numpy(), ready.numpy(), v.energy, v.age, v.ready, v.alive,
                thresholds_np(min_energy), min_age, parents, partners)
    return torch.from_numpy(parents[:k]), torch.from_numpy(partners[:k])


def breed_cpu(genomes: torch.Tensor, parents: torch.Tensor, partners: torch.Tensor,
              pick: torch.Tensor | None, bounds: np.ndarray) -> torch.Tensor:
    child = np.empty((parents.shape[0], genomes.shape[1]), np.float32)
    pick_np = pick.numpy() if pick is not None else np.zeros((0, bounds.shape[0] - 1), np.float32)
    _breed(genomes.numpy(), parents.numpy(), partners.numpy(), pick_np, bounds, child)
    return torch.from_numpy(child)


def gaussian_cpu(genomes: torch.Tensor, ls_lo: int, n_ls: int, noise: torch.Tensor,
                 segment: np.ndarray, tau: float, sigma_min: float, sigma_max: float) -> None:
    f = np.float32
    _gaussian(genomes.numpy(), ls_lo, n_ls, noise.numpy(), segment, f(tau),
              f(math.log(sigma_min)), f(math.log(sigma_max)))
    # written through numpy: tell torch, as an in-place torch op would (genomes may be a view of
    # the world's genome matrix, whose version the CPU policy cache watches)
    torch.autograd.graph.increment_version(genomes)


def strays_cpu(child: torch.Tensor, tag_lo: int, founders: torch.Tensor, species: torch.Tensor,
               threshold: float) -> tuple[torch.Tensor, int]:
    out = np.empty(child.shape[0], np.bool_)
    n_new = _strays(child.numpy(), tag_lo, np.ascontiguousarray(founders.numpy()), species.numpy(),
                    np.float32(threshold), out)
    return torch.from_numpy(out), int(n_new)


def compat_args(layout) -> tuple[int, ...]:
    """The compatibility network's place in the genome, as ``_accepts`` takes it: offsets of
    ``tag, w1, b1, w2, b2``, then the tag size and the hidden size."""
    e = {k: layout[f"compatibility.{k}"] for k in ("tag", "w1", "b1", "w2", "b2")}
    return (*(v.offset for v in e.values()), e["tag"].size, e["b1"].size)


def accepts_cpu(genomes: torch.Tensor, a: torch.Tensor, b: torch.Tensor, u: torch.Tensor,
                layout) -> torch.Tensor:
    """Mate acceptance of ``alife.strategies.mating`` for pairs ``(a[c], b[c])`` of slots."""
    out = np.empty(a.shape[0], np.bool_)
    _accepts(genomes.numpy(), a.numpy(), b.numpy(), u.numpy(), *compat_args(layout), out)
    return torch.from_numpy(out)
