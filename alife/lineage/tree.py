"""Vectorised operations on a first-parent forest stored as a parent-index array.

Node ``i``'s parent is ``parent[i]`` (``-1`` for a root). Nothing here loops over nodes in Python:
depths come from pointer jumping (Wyllie 1979, "The complexity of parallel computations", PhD
thesis, Cornell; O(log depth) numpy passes) and subtree sums are accumulated one depth level at a
time (a loop over levels, not nodes).

Every walk is bounded: pointer jumping needs at most ``log2(n) + 1`` passes on a forest of ``n``
nodes, and a parent array with a cycle (an agent its own ancestor, possible only in a damaged or
doctored file) raises :class:`CycleError` naming the nodes on cycles instead of looping forever.
"""

from __future__ import annotations

import numpy as np


class CycleError(ValueError):
    """The parent array has a cycle; ``rows`` are the nodes on cycles."""

    def __init__(self, rows: np.ndarray):
        self.rows = np.asarray(rows, dtype=np.int64)
        shown = ", ".join(map(str, self.rows[:10])) + (" ..." if self.rows.size > 10 else "")
        super().__init__(f"the parent links have a cycle through nodes {shown}")


def _max_passes(n: int) -> int:
    """Pointer-jumping passes that reach the root of any forest of ``n`` nodes (2^k >= n)."""
    return int(n).bit_length() + 1


def cycle_nodes(parent: np.ndarray) -> np.ndarray:
    """Nodes on a cycle of the parent links (sorted; empty for a forest), by pointer jumping.

    A sentinel node ``n`` stands for "above a root" and points to itself. After ``k`` passes with
    ``2^k >= n`` every node has jumped ``2^k`` links: a node whose walk ends at a root sits on the
    sentinel, any other on a cycle; and since a jump of ``2^k`` links maps each cycle onto itself,
    the nodes the walks end on are exactly the nodes on cycles.
    """
    n = parent.size
    up = np.append(np.where(parent >= 0, parent, n), n).astype(np.int64)
    up[np.flatnonzero(up[:n] > n)] = n
    for _ in range(_max_passes(n)):
        up = up[up]
    end = up[:n]
    return np.unique(end[end < n])


def depths(parent: np.ndarray) -> np.ndarray:
    """Edges from each node to its root. Raises :class:`CycleError` on a cycle."""
    anc = parent.astype(np.int64).copy()
    dist = (anc >= 0).astype(np.int64)
    active = np.flatnonzero(anc >= 0)
    for _ in range(_max_passes(parent.size)):
        if not active.size:
            return dist
        a = anc[active]
        up = anc[a]
        dist[active] += np.where(a >= 0, dist[a], 0)
        anc[active] = up
        active = active[up >= 0]
    if active.size:
        raise CycleError(cycle_nodes(parent))
    return dist


def roots_of(parent: np.ndarray) -> np.ndarray:
    """The root of each node's tree (pointer jumping). Raises :class:`CycleError` on a cycle."""
    root = np.where(parent >= 0, parent, np.arange(parent.size))
    for _ in range(_max_passes(parent.size) + 1):
        nxt = root[root]
        if np.array_equal(nxt, root):
            break
        root = nxt
    # a fixed point of the jumps is a root only if it has no parent (a cycle can be one too)
    if root.size and (parent[root] >= 0).any():
        raise CycleError(cycle_nodes(parent))
    return root


def subtree_sums(parent: np.ndarray, values: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
    """Sum of ``values`` over each node's subtree (the node included)."""
    depth = depths(parent) if depth is None else depth
    out = values.astype(np.float64).copy()
    order = np.argsort(-depth, kind="stable")
    bounds = np.flatnonzero(np.diff(depth[order])) + 1
    for level in np.split(order, bounds):
        p = parent[level]
        keep = p >= 0
        if keep.any():
            np.add.at(out, p[keep], out[level[keep]])
    return out


def ancestors_mask(parent: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """True for every node on the path from any of ``nodes`` to its root (``nodes`` included)."""
    mask = np.zeros(parent.size, dtype=bool)
    frontier = np.unique(nodes)
    while frontier.size:
        frontier = frontier[~mask[frontier]]
        mask[frontier] = True
        frontier = np.unique(parent[frontier])
        frontier = frontier[frontier >= 0]
    return mask


def children_index(parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR children lists: node ``i``'s children are ``kids[start[i]:start[i + 1]]``."""
    has = np.flatnonzero(parent >= 0)
    kids = has[np.argsort(parent[has], kind="stable")]
    start = np.searchsorted(parent[kids], np.arange(parent.size + 1))
    return kids, start
