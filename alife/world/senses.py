"""Sensing: the nearest agent through a uniform grid, and the observation vector.

The grid's cells are at least ``sense_radius`` wide, so the nearest agent within that radius lies
in the 3x3 block around an agent's cell. On the CPU a numba kernel (``alife.world.kernels``)
searches that block exactly, one serial pass over the agents. On CUDA the search is whole-array torch:
a stable sort by cell, a scatter into a ``[cells, M]`` table that keeps up to
``max_neighbours_per_cell`` agents per cell (lowest slots first), one gather of the ``9M``
candidates per agent; where a cell holds more than M, an agent sees the nearest of those kept.

A CPU ``Simulation`` calls ``alife.world.kernels.sense_cpu`` (bucket, nearest and observation in
one call) and not these functions; their numba branches (``exact_cpu``, ``fused``) run the same
kernels one at a time, which is how tests/world/test_senses.py checks each against brute force
and the torch path.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from alife.world.kernels import HAVE_NUMBA, nearest_cpu, observe_cpu

LOOK = 2.0  # how far ahead the three resource probes reach, in cells
LOOK_ANGLES = (-0.6, 0.0, 0.6)  # their bearings, radians

_OFFSETS = [(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]


class NeighbourGrid:
    def __init__(self, width: int, height: int, radius: float, per_cell: int, device: torch.device,
                 exact_cpu: bool = HAVE_NUMBA):
        #: on the CPU, the numba kernel finds the exact nearest agent (no per-cell cap)
        self.exact_cpu = exact_cpu and HAVE_NUMBA
        self.w, self.h = float(width), float(height)
        self.gx = max(1, int(width // radius))
        self.gy = max(1, int(height // radius))
        self.cw, self.ch = self.w / self.gx, self.h / self.gy
        self.m = per_cell
        self.n_cells = self.gx * self.gy
        offs = torch.tensor(_OFFSETS, dtype=torch.int64, device=device)
        self.dx, self.dy = offs[:, 0], offs[:, 1]
        self.device = device

    def nearest(self, pos: torch.Tensor, alive: torch.Tensor, radius: float, query: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For each of ``n`` rows that is alive (or, given ``query``, where ``query`` is true):
        slot of the nearest other alive agent within ``radius`` (-1 if none), its torus offset
        ``[n, 2]`` and distance ``[n]``."""
        n = pos.shape[0]
        dev = pos.device
        if n == 0:
            z = torch.zeros(0, device=dev)
            return torch.zeros(0, dtype=torch.int64, device=dev), z.view(0, 2), z
        px, py = pos[:, 0].contiguous(), pos[:, 1].contiguous()
        if dev.type == "cpu" and self.exact_cpu:
            nb, off, dist = nearest_cpu(px.numpy(), py.numpy(), alive.numpy(), self.gx, self.gy,
                                        self.cw, self.ch, self.w, self.h, radius,
                                        None if query is None else query.numpy())
            return torch.from_numpy(nb), torch.from_numpy(off), torch.from_numpy(dist)
        cx = (px / self.cw).long().clamp_(0, self.gx - 1)
        cy = (py / self.ch).long().clamp_(0, self.gy - 1)
        cell = torch.where(alive, cy * self.gx + cx, self.n_cells)
        sorted_cell, order = torch.sort(cell, stable=True)
        counts = torch.bincount(sorted_cell, minlength=self.n_cells + 1)
        starts = counts.cumsum(0) - counts
        rank = torch.arange(n, device=dev) - starts[sorted_cell]
        keep = (rank < self.m) & (sorted_cell < self.n_cells)
        # empty table entries point at row n, a sentinel far outside the world
        table = torch.full(((self.n_cells + 1) * self.m,), n, dtype=torch.int64, device=dev)
        table[sorted_cell[keep] * self.m + rank[keep]] = order[keep]
        table = table.view(self.n_cells + 1, self.m)
        far = torch.tensor([3.0 * (self.w + self.h)], device=dev)
        pxs, pys = torch.cat([px, far]), torch.cat([py, far])

        ux, uy = cx.unsqueeze(1) + self.dx, cy.unsqueeze(1) + self.dy  # [n, 9]
        # a block cell across the torus seam: shift candidates by one world size
        sx = torch.where(ux < 0, -self.w, torch.where(ux >= self.gx, self.w, 0.0))
        sy = torch.where(uy < 0, -self.h, torch.where(uy >= self.gy, self.h, 0.0))
        cand = table[(uy % self.gy) * self.gx + (ux % self.gx)]  # [n, 9, M]
        ddx = pxs[cand] + (sx - px.unsqueeze(1)).unsqueeze(2)
        ddy = pys[cand] + (sy - py.unsqueeze(1)).unsqueeze(2)
        d2 = (ddx * ddx + ddy * ddy).view(n, -1)
        d2.masked_fill_(cand.view(n, -1) == torch.arange(n, device=dev).unsqueeze(1), math.inf)
        best, arg = d2.min(1)
        seen = (best <= radius * radius) & (alive if query is None else query)
        j = torch.where(seen, cand.view(n, -1).gather(1, arg.unsqueeze(1)).squeeze(1), -1)
        off = torch.stack([ddx.view(n, -1).gather(1, arg.unsqueeze(1)).squeeze(1),
                           ddy.view(n, -1).gather(1, arg.unsqueeze(1)).squeeze(1)], dim=1)
        off.masked_fill_(~seen.unsqueeze(1), 0.0)
        dist = torch.where(seen, best, radius * radius).sqrt()
        return j, off, dist


def sample_resource(resource: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Resource at (possibly off-world) positions, wrapped on the torus."""
    h, w = resource.shape
    ix = torch.remainder(x.floor().long(), w)
    iy = torch.remainder(y.floor().long(), h)
    return resource.view(-1)[iy * w + ix]


LOOK_ANGLES_F32 = np.array(LOOK_ANGLES, dtype=np.float32)


def observe(state, nb: torch.Tensor, off: torch.Tensor, dist: torch.Tensor, cfg, tags: torch.Tensor,
            out: torch.Tensor, fused: bool = True) -> torch.Tensor:
    """Fill ``out[:n]`` with observations for slots ``[0, n)`` (see ``alife.genome.obs_names``)."""
    n = nb.shape[0]
    a = cfg.agent
    rmax = cfg.resource.max
    o = out[:n]
    if fused and o.device.type == "cpu" and HAVE_NUMBA and n:
        observe_cpu(state.pos[:n, 0].contiguous().numpy(), state.pos[:n, 1].contiguous().numpy(),
                    state.heading[:n].numpy(), state.energy[:n].numpy(), state.age[:n].numpy(),
                    state.ready[:n].numpy(), tags.numpy(), state.resource.numpy(), nb.numpy(),
                    off.numpy(), dist.numpy(), o.numpy(), rmax, a.sense_radius, a.max_energy,
                    a.max_age, LOOK, LOOK_ANGLES_F32)
        return o
    pos, hd = state.pos[:n], state.heading[:n]
    cos_h, sin_h = hd.cos(), hd.sin()
    res = state.resource
    look = LOOK
    o[:, 0] = sample_resource(res, pos[:, 0], pos[:, 1]) / rmax
    for k, ang in enumerate(LOOK_ANGLES):
        c, s = math.cos(ang), math.sin(ang)
        fx = cos_h * c - sin_h * s
        fy = sin_h * c + cos_h * s
        o[:, 1 + k] = sample_resource(res, pos[:, 0] + look * fx, pos[:, 1] + look * fy) / rmax
    seen = nb >= 0
    nbc = nb.clamp(min=0)
    inv = 1.0 / dist.clamp(min=1e-6)
    fwd = (off[:, 0] * cos_h + off[:, 1] * sin_h) * inv
    lat = (-off[:, 0] * sin_h + off[:, 1] * cos_h) * inv
    sf = seen.float()
    o[:, 4] = sf
    o[:, 5] = torch.where(seen, dist / a.sense_radius, torch.ones_like(dist))
    o[:, 6] = lat * sf
    o[:, 7] = fwd * sf
    o[:, 8] = state.energy[nbc] / a.max_energy * sf
    o[:, 9] = state.ready[nbc].float() * sf
    o[:, 10] = state.energy[:n] / a.max_energy
    o[:, 11] = state.age[:n].float() / a.max_age
    o[:, 12:12 + tags.shape[1]] = tags[nbc] * sf.unsqueeze(1)  # plugins' channels follow
    return o
