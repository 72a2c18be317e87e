"""Per-step event records handed to plugins: whole-population numpy arrays, never one per agent."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: death causes, by code. Codes are stored in lineage files: only ever append.
CAUSES = ("starved", "old_age", "eaten", "invalid", "removed")
CAUSE_CODE = {name: i for i, name in enumerate(CAUSES)}


@dataclass(frozen=True)
class Births:
    """Agents born in one step."""

    step: int
    ids: np.ndarray          # [k] int64
    slots: np.ndarray        # [k] int64
    parent_ids: np.ndarray   # [k, 2] int64, -1 where there is no second parent
    species: np.ndarray      # [k] int64
    strategy: str            # name of the reproduction strategy that made them
    #: ``[k]`` int16 per-row codes into ``strategy_names`` (the variation strategy each child's
    #: lineage carries; see ``[mixture]``), or ``None`` when one strategy made them all
    strategies: np.ndarray | None = None
    strategy_names: tuple[str, ...] = ()
    #: ``[k, 2]`` int64 slots of the parents at birth (-1 for none: a founder, a refill)
    parent_slots: np.ndarray | None = None

    def strategy_of_rows(self) -> np.ndarray:
        """``[k]`` the strategy name of each row (object array)."""
        if self.strategies is None:
            return np.full(len(self.ids), self.strategy, dtype=object)
        return np.asarray(self.strategy_names, dtype=object)[self.strategies]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Deaths:
    """Agents that died in one step."""

    step: int
    ids: np.ndarray     # [k] int64
    slots: np.ndarray   # [k] int64
    causes: np.ndarray  # [k] uint8, codes into CAUSES

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Fitness:
    """The "tell" (hook ``alife_fitness``): final results of agents or genomes."""

    step: int
    ids: np.ndarray        # [k] int64
    slots: np.ndarray      # [k] int64
    values: np.ndarray     # [k] float64: lifetime energy (world) or mean episode return (task)
    offspring: np.ndarray  # [k] int64
    mode: str              # "world" or "task"

    def __len__(self) -> int:
        return len(self.ids)
