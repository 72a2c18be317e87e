"""The reproduction phase of a step: selection, mating, reproduction and mutation, speciation,
placement of the children, their plugin arrays and strategies, and the birth records.

One phase for every strategy: the roles are called through the plugin manager with
whole-population arrays (one call per role, or one per strategy present when a ``[mixture]`` mixes
a role). When the built-in strategies play selection, mating, reproduction, mutation and
speciation on the CPU, the phase runs them fused (:meth:`Reproduction.fused`): the same draws in
the same order and the same children as calling their hooks (tests/test_strategy_kernels.py). The
engine recognises the built-ins by the ``fused_kernel`` mark they carry, never by importing them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from alife.events import Births
from alife.strategies import kernels as SK
from alife.world.arrays import reproduce_energy
from alife.world.kernels import first_free_cpu, live_contacts_cpu, place_children_cpu

if TYPE_CHECKING:
    from alife.simulation import Simulation

#: role -> the ``fused_kernel`` mark of the built-in strategy :meth:`Reproduction.fused` stands in for
_FUSED_ROLES = {"selection": "selection:energy-threshold", "mating": "mating:compatibility",
                "reproduction": "reproduction:crossover-mutate", "mutation": "mutation:gaussian",
                "speciation": "speciation:kin-drift"}


def _ix_torch(t: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
    """``t[idx]``; ``idx=None``: the indices where ``t`` is true."""
    return t.nonzero().squeeze(1) if idx is None else t[idx]


def _ix_numpy(t: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
    """:func:`_ix_torch` through numpy (CPU tensors): a few microseconds less per call."""
    a = t.numpy()
    return torch.from_numpy(np.flatnonzero(a) if idx is None else a[idx.numpy()])


class Reproduction:
    """The reproduction phase of one simulation."""

    def __init__(self, sim: Simulation):
        self.sim = sim

    def builtin(self) -> bool:
        """Whether the four reproduction roles are played by the built-in strategies alone (no
        other implementation, no wrapper): then the CPU runs them fused."""
        sim = self.sim
        return sim._cpu and sim.mixed_role is None and all(
            getattr(getattr(sim.hooks.role_function(r), "__self__", None), "fused_kernel", None) == mark
            for r, mark in _FUSED_ROLES.items())

    def run(self, nb: torch.Tensor, dist: torch.Tensor, step: int) -> None:
        """The world's reproduction phase: the living, each one's possible partner, and whether it
        signalled readiness. The possible partner is its nearest agent within contact range, or
        with ``agent.mate_radius > 0`` (mate search), for an agent that signalled readiness, the
        nearest other agent that signalled it too within that radius (-1 for the others)."""
        sim = self.sim
        st, a = sim.world, sim.config.agent
        n = nb.shape[0]
        sim.last_births = None
        radius = a.contact_radius
        if sim.mate_grid is not None:
            nb, dist = self.mates(n)
            radius = a.mate_radius
        if sim._fuse and self.builtin():
            return self.fused(nb, dist, step, radius)
        # the living, and each one's nearest agent if alive and within contact range (else -1)
        if sim._cpu:
            live, near = map(torch.from_numpy, live_contacts_cpu(
                nb.numpy(), dist.numpy(), st.np.alive[:n], radius))
        else:
            live = st.alive[:n].nonzero().squeeze(1)
            near = nb[live]
            near = torch.where((near >= 0) & (dist[live] <= radius) & st.alive[near.clamp(min=0)],
                               near, -1)
        if live.numel() == 0:
            return
        ix = _ix_numpy if sim._cpu else _ix_torch  # numpy's indexing costs less on the CPU
        self.general(step, live, near, ix(st.ready, live))

    def mates(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Mate search: for each of the first ``n`` slots that is alive and signalled readiness,
        the nearest other such agent within ``agent.mate_radius`` (the exact grid search of the
        senses, over the ready agents only), and its distance; -1 (and the radius) elsewhere."""
        sim = self.sim
        st = sim.world
        ready = st.alive[:n] & st.ready[:n]
        nb, _, dist = sim.mate_grid.nearest(st.pos[:n], ready, sim.config.agent.mate_radius)
        return nb, dist

    def generation(self, step: int, survivors: torch.Tensor) -> None:
        """A task run's reproduction phase: every genome of the generation may be chosen (no
        partner proposed, all ready); the children take the slots of all but ``survivors`` (the
        elites, which keep theirs)."""
        sim = self.sim
        sim.last_births = None
        live = sim.world.alive_slots()
        n = live.numel()
        self._survivors = survivors
        self.general(step, live, torch.full((n,), -1, dtype=torch.long, device=sim.device),
                     torch.ones(n, dtype=torch.bool, device=sim.device))

    def general(self, step: int, live: torch.Tensor, near: torch.Tensor, ready: torch.Tensor) -> None:
        """The phase through the role hooks, the same in both modes: selection (checked), mating,
        room for the children, reproduction (and mutation), speciation, placement, records."""
        sim = self.sim
        st = sim.world
        ix = _ix_numpy if sim._cpu else _ix_torch
        fitness = sim.fitness[live] if sim.mode == "task" else st.lifetime_energy[live].double()
        parents, partners = sim.hooks.select_parents(sim, live, near, ready, fitness)
        if parents.numel() == 0:
            return
        self.check_parents(parents, partners)
        two = ix(partners >= 0, None)
        refused = 0
        if two.numel():
            ok = sim.hooks.mate(sim, ix(parents, two), ix(partners, two))
            partners = partners.clone()
            refused = int((~ok).sum())
            if sim._cpu:
                partners.numpy()[two.numpy()[~ok.numpy()]] = -1
            else:
                partners[two[~ok]] = -1
        self.count_pairs(two.numel(), refused)
        room = self.room_world if sim.mode == "world" else self.room_task
        free, parents, partners = room(parents, partners)
        if free.numel() == 0:
            return
        child = sim.hooks.reproduce(sim, parents, partners)
        species = sim.hooks.speciate(sim, child, ix(st.species, parents).clone(), step)
        first_id = st.next_id
        place = self.place_world if sim.mode == "world" else self.place_task
        place(free, parents, partners, child, species, step)
        self.announce_births(step, first_id, free, parents, partners, species)

    def room_world(self, parents: torch.Tensor, partners: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The lowest free slots; children past them are refused (and counted)."""
        sim = self.sim
        st, k = sim.world, parents.numel()
        free = first_free_cpu(st.np.alive, k) if sim._cpu else st.free_slots(k)
        if free.numel() < k:
            refused = k - free.numel()
            sim.stats["births_refused_capacity"] = refused
            sim.totals["births_refused_capacity"] += refused
            parents, partners = parents[: free.numel()], partners[: free.numel()]
        return free, parents, partners

    def room_task(self, parents: torch.Tensor, partners: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The slots of the genomes that do not survive the generation: one per child."""
        sim = self.sim
        keep = torch.zeros(sim.world.capacity, dtype=torch.bool, device=sim.device)
        keep[self._survivors] = True
        free = (~keep).nonzero().squeeze(1)
        if parents.numel() != free.numel():
            sim.hooks.bad_result("selection", f"it proposed {parents.numel()} children; a task run needs "
                                 f"population - elite = {free.numel()}")
        return free, parents, partners

    def place_world(self, free: torch.Tensor, parents: torch.Tensor, partners: torch.Tensor,
                    child: torch.Tensor, species: torch.Tensor, step: int) -> None:
        """Children beside their first parent (jittered, a random heading), each parent paying
        ``child_energy + birth_cost``."""
        sim = self.sim
        st, a, dev, g = sim.world, sim.config.agent, sim.device, sim.generator
        k = free.numel()
        jitter = torch.randn(k, 2, generator=g, device=dev)
        turn = torch.rand(k, generator=g, device=dev)
        pay = a.child_energy + a.birth_cost
        if sim._cpu:
            child_np, free_np = child.contiguous().numpy(), free.numpy()
            place_children_cpu(st, free_np, parents.numpy(), partners.numpy(), child_np,
                               jitter.numpy(), turn.numpy(), species.numpy(),
                               sim._bad_genome.numpy(), child_energy=a.child_energy, pay=pay)
            sim._policy_cpu.put(free_np, child_np)  # the kernel wrote genomes behind torch's back
        else:
            self.place_children(free, parents, partners, child, jitter, turn, species, pay)

    def place_task(self, free: torch.Tensor, parents: torch.Tensor, partners: torch.Tensor,
                   child: torch.Tensor, species: torch.Tensor, step: int) -> None:
        """The genomes that do not survive leave (deaths, cause ``removed``, their offspring
        counted first); the children take their slots."""
        sim = self.sim
        st, dev, k = sim.world, sim.device, free.numel()
        has2 = partners >= 0
        p2c = partners.clamp(min=0)
        # read the parents before their slots may be taken by children
        pid = torch.stack([st.ids[parents], torch.where(has2, st.ids[p2c], -1)], 1)
        gen = st.generation[parents]
        gen = torch.where(has2, torch.maximum(gen, st.generation[p2c]), gen) + 1
        st.children.index_add_(0, parents, torch.ones_like(parents))
        st.children.index_add_(0, partners[has2], torch.ones_like(partners[has2]))
        sim.remove(free, step)
        st.genomes[free] = child
        st.ids[free] = torch.arange(st.next_id, st.next_id + k, device=dev)
        st.parents[free] = pid
        st.generation[free] = gen
        st.children[free] = 0
        st.energy[free] = 0.0
        st.lifetime_energy[free] = 0.0
        st.age[free] = 0
        st.species[free] = species
        st.alive[free] = True
        sim.born(free)

    def check_parents(self, parents: torch.Tensor, partners: torch.Tensor) -> None:
        """The selection role's answer must name living agents (partners: another living agent
        or -1) whose energy pays for every child they parent (see ``alife_select_parents``)."""
        sim = self.sim
        st, a = sim.world, sim.config.agent
        n = st.hw
        pa, pb = parents.cpu().numpy(), partners.cpu().numpy()
        alive = st.alive[:n].cpu().numpy()
        what = None
        if pa.min() < 0 or pa.max() >= n:
            what = f"parent slot {int(pa[(pa < 0) | (pa >= n)][0])} outside the world's slots [0, {n})"
        elif pb.min() < -1 or pb.max() >= n:
            what = f"partner slot {int(pb[(pb < -1) | (pb >= n)][0])} outside [-1, {n})"
        elif not alive[pa].all():
            what = f"slot {int(pa[~alive[pa]][0])} as a parent, but no agent lives there"
        elif (pb >= 0).any() and not alive[pb[pb >= 0]].all():
            what = f"slot {int(pb[pb >= 0][~alive[pb[pb >= 0]]][0])} as a partner, but no agent lives there"
        elif (pa == pb).any():
            what = f"slot {int(pa[pa == pb][0])} as its own partner"
        elif sim.mode == "world":  # the engine takes child_energy + birth_cost from each parent
            need = np.bincount(pa, minlength=n) * (a.child_energy + a.birth_cost)
            have = st.energy[:n].cpu().numpy()
            short = np.flatnonzero((need > 0) & (need > have))
            if short.size:
                c = short[0]
                what = (f"slot {int(c)} as the first parent of {int(need[c] / (a.child_energy + a.birth_cost))} "
                        f"child(ren), which cost {float(need[c]):.3g} energy (child_energy + birth_cost each), "
                        f"but it has {float(have[c]):.3g}")
        if what is not None:
            sim.hooks.bad_result("selection", f"it chose {what}")

    def count_pairs(self, proposed: int, refused: int) -> None:
        """Counters of mate choice: proposals with a partner, and those the mating role refused."""
        sim = self.sim
        sim.stats["pairs_proposed"], sim.stats["pairs_refused"] = proposed, refused
        sim.totals["pairs_proposed"] += proposed
        sim.totals["pairs_refused"] += refused

    def announce_births(self, step: int, first_id: int, free: torch.Tensor | np.ndarray,
                         parents: torch.Tensor | np.ndarray, partners: torch.Tensor | np.ndarray,
                         species: torch.Tensor | np.ndarray) -> None:
        """After the children are placed: their plugin arrays and strategies, species counts,
        counters, and the ``alife_agents_born`` event. (Numpy on the CPU: at a few hundred agents
        a step's fixed cost is a handful of these calls.)"""
        sim = self.sim
        st = sim.world
        npy = (lambda x: x.cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x))  # noqa: E731
        free, par, prt, species = npy(free), npy(parents), npy(partners), npy(species)
        k = free.shape[0]
        if len(sim.arrays) or sim.mixed_role is not None or not sim._cpu:
            t = (lambda x: torch.as_tensor(x, device=sim.device))  # noqa: E731
            free_t, par_t, prt_t = t(free), t(par), t(prt)
            if len(sim.arrays):
                sim.arrays.births(free_t, par_t, prt_t)
        codes = None
        if sim.mixed_role is not None:
            codes_t = st.strategy[par_t]
            rate, m = sim.config.mixture.switch_rate, len(sim.strategy_names)
            if rate > 0:
                switch = torch.rand(k, generator=sim.generator, device=sim.device) < rate
                other = (codes_t.long() + torch.randint(1, m, (k,), generator=sim.generator, device=sim.device)) % m
                codes_t = torch.where(switch, other.to(codes_t.dtype), codes_t)
            st.strategy[free_t] = codes_t
            codes = codes_t.cpu().numpy()
        elif not sim._cpu:
            st.strategy[free_t] = 0
        else:
            st.np.strategy[free] = 0
        if sim._species_extinct:  # living counts per species serve the extinction event alone
            np.add.at(sim._species_live, species, 1)
        parent_ids = st.np.parents[free] if sim._cpu else st.parents[free_t].cpu().numpy()
        st.next_id += k
        st.hw = max(st.hw, int(free[-1]) + 1)
        two_parent = int(np.count_nonzero(prt >= 0))
        stats, totals = sim.stats, sim.totals
        stats["births"], stats["births_two_parents"] = k, two_parent
        totals["births"] += k
        totals["births_two_parents"] += two_parent
        births = Births(step, np.arange(first_id, first_id + k), free, parent_ids, species,
                        sim.hooks.chosen["reproduction"], codes, sim.strategy_names if codes is not None else (),
                        np.stack([par, prt], axis=1))
        sim.last_births = births
        sim.hooks.agents_born(sim, births)

    def fused(self, nb: torch.Tensor, dist: torch.Tensor, step: int, radius: float) -> None:
        """The built-in selection, mating, crossover and Gaussian mutation in four numba passes:
        the same decisions and the same generator draws, in the same order, as calling their
        hooks (tests/test_strategy_kernels.py), without a dozen conversions and calls between
        them, which at a few hundred agents cost more than the work."""
        sim = self.sim
        st, a, g, v = sim.world, sim.config.agent, sim.generator, sim.world.np
        lay, mu, f32, n = sim.layout, sim.config.mutation, np.float32, nb.shape[0]
        parents, partners = np.empty(n, np.int64), np.empty(n, np.int64)
        k = SK._parents(nb.numpy(), dist.numpy(), v.alive[:n], v.ready[:n], v.energy[:n], v.age[:n],
                        f32(radius), SK.thresholds_np(reproduce_energy(sim)), a.min_reproduce_age,
                        parents, partners)
        if k == 0:
            return
        parents, partners = parents[:k], partners[:k]
        m = int(np.count_nonzero(partners >= 0))
        if m:
            u = torch.rand(2, m, generator=g)
            SK._mate_pairs(v.genomes, parents, partners, u.numpy(), *sim._compat_args)
        self.count_pairs(m, m - int(np.count_nonzero(partners >= 0)))
        free = first_free_cpu(v.alive, k).numpy()
        if free.shape[0] < k:
            refused = k - free.shape[0]
            sim.stats["births_refused_capacity"] = refused
            sim.totals["births_refused_capacity"] += refused
            parents, partners, k = parents[: free.shape[0]], partners[: free.shape[0]], free.shape[0]
            if k == 0:
                return
        m = int(np.count_nonzero(partners >= 0))
        # the hook path draws no coins when no pair is left
        pick = (torch.rand(m, len(lay.entries), generator=g).numpy() if m
                else np.zeros((0, len(lay.entries)), np.float32))
        noise = torch.randn(k, lay.size, generator=g).numpy()
        child = np.empty((k, lay.size), np.float32)
        strays = np.empty(k, np.bool_)
        species = v.species[parents]
        e, t = lay["mutator.log_sigma"], lay["compatibility.tag"]
        n_new = SK._children(
            v.genomes, parents, partners, pick, lay.bounds, noise, e.offset, e.size,
            sim._segment_index_np, f32(mu.tau), f32(math.log(mu.sigma_min)), f32(math.log(mu.sigma_max)),
            t.offset, np.ascontiguousarray(st.species_founder.numpy()), species,
            f32(mu.species_threshold), child, strays)
        if n_new:
            idx = np.flatnonzero(strays)
            tags = torch.from_numpy(child[idx, t.offset:t.offset + t.size].copy())
            species[idx] = sim.new_species(tags, torch.from_numpy(species[idx]), step).numpy()
        # drawn after speciation, as the hooks path draws them in placement
        jitter = torch.randn(k, 2, generator=g).numpy()
        turn = torch.rand(k, generator=g).numpy()
        first_id = st.next_id
        place_children_cpu(st, free, parents, partners, child, jitter, turn, species,
                           sim._bad_genome.numpy(), child_energy=a.child_energy, pay=a.child_energy + a.birth_cost)
        sim._policy_cpu.put(free, child)
        self.announce_births(step, first_id, free, parents, partners, species)

    def place_children(self, free: torch.Tensor, parents: torch.Tensor, partners: torch.Tensor,
                        child: torch.Tensor, jitter: torch.Tensor, turn: torch.Tensor,
                        species: torch.Tensor, pay: float) -> None:
        """Write the children into their slots (the torch twin of ``place_children_cpu``)."""
        sim = self.sim
        cfg, st, a, dev = sim.config, sim.world, sim.config.agent, sim.device
        k = free.numel()
        st.energy.index_add_(0, parents, torch.full((k,), -pay, device=dev))  # the parent pays
        has2 = partners >= 0
        p2c = partners.clamp(min=0)
        st.pos[free] = (st.pos[parents] + jitter * 0.5).remainder_(
            torch.tensor([cfg.world.width, cfg.world.height], dtype=torch.float32, device=dev))
        st.heading[free] = turn * (2 * math.pi)
        st.energy[free] = a.child_energy
        st.lifetime_energy[free] = 0.0
        st.age[free] = 0
        st.genomes[free] = child
        sim._bad_genome[free] = ~torch.isfinite(child).all(1)
        st.ids[free] = torch.arange(st.next_id, st.next_id + k, device=dev)
        st.parents[free, 0] = st.ids[parents]
        st.parents[free, 1] = torch.where(has2, st.ids[p2c], -1)
        gen = st.generation[parents]
        st.generation[free] = torch.where(has2, torch.maximum(gen, st.generation[p2c]), gen) + 1
        st.children[free] = 0
        st.children.index_add_(0, parents, torch.ones_like(parents))
        st.children.index_add_(0, partners[has2], torch.ones_like(partners[has2]))
        st.ready[free] = False
        st.last_action[free] = 0.0
        st.species[free] = species
        st.alive[free] = True
