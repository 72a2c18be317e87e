"""The world's state: fixed-capacity slot arrays with an alive mask. No object per agent.

Slots are reused; ids never are. ``hw`` (the high-water mark) is one past the highest slot ever
used since the last compaction; per-step work runs over ``[0, hw)`` with the alive mask, and births
fill the lowest free slots, so ``hw`` stays close to the population.
"""

from __future__ import annotations

import numpy as np
import torch

#: per-slot arrays, saved in checkpoints and returned by ``Simulation.state()``
SLOT_FIELDS = ("alive", "ids", "pos", "heading", "energy", "age", "species", "parents",
               "generation", "children", "ready", "last_action", "lifetime_energy", "genomes", "strategy")


_VIEWED = SLOT_FIELDS + ("resource",)


class _Views:
    def __init__(self, arrays: dict[str, np.ndarray]):
        self.__dict__.update(arrays)


class WorldState:
    """All mutable arrays of one world, on one device."""

    def __setattr__(self, name: str, value: object) -> None:
        if name in _VIEWED:  # an array was replaced: the numpy views of the old one are stale
            self.__dict__["_views"] = None
        object.__setattr__(self, name, value)

    @property
    def np(self) -> _Views:
        """numpy views of the slot arrays and the resource field (CPU only; they share memory
        with the tensors). Made once, remade after an array is replaced; numba kernels take
        these, since a torch slice plus ``.numpy()`` costs microseconds each."""
        v = self.__dict__.get("_views")
        if v is None:
            v = _Views({name: getattr(self, name).numpy() for name in _VIEWED})
            self.__dict__["_views"] = v
        return v

    def __init__(self, capacity: int, genome_size: int, n_actions: int, width: int, height: int,
                 tag_dim: int, device: torch.device):
        c, d = capacity, device
        self.capacity = capacity
        self.device = device
        self.alive = torch.zeros(c, dtype=torch.bool, device=d)
        self.ids = torch.full((c,), -1, dtype=torch.int64, device=d)
        self.pos = torch.zeros(c, 2, dtype=torch.float32, device=d)
        self.heading = torch.zeros(c, dtype=torch.float32, device=d)
        self.energy = torch.zeros(c, dtype=torch.float32, device=d)
        self.age = torch.zeros(c, dtype=torch.int64, device=d)
        self.species = torch.full((c,), -1, dtype=torch.int64, device=d)
        self.parents = torch.full((c, 2), -1, dtype=torch.int64, device=d)
        self.generation = torch.zeros(c, dtype=torch.int64, device=d)
        self.children = torch.zeros(c, dtype=torch.int64, device=d)
        self.ready = torch.zeros(c, dtype=torch.bool, device=d)
        self.last_action = torch.zeros(c, n_actions, dtype=torch.float32, device=d)
        # energy gained over the agent's life (food and prey), for lineage records
        self.lifetime_energy = torch.zeros(c, dtype=torch.float32, device=d)
        self.genomes = torch.zeros(c, genome_size, dtype=torch.float32, device=d)
        # the variation strategy each agent's lineage carries: an index into
        # ``Simulation.strategy_names`` (all 0 unless the world has a [mixture])
        self.strategy = torch.zeros(c, dtype=torch.int16, device=d)
        self.resource = torch.zeros(height, width, dtype=torch.float32, device=d)
        # species table: founder tags, parent species, origin step (grows; one row per species)
        self.species_founder = torch.zeros(0, tag_dim, dtype=torch.float32, device=d)
        self.species_parent = torch.zeros(0, dtype=torch.int64, device=d)
        self.species_origin = torch.zeros(0, dtype=torch.int64, device=d)
        self.hw = 0
        self.next_id = 0
        self.step = 0

    @property
    def population(self) -> int:
        if self.alive.is_cpu:  # numpy: a torch sum would wake torch's thread pool every step
            return int(np.count_nonzero(self.np.alive))
        return int(self.alive.sum())

    def free_slots(self, k: int) -> torch.Tensor:
        """The lowest ``<= k`` free slots (fewer when capacity runs out)."""
        return (~self.alive).nonzero().squeeze(1)[:k]

    def alive_slots(self) -> torch.Tensor:
        return self.alive[: self.hw].nonzero().squeeze(1)

    def shrink_hw(self) -> None:
        if self.hw and not bool(self.alive[self.hw - 1]):
            nz = self.alive[: self.hw].nonzero()
            self.hw = int(nz[-1]) + 1 if nz.numel() else 0

    def add_species(self, founders: torch.Tensor, parents: torch.Tensor, step: int) -> torch.Tensor:
        """Append species rows; returns their ids."""
        first = self.species_founder.shape[0]
        self.species_founder = torch.cat([self.species_founder, founders])
        self.species_parent = torch.cat([self.species_parent, parents])
        self.species_origin = torch.cat([self.species_origin,
                                         torch.full_like(parents, step)])
        return torch.arange(first, first + founders.shape[0], device=self.device)

    def to_numpy(self, only_alive: bool = True) -> dict[str, np.ndarray]:
        """A dict of numpy arrays: the living agents (by slot order) and the resource field."""
        sl = self.alive_slots() if only_alive else slice(None)
        out = {name: getattr(self, name)[sl].cpu().numpy().copy() for name in SLOT_FIELDS}
        if only_alive:
            out.pop("alive")
            out["slots"] = self.alive_slots().cpu().numpy()
        out["resource"] = self.resource.cpu().numpy().copy()
        out["step"] = np.int64(self.step)
        out["next_id"] = np.int64(self.next_id)
        return out
