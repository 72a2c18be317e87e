"""CPU kernels (numba) of the world step: sensing (exact nearest neighbours on the torus through a
counting-sorted grid, then the observation), movement and grazing, fights, metabolism and causes of
death, removal of the dead, regrowth, and the placement of children. Each is one serial pass over
the slot arrays (a parallel numba pool contended with torch's threads on 2 cores), called with
numpy views of the world's tensors (``WorldState.np``).

They stand in for about 150 small torch operations a step, whose fixed cost dominated a CPU step
at a few hundred agents. The torch forms in ``alife.simulation`` and ``alife.world.senses`` are the
reference and run on CUDA; tests/test_physics.py holds the two together. Without numba (a core
dependency, but a broken install should not stop a run) the torch forms run on the CPU too.
"""

from __future__ import annotations

import numpy as np
import torch

try:
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
    def _nearest(px, py, alive, query, starts, order, gx, gy, cw, ch, w, h, r2, nb, offx, offy, d2out):
        """Rows ``i`` with ``query[i]``: the nearest other row ``j`` with ``alive[j]`` within ``sqrt(r2)``."""
        n = px.shape[0]
        hw_, hh_ = w * 0.5, h * 0.5
        rx = 3 if gx >= 3 else gx
        ry = 3 if gy >= 3 else gy
        for i in range(n):
            nb[i] = -1
            offx[i] = 0.0
            offy[i] = 0.0
            d2out[i] = r2
            if not query[i]:
                continue
            x, y = px[i], py[i]
            cx = min(max(int(x / cw), 0), gx - 1)
            cy = min(max(int(y / ch), 0), gy - 1)
            best = r2
            bj = -1
            bx = 0.0
            by = 0.0
            for oy in range(ry):
                ccy = cy + oy - (1 if ry == 3 else 0)
                ccy = ccy + gy if ccy < 0 else (ccy - gy if ccy >= gy else ccy)  # no % (slow)
                for ox in range(rx):
                    ccx = cx + ox - (1 if rx == 3 else 0)
                    ccx = ccx + gx if ccx < 0 else (ccx - gx if ccx >= gx else ccx)
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
        ix = int(np.floor(x))
        iy = int(np.floor(y))
        if ix < 0 or ix >= w:  # integer % is slow; most probes are inside the world
            ix %= w
        if iy < 0 or iy >= h:
            iy %= h
        return res[iy, ix]

    @njit(cache=True)
    def _observe(px, py, hd, energy, age, ready, tags, res, nb, offx, offy, dist, out,
                 rmax, sense_radius, max_energy, max_age, look, angles):
        n = px.shape[0]
        t = tags.shape[1]
        ca, sa = np.cos(angles), np.sin(angles)
        for i in range(n):
            ch, sh = np.cos(hd[i]), np.sin(hd[i])
            x, y = px[i], py[i]
            out[i, 0] = _wrap_sample(res, x, y) / rmax
            for k in range(3):
                c, s = ca[k], sa[k]
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
    def _live_contacts(nb, dist, alive, contact, live, near):
        m = 0
        for i in range(nb.shape[0]):
            if not alive[i]:
                continue
            j = nb[i]
            live[m] = i
            near[m] = j if (j >= 0 and dist[i] <= contact and alive[j]) else -1
            m += 1
        return m

    @njit(cache=True)
    def _place(free, parents, partners, child, jitter, turn, species_new, next_id, pos, heading,
               energy, lifetime, age, genomes, bad, ids, par, generation, children, ready,
               last_action, species, alive, w, h, child_energy, pay):
        two_pi = np.float32(2.0 * np.pi)
        half = np.float32(0.5)
        for c in range(free.shape[0]):
            energy[parents[c]] -= pay  # the parent pays for the child
        for c in range(free.shape[0]):
            s, p, q = free[c], parents[c], partners[c]
            x = pos[p, 0] + jitter[c, 0] * half
            y = pos[p, 1] + jitter[c, 1] * half
            pos[s, 0] = x - w * np.floor(x / w)
            pos[s, 1] = y - h * np.floor(y / h)
            heading[s] = turn[c] * two_pi
            energy[s] = child_energy
            lifetime[s] = 0.0
            age[s] = 0
            ok = True
            for z in range(child.shape[1]):
                v = child[c, z]
                genomes[s, z] = v
                ok = ok and np.isfinite(v)
            bad[s] = not ok
            ids[s] = next_id + c
            par[s, 0] = ids[p]
            gen = generation[p]
            if q >= 0:
                par[s, 1] = ids[q]
                gen = max(gen, generation[q])
                children[q] += 1
            else:
                par[s, 1] = -1
            generation[s] = gen + 1
            children[s] = 0
            children[p] += 1
            ready[s] = False
            for z in range(last_action.shape[1]):
                last_action[s, z] = 0.0
            species[s] = species_new[c]
            alive[s] = True


    @njit(cache=True)
    def _sense(pos, alive, hd, energy, age, ready, tags, res, nb, off, dist, out, p, angles):
        """Nearest neighbours and the observation vector in one call (a numba call costs a few
        microseconds per argument, which at a few hundred agents is most of a kernel's time)."""
        px, py = pos[:, 0], pos[:, 1]
        gx, gy = int(p[0]), int(p[1])
        starts, order = _bucket(px, py, alive, gx, gy, p[2], p[3])
        _nearest(px, py, alive, alive, starts, order, gx, gy, p[2], p[3], p[4], p[5], p[6], nb, off[0],
                 off[1], dist)
        for i in range(dist.shape[0]):
            dist[i] = np.sqrt(dist[i])
        _observe(px, py, hd, energy, age, ready, tags, res, nb, off[0], off[1], dist, out, p[7],
                 p[8], p[9], p[10], p[11], angles)
        # a NaN in a neighbour's genome or energy must not poison the agents that see it
        for i in range(out.shape[0]):
            for q in range(out.shape[1]):
                if not np.isfinite(out[i, q]):
                    out[i, q] = 0.0


    @njit(cache=True)
    def _fight(attackers, targets, damage, gain, energy, lifetime, killed, want, attack_cost):
        """Attacks take at most what their target has, shared in proportion to the damage
        asked; the attacker gains ``gain`` scaled alike; a target left with nothing is killed;
        every attacker pays ``attack_cost``. ``want`` is a zeroed scratch, left zeroed."""
        m = attackers.shape[0]
        scale = np.empty(m, np.float32)
        for c in range(m):
            want[targets[c]] += damage[c]
        for c in range(m):
            t = targets[c]
            have = max(energy[t], np.float32(0.0))
            w = want[t]
            scale[c] = have / max(w, np.float32(1e-12)) if w > have else np.float32(1.0)
        for c in range(m):
            energy[targets[c]] -= damage[c] * scale[c]
        for c in range(m):
            g = gain[c] * scale[c]
            energy[attackers[c]] += g
            lifetime[attackers[c]] += g
        for c in range(m):
            t = targets[c]
            killed[t] = energy[t] <= np.float32(1e-6)
            want[t] = 0.0
        for c in range(m):
            energy[attackers[c]] -= attack_cost

    @njit(cache=True)
    def _remove(slots, cause, c_invalid, alive, ready, ids, energy, genomes, hw):
        """Empty the slots of the dead; zero the genome and energy of those that died invalid
        (their NaNs would still be read); returns the new high-water mark."""
        for c in range(slots.shape[0]):
            s = slots[c]
            if cause[c] == c_invalid:
                energy[s] = 0.0
                for z in range(genomes.shape[1]):
                    genomes[s, z] = 0.0
            alive[s] = False
            ready[s] = False
            ids[s] = -1
        while hw > 0 and not alive[hw - 1]:
            hw -= 1
        return hw

    @njit(cache=True)
    def _first_free(alive, out):
        k = 0
        for i in range(alive.shape[0]):
            if k == out.shape[0]:
                break
            if not alive[i]:
                out[k] = i
                k += 1
        return k

def act_move_eat_cpu(act, alive, bad, nb, dist, heading, px, py, energy, lifetime, last_action,
                     ready, res, total, cell, speed, invalid, attacking, *, max_turn: float,
                     max_speed: float, bite: float, food_energy: float, contact: float) -> None:
    """Movement and eating of ``alife.Simulation.step`` in one pass (arrays by slot, in place)."""
    h, w = res.shape
    f = np.float32
    _act_move_eat(act, alive, bad, nb, dist, heading, px, py, energy, lifetime, last_action, ready,
                  res.reshape(-1), total, cell, speed, invalid, attacking, f(max_turn), f(max_speed),
                  w, h, f(bite), f(food_energy), f(contact))


def first_free_cpu(alive: np.ndarray, k: int) -> torch.Tensor:
    """The lowest ``<= k`` free slots (``WorldState.free_slots`` in one pass)."""
    out = np.empty(k, np.int64)
    return torch.from_numpy(out[: _first_free(alive, out)])


def fight_cpu(attackers, targets, damage, gain, energy, lifetime, killed, want, attack_cost: float) -> None:
    """The fight of ``alife.Simulation.step`` given the interaction's damage and gain."""
    _fight(attackers, targets, damage, gain, energy, lifetime, killed, want, np.float32(attack_cost))


def remove_cpu(slots, cause, c_invalid: int, v, hw: int) -> int:
    """Empty the dead's slots in the ``WorldState.np`` views ``v``; returns the new ``hw``."""
    return _remove(slots, cause, c_invalid, v.alive, v.ready, v.ids, v.energy, v.genomes, hw)


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


def live_contacts_cpu(nb: np.ndarray, dist: np.ndarray, alive: np.ndarray, contact: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The living slots and, for each, its nearest agent if that is alive and within
    ``contact`` (else -1)."""
    live = np.empty(nb.shape[0], np.int64)
    near = np.empty(nb.shape[0], np.int64)
    m = _live_contacts(nb, dist, alive, np.float32(contact), live, near)
    return live[:m], near[:m]


def place_children_cpu(st, free, parents, partners, child, jitter, turn, species, bad, *,
                       child_energy: float, pay: float) -> None:
    """Write ``k`` children into the free slots of a ``WorldState`` (numpy views of its
    arrays): position beside the parent (``jitter`` standard normals, halved), heading
    (``turn`` uniforms), genome, ids from ``st.next_id``, parents, generation, children counts;
    each parent pays ``pay``."""
    v = st.np
    h, w = v.resource.shape
    f = np.float32
    _place(free, parents, partners, child, jitter, turn, species, st.next_id, v.pos, v.heading,
           v.energy, v.lifetime_energy, v.age, v.genomes, bad, v.ids, v.parents, v.generation,
           v.children, v.ready, v.last_action, v.species, v.alive, f(w), f(h), f(child_energy), f(pay))


def sense_cpu(pos, alive, heading, energy, age, ready, tags, res, nb, off, dist, out,
              params: np.ndarray, angles: np.ndarray) -> None:
    """Fill ``nb [n]``, ``off [2, n]``, ``dist [n]`` (the nearest agent within the sense radius,
    as :func:`nearest_cpu`) and the observations ``out [n, n_obs]`` with non-finite values
    zeroed. ``params``: float32 ``[gx, gy, cw, ch, w, h, radius^2, resource max, sense radius,
    max energy, max age, look]``."""
    _sense(pos, alive, heading, energy, age, ready, tags, res, nb, off, dist, out, params, angles)


def observe_cpu(px, py, hd, energy, age, ready, tags, res, nb, off, dist, out, rmax: float,
                sense_radius: float, max_energy: float, max_age: float, look: float,
                angles: np.ndarray) -> None:
    """The observation vector of ``alife.world.senses.observe``, one pass per agent."""
    _observe(px, py, hd, energy, age, ready, tags, res, nb, np.ascontiguousarray(off[:, 0]),
             np.ascontiguousarray(off[:, 1]), dist, out, np.float32(rmax), np.float32(sense_radius),
             np.float32(max_energy), np.float32(max_age), np.float32(look), angles)


def nearest_cpu(px: np.ndarray, py: np.ndarray, alive: np.ndarray, gx: int, gy: int, cw: float,
                ch: float, w: float, h: float, radius: float, query: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact nearest alive agent within ``radius`` on a ``w x h`` torus (grid cells >= radius),
    for the rows that are alive (or, given ``query``, for the rows where ``query`` is true).

    Returns ``(nb [n] int64, -1 for none; off [n, 2] float32; dist [n] float32)``; ties go to the
    lower slot, so the result does not depend on thread scheduling.
    """
    n = px.shape[0]
    starts, order = _bucket(px, py, alive, gx, gy, cw, ch)
    nb = np.empty(n, np.int64)
    off = np.empty((2, n), np.float32)
    d2 = np.empty(n, np.float32)
    _nearest(px, py, alive, alive if query is None else query, starts, order, gx, gy, np.float32(cw), np.float32(ch), np.float32(w),
             np.float32(h), np.float32(radius * radius), nb, off[0], off[1], d2)
    return nb, np.ascontiguousarray(off.T), np.sqrt(d2)


__all__ = ["HAVE_NUMBA", "act_move_eat_cpu", "fight_cpu", "first_free_cpu", "remove_cpu", "live_contacts_cpu", "metabolism_cpu", "nearest_cpu",
           "observe_cpu", "place_children_cpu", "regrow_cpu", "sense_cpu"]
