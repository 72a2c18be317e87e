"""Vectorised operations on a first-parent forest stored as a parent-index array.

Node ``i``'s parent is ``parent[i]`` (``-1`` for a root). Nothing here loops over nodes in Python:
depths come from pointer jumping (Wyllie 1979, "The complexity of parallel computations", PhD
thesis, Cornell; O(log depth) numpy passes) and subtree sums are accumulated one depth level at a
time (a loop over levels, not nodes).
"""

from __future__ import annotations

import numpy as np


def depths(parent: np.ndarray) -> np.ndarray:
    """Edges from each node to its root."""
    anc = parent.astype(np.int64).copy()
    dist = (anc >= 0).astype(np.int64)
    active = np.flatnonzero(anc >= 0)
    while active.size:
        a = anc[active]
        up = anc[a]
        dist[active] += np.where(a >= 0, dist[a], 0)
        anc[active] = up
        active = active[up >= 0]
    return dist


def roots_of(parent: np.ndarray) -> np.ndarray:
    """The root of each node's tree (pointer jumping)."""
    root = np.where(parent >= 0, parent, np.arange(parent.size))
    while True:
        nxt = root[root]
        if np.array_equal(nxt, root):
            return root
        root = nxt


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
