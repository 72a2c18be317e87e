"""The extinction policy: what happens when the population dies out (``[world] extinction``).

``stop`` ends the run; ``reseed`` refills the world from a bounded pool of the last agents that
died (a ring buffer of their genomes, ids, species, generations and strategies, kept in
checkpoints); ``inject`` refills it with random genomes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from alife.events import Births
from alife.genome import init_genomes

if TYPE_CHECKING:
    from alife.simulation import Simulation


class Extinction:
    """The reseed pool and the refill of one simulation."""

    def __init__(self, sim: Simulation) -> None:
        """``[world] extinction = "reseed"`` keeps the genomes of the last ``initial_agents`` agents
        that died (not of cause "invalid") in a ring buffer: a bounded pool to refill from."""
        self.sim = sim
        sim.totals.update(extinctions=0, reseeded=0)
        self.pool: dict[str, torch.Tensor] | None = None
        self.pool_n = self.pool_pos = 0
        if sim.config.world.extinction == "reseed":
            b, dev = sim.config.world.initial_agents, sim.device
            self.pool = {"genomes": torch.zeros(b, sim.layout.size, device=dev),
                         "ids": torch.full((b,), -1, dtype=torch.int64, device=dev),
                         "species": torch.zeros(b, dtype=torch.int64, device=dev),
                         "generation": torch.zeros(b, dtype=torch.int64, device=dev),
                         "strategy": torch.zeros(b, dtype=torch.int16, device=dev)}

    def remember(self, slots: torch.Tensor) -> None:
        sim = self.sim
        assert self.pool is not None
        b, st = self.pool["ids"].shape[0], sim.world
        slots = slots[-b:]
        m = slots.numel()
        if m == 0:
            return
        at = (self.pool_pos + torch.arange(m, device=sim.device)) % b
        for name in ("genomes", "ids", "species", "generation", "strategy"):
            self.pool[name][at] = getattr(st, name)[slots]
        self.pool_pos = (self.pool_pos + m) % b
        self.pool_n = min(b, self.pool_n + m)

    def order(self) -> torch.Tensor:
        """Physical rows of the pool, oldest first."""
        sim = self.sim
        assert self.pool is not None
        b = self.pool["ids"].shape[0]
        return (self.pool_pos - self.pool_n + torch.arange(self.pool_n, device=sim.device)) % b

    def arrays(self) -> dict[str, np.ndarray] | None:
        """The reseed pool, oldest first, for checkpoints (``None`` unless extinction = reseed)."""
        if self.pool is None:
            return None
        order = self.order()
        return {k: v[order].cpu().numpy() for k, v in self.pool.items()}

    def restore(self, arrays: dict[str, np.ndarray] | None) -> None:
        """Put back a pool saved by :meth:`arrays`."""
        if self.pool is None:
            return
        b = self.pool["ids"].shape[0]
        self.pool_n = self.pool_pos = 0
        if not arrays:
            return
        m = min(b, len(arrays["ids"]))
        for k, v in self.pool.items():
            if k not in arrays:  # a checkpoint from before strategies were mixed: all strategy 0
                v.zero_()
                continue
            v[:m] = torch.from_numpy(np.asarray(arrays[k])[-m:] if m else np.asarray(arrays[k])[:0]).to(v)
        self.pool_n, self.pool_pos = m, m % b

    def refill(self, step: int) -> None:
        """The population died out: place ``initial_agents`` agents again, from the pool of
        recently dead genomes (``reseed``; newest first) or random genomes (``inject``, or a
        reseed with an empty pool). They are announced as births whose first parent is the agent
        the genome came from (-1 for random genomes)."""
        sim = self.sim
        cfg, st, g, dev = sim.config, sim.world, sim.generator, sim.device
        n, w = cfg.world.initial_agents, cfg.world
        if self.pool is not None and self.pool_n > 0:
            order = self.order().flip(0)
            rows = order[torch.arange(n, device=dev) % self.pool_n]
            genomes = self.pool["genomes"][rows].clone()
            parent = self.pool["ids"][rows].clone()
            species = self.pool["species"][rows].clone()
            generation = self.pool["generation"][rows] + 1
            strategy = self.pool["strategy"][rows].clone()
            how = "extinction-reseed"
        else:
            genomes = init_genomes(sim.layout, n, cfg.brain, cfg.mutation.sigma_init, g, dev)
            k = min(w.initial_species, n)
            founders = torch.randn(k, cfg.brain.tag_dim, generator=g, device=dev)
            first = sim.new_species(founders, torch.full((k,), -1, dtype=torch.int64, device=dev), step)
            species = first[torch.arange(n, device=dev) % k]
            tags = sim.layout.view(genomes, "compatibility.tag")
            tags.copy_(founders[torch.arange(n, device=dev) % k]
                       + 0.05 * torch.randn(tags.shape, generator=g, device=dev))
            parent = torch.full((n,), -1, dtype=torch.int64, device=dev)
            generation = torch.zeros(n, dtype=torch.int64, device=dev)
            strategy = None
            how = "extinction-inject"
        sl = slice(0, n)
        ids = torch.arange(st.next_id, st.next_id + n, device=dev)
        st.alive[sl] = True
        st.ids[sl] = ids
        st.pos[sl, 0] = torch.rand(n, generator=g, device=dev) * w.width
        st.pos[sl, 1] = torch.rand(n, generator=g, device=dev) * w.height
        st.heading[sl] = torch.rand(n, generator=g, device=dev) * (2 * math.pi)
        st.energy[sl] = cfg.agent.initial_energy
        st.lifetime_energy[sl] = 0.0
        st.age[sl] = (torch.rand(n, generator=g, device=dev) * (cfg.agent.max_age // 2)).long()
        st.species[sl] = species
        st.genomes[sl] = genomes
        st.parents[sl, 0] = parent
        st.parents[sl, 1] = -1
        st.generation[sl] = generation
        st.children[sl] = 0
        st.ready[sl] = False
        st.last_action[sl] = 0.0
        st.hw, st.next_id = n, st.next_id + n
        sim.genomes_changed(torch.arange(n, device=dev))
        if len(sim.arrays):  # as newborns of the agents their genomes came from: reset rows
            for name in sim.arrays.names("slot"):
                sim.arrays[name][sl] = sim.arrays.specs[name].fill
        if strategy is not None:
            st.strategy[sl] = strategy
        else:
            sim._assign_strategies(sl, n)
        sim.recount_species()
        sim.totals["extinctions"] += 1
        sim.totals["reseeded"] += n
        births = Births(step, ids.cpu().numpy(), np.arange(n), st.parents[sl].cpu().numpy(),
                        species.cpu().numpy(), how, parent_slots=np.full((n, 2), -1, dtype=np.int64))
        sim.last_births = births
        sim.hooks.agents_born(sim, births)
