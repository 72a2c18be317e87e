"""CPU kernels (numba) for the per-step work that torch does poorly on a CPU: exact nearest
neighbours on the torus through a counting-sorted grid, then the fused observation, one serial
pass per agent (a parallel numba pool contended with torch's threads on 2 cores).

On CUDA the torch path in ``alife.world.senses`` runs instead. Without numba (it is a core
dependency, but a broken install should not stop a run) the torch path runs on the CPU too.
"""

from __future__ import annotations

import numpy as np

try:
    import numba
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only on broken installs
    HAVE_NUMBA = False


if HAVE_NUMBA:

    @njit(cache=True)
    def _bucket(px, py, alive, gx, gy, cw, ch):
        n = px.shape[0]
        ncell = gx * gy
        cell = np.empty(n, np.int64)
        counts = np.zeros(ncell + 1, np.int64)
        for i in range(n):
            if alive[i]:
                cx = min(max(int(px[i] / cw), 0), gx - 1)
                cy = min(max(int(py[i] / ch), 0), gy - 1)
                c = cy * gx + cx
            else:
                c = ncell
            cell[i] = c
            counts[c] += 1
        starts = np.empty(ncell + 2, np.int64)
        starts[0] = 0
        for c in range(ncell + 1):
            starts[c + 1] = starts[c] + counts[c]
        fill = starts[:-1].copy()
        order = np.empty(n, np.int64)
        for i in range(n):  # stable: slots in increasing order within a cell
            c = cell[i]
            order[fill[c]] = i
            fill[c] += 1
        return starts, order

    @njit(cache=True)
    def _nearest(px, py, alive, starts, order, gx, gy, cw, ch, w, h, r2, nb, offx, offy, d2out):
        n = px.shape[0]
        hw_, hh_ = w * 0.5, h * 0.5
        rx = 3 if gx >= 3 else gx
        ry = 3 if gy >= 3 else gy
        for i in range(n):
            nb[i] = -1
            offx[i] = 0.0
            offy[i] = 0.0
            d2out[i] = r2
            if not alive[i]:
                continue
            x, y = px[i], py[i]
            cx = min(max(int(x / cw), 0), gx - 1)
            cy = min(max(int(y / ch), 0), gy - 1)
            best = r2
            bj = -1
            bx = 0.0
            by = 0.0
            for oy in range(ry):
                ccy = (cy + oy - (1 if ry == 3 else 0)) % gy
                for ox in range(rx):
                    ccx = (cx + ox - (1 if rx == 3 else 0)) % gx
                    c = ccy * gx + ccx
                    for k in range(starts[c], starts[c + 1]):
                        j = order[k]
                        if j == i:
                            continue
                        dx = px[j] - x
                        if dx > hw_:
                            dx -= w
                        elif dx < -hw_:
                            dx += w
                        dy = py[j] - y
                        if dy > hh_:
                            dy -= h
                        elif dy < -hh_:
                            dy += h
                        d2 = dx * dx + dy * dy
                        if d2 < best or (d2 == best and bj >= 0 and j < bj):
                            best, bj, bx, by = d2, j, dx, dy
            if bj >= 0:
                nb[i] = bj
                offx[i] = bx
                offy[i] = by
                d2out[i] = best


    @njit(cache=True)
    def _wrap_sample(res, x, y):
        h, w = res.shape
        ix = int(np.floor(x)) % w
        iy = int(np.floor(y)) % h
        return res[iy, ix]

    @njit(cache=True)
    def _observe(px, py, hd, energy, age, ready, tags, res, nb, offx, offy, dist, out,
                 rmax, sense_radius, max_energy, max_age, look, angles):
        n = px.shape[0]
        t = tags.shape[1]
        for i in range(n):
            ch, sh = np.cos(hd[i]), np.sin(hd[i])
            x, y = px[i], py[i]
            out[i, 0] = _wrap_sample(res, x, y) / rmax
            for k in range(3):
                c, s = np.cos(angles[k]), np.sin(angles[k])
                fx = ch * c - sh * s
                fy = sh * c + ch * s
                out[i, 1 + k] = _wrap_sample(res, x + look * fx, y + look * fy) / rmax
            j = nb[i]
            if j >= 0:
                inv = 1.0 / max(dist[i], 1e-6)
                out[i, 4] = 1.0
                out[i, 5] = dist[i] / sense_radius
                out[i, 6] = (-offx[i] * sh + offy[i] * ch) * inv
                out[i, 7] = (offx[i] * ch + offy[i] * sh) * inv
                out[i, 8] = energy[j] / max_energy
                out[i, 9] = 1.0 if ready[j] else 0.0
                for q in range(t):
                    out[i, 12 + q] = tags[j, q]
            else:
                out[i, 4] = 0.0
                out[i, 5] = 1.0
                for q in range(6, 10):
                    out[i, q] = 0.0
                for q in range(t):
                    out[i, 12 + q] = 0.0
            out[i, 10] = energy[i] / max_energy
            out[i, 11] = age[i] / max_age


def observe_cpu(px, py, hd, energy, age, ready, tags, res, nb, off, dist, out, rmax: float,
                sense_radius: float, max_energy: float, max_age: float, look: float,
                angles: np.ndarray) -> None:
    """The observation vector of ``alife.world.senses.observe``, one pass per agent."""
    _observe(px, py, hd, energy, age, ready, tags, res, nb, np.ascontiguousarray(off[:, 0]),
             np.ascontiguousarray(off[:, 1]), dist, out, np.float32(rmax), np.float32(sense_radius),
             np.float32(max_energy), np.float32(max_age), np.float32(look), angles)


def nearest_cpu(px: np.ndarray, py: np.ndarray, alive: np.ndarray, gx: int, gy: int, cw: float,
                ch: float, w: float, h: float, radius: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact nearest alive agent within ``radius`` on a ``w x h`` torus (grid cells >= radius).

    Returns ``(nb [n] int64, -1 for none; off [n, 2] float32; dist [n] float32)``; ties go to the
    lower slot, so the result does not depend on thread scheduling.
    """
    n = px.shape[0]
    starts, order = _bucket(px, py, alive, gx, gy, cw, ch)
    nb = np.empty(n, np.int64)
    off = np.empty((2, n), np.float32)
    d2 = np.empty(n, np.float32)
    _nearest(px, py, alive, starts, order, gx, gy, np.float32(cw), np.float32(ch), np.float32(w),
             np.float32(h), np.float32(radius * radius), nb, off[0], off[1], d2)
    return nb, np.ascontiguousarray(off.T), np.sqrt(d2)


def set_threads(n: int) -> None:
    if HAVE_NUMBA:
        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


__all__ = ["HAVE_NUMBA", "nearest_cpu", "observe_cpu", "set_threads"]
