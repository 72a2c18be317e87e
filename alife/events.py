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
