"""Who an agent is, from the ``lineage.h5`` beside a replay: parents, children, birth and death.

Read defensively: the file is optional, may belong to an older or newer writer, or may still be
being written. Anything unreadable turns the lineage fields off (with a one-line reason) instead
of stopping the viewer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class LineageIndex:
    """Sorted id tables for lookups by agent id (one ``searchsorted`` per click)."""

    def __init__(self, data: dict[str, np.ndarray], path: Path):
        self.path = path
        ids = np.asarray(data["births/id"], np.int64)
        order = np.argsort(ids, kind="stable")
        self.ids = ids[order]
        n = len(ids)
        parents = np.asarray(data.get("births/parents", np.full((n, 2), -1)), np.int64).reshape(n, -1)
        self.parents = parents[order]
        self.born = np.asarray(data.get("births/step", np.full(n, -1)), np.int64)[order]
        flat = parents.reshape(-1)
        kids, counts = np.unique(flat[flat >= 0], return_counts=True)
        self.kid_ids, self.kid_counts = kids, counts
        d_ids = np.asarray(data.get("deaths/id", np.zeros(0)), np.int64)
        d_order = np.argsort(d_ids, kind="stable")
        self.dead_ids = d_ids[d_order]
        self.dead_step = np.asarray(data.get("deaths/step", np.zeros(len(d_ids))), np.int64)[d_order]

    @staticmethod
    def _find(sorted_ids: np.ndarray, agent_id: int) -> int | None:
        i = int(np.searchsorted(sorted_ids, agent_id))
        return i if i < len(sorted_ids) and sorted_ids[i] == agent_id else None

    def info(self, agent_id: int) -> dict[str, Any]:
        """``parents`` (tuple of ids, -1 dropped), ``children`` (count), ``born`` and ``died`` steps
        (``None`` when unknown); empty when the id is not in the file."""
        i = self._find(self.ids, agent_id)
        if i is None:
            return {}
        k = self._find(self.kid_ids, agent_id)
        d = self._find(self.dead_ids, agent_id)
        return {"parents": tuple(int(p) for p in self.parents[i] if p >= 0),
                "children": int(self.kid_counts[k]) if k is not None else 0,
                "born": int(self.born[i]), "died": int(self.dead_step[d]) if d is not None else None}


def _read(path: Path) -> dict[str, np.ndarray]:
    try:  # the lineage package's own reader knows the commit table
        from alife.lineage.reader import read_committed
    except ImportError:
        read_committed = None
    if read_committed is not None:
        _, data, _ = read_committed(path)
        return data
    import h5py

    with h5py.File(path, "r", swmr=True) as f:
        return {name: f[name][...] for name in ("births/id", "births/parents", "births/step",
                                                "deaths/id", "deaths/step") if name in f}


def load_lineage(path: str | Path) -> tuple[LineageIndex | None, str]:
    """``(index or None, a note for the viewer)``; never raises for a bad or missing file."""
    p = Path(path)
    if not p.exists():
        return None, "no lineage.h5 beside the replay"
    try:
        data = _read(p)
        if "births/id" not in data:
            return None, f"{p.name}: no births/id dataset"
        return LineageIndex(data, p), f"lineage: {p.name}"
    except Exception as e:  # noqa: BLE001 -- any failure only turns the lineage fields off
        return None, f"{p.name} unreadable ({type(e).__name__})"
