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



    @njit(cache=True)
    def _act_move_eat(act, alive, bad, nb, dist, heading, px, py, energy, lifetime, last_action,
                      ready, res, total, cell, speed, invalid, attacking, max_turn, max_speed, w, h,
                      bite, food_energy, contact):
        """Clean actions, turn and move, then eat: agents in one cell share what it holds in
        proportion to their bites. ``total`` is a zeroed per-cell scratch, left zeroed. Marks
        who attacks (its nearest agent within ``contact`` before moving, as the torch path)."""
        n = act.shape[0]
        two_pi = np.float32(2.0 * np.pi)
        wf, hf = np.float32(w), np.float32(h)
        for i in range(n):
            bad_act = False
            for q in range(act.shape[1]):
                v = act[i, q]
                if not np.isfinite(v):
                    bad_act = True
                    v = np.float32(0.0)
                v = min(max(v, np.float32(-1.0)), np.float32(1.0))
                last_action[i, q] = v
            a = alive[i]
            invalid[i] = (bad_act or bad[i]) and a
            ready[i] = a and last_action[i, 4] > 0
            attacking[i] = a and last_action[i, 3] > 0 and nb[i] >= 0 and dist[i] <= contact
            if not a:
                speed[i] = 0.0
                cell[i] = -1
                continue
            sp = (last_action[i, 1] + np.float32(1.0)) * np.float32(0.5)
            speed[i] = sp
            hd = heading[i] + last_action[i, 0] * max_turn
            hd = hd - two_pi * np.floor(hd / two_pi)
            if hd >= two_pi:
                hd -= two_pi
            heading[i] = hd
            step = sp * max_speed
            x = px[i] + np.cos(hd) * step
            y = py[i] + np.sin(hd) * step
            x = x - wf * np.floor(x / wf)
            y = y - hf * np.floor(y / hf)
            if x >= wf:
                x -= wf
            if y >= hf:
                y -= hf
            px[i] = x
            py[i] = y
            if last_action[i, 2] > 0:
                c = min(max(int(y), 0), h - 1) * w + min(max(int(x), 0), w - 1)
                cell[i] = c
                total[c] += bite
            else:
                cell[i] = -1
        # each demanded cell once: frac = min(res / total, 1); res -= total * frac; then the
        # cell's slot in ``total`` holds -1 - frac until the reset below
        for i in range(n):
            c = cell[i]
            if c < 0:
                continue
            t = total[c]
            if t >= 0:
                tf = np.float32(t)
                frac = min(res[c] / max(tf, np.float32(1e-12)), np.float32(1.0)) if tf > 0 else np.float32(0.0)
                res[c] -= tf * frac
                total[c] = -1.0 - frac
            frac = np.float32(-1.0 - total[c])
            food = bite * frac * food_energy
            energy[i] += food
            lifetime[i] += food
        for i in range(n):
            if cell[i] >= 0:
                total[cell[i]] = 0.0

    @njit(cache=True)
    def _metabolism(alive, energy, age, speed, invalid, killed, slots, cause, base_cost, move_cost,
                    brain, max_energy, max_age, c_invalid, c_eaten, c_starved, c_old):
        """Pay the step's cost and age; write the slots that die and their causes into
        ``slots[:k]``, ``cause[:k]`` (by precedence: invalid > eaten > starved > old age), return k."""
        k = 0
        for i in range(energy.shape[0]):
            if not alive[i]:
                continue
            sp = speed[i]
            e = min(energy[i] - (base_cost + move_cost * sp * sp + brain), max_energy)
            energy[i] = e
            age[i] += 1
            if invalid[i] or not np.isfinite(e):
                c = c_invalid
            elif killed[i]:
                c = c_eaten
            elif e <= 0:
                c = c_starved
            elif age[i] >= max_age:
                c = c_old
            else:
                continue
            slots[k] = i
            cause[k] = c
            k += 1
        return k

    @njit(cache=True)
    def _regrow(r, regrowth, rmax, seed_growth, factor):
        for i in range(r.shape[0]):
            v = r[i]
            v = v + (regrowth * v * (np.float32(1.0) - v / rmax) + seed_growth) * factor
            r[i] = min(max(v, np.float32(0.0)), rmax)

    @njit(cache=True)
    def _contacts(nb, dist, alive, contact, out):
        for i in range(nb.shape[0]):
            j = nb[i]
            out[i] = j if (j >= 0 and dist[i] <= contact and alive[j]) else -1


def act_move_eat_cpu(act, alive, bad, nb, dist, heading, px, py, energy, lifetime, last_action,
                     ready, res, total, cell, speed, invalid, attacking, *, max_turn: float,
                     max_speed: float, bite: float, food_energy: float, contact: float) -> None:
    """Movement and eating of ``alife.Simulation.step`` in one pass (arrays by slot, in place)."""
    h, w = res.shape
    f = np.float32
    _act_move_eat(act, alive, bad, nb, dist, heading, px, py, energy, lifetime, last_action, ready,
                  res.reshape(-1), total, cell, speed, invalid, attacking, f(max_turn), f(max_speed),
                  w, h, f(bite), f(food_energy), f(contact))


def metabolism_cpu(alive, energy, age, speed, invalid, killed, slots, cause, *, base_cost: float,
                   move_cost: float, brain: float, max_energy: float, max_age: int,
                   codes: tuple[int, int, int, int]) -> int:
    """Step cost and ageing; the ``k`` agents that die go to ``slots[:k]`` with their causes in
    ``cause[:k]``; returns ``k``. ``codes``: the cause codes of invalid, eaten, starved, old age."""
    f = np.float32
    return _metabolism(alive, energy, age, speed, invalid, killed, slots, cause, f(base_cost),
                       f(move_cost), f(brain), f(max_energy), max_age, *codes)


def regrow_cpu(res: np.ndarray, regrowth: float, rmax: float, seed_growth: float, factor: float) -> None:
    """Logistic regrowth of the resource field with a scalar seasonal ``factor``, in place."""
    f = np.float32
    _regrow(res.reshape(-1), f(regrowth), f(rmax), f(seed_growth), f(factor))


def contacts_cpu(nb: np.ndarray, dist: np.ndarray, alive: np.ndarray, contact: float) -> np.ndarray:
    """Each row's nearest agent if it is alive and within ``contact``, else -1."""
    out = np.empty_like(nb)
    _contacts(nb, dist, alive, np.float32(contact), out)
    return out


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


__all__ = ["HAVE_NUMBA", "act_move_eat_cpu", "contacts_cpu", "metabolism_cpu", "nearest_cpu",
           "observe_cpu", "regrow_cpu", "set_threads"]
