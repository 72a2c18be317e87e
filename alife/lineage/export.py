"""Export lineage files to the ALife standard phylogeny format and to newick.

ALife data standards, phylogeny (Lalejini, Dolson, Vostinar & Zaman 2019, "Data standards for
artificial life software", ALIFE 2019, pp. 507-514; https://alife-data-standards.github.io):
columns ``id``, ``ancestor_list`` (``[none]`` for a root, ``[3]`` or ``[3,7]``, no spaces),
``origin_time``, ``destruction_time`` (``inf`` for the living), and ``ancestor_id`` when every row
has exactly one parent (a root names itself). Newick: Felsenstein's format
(https://phylipweb.github.io/phylip/newicktree.html), branch lengths in steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from alife.errors import UserError
from alife.lineage import tree
from alife.lineage.reader import LineageFile


def _lists(p1: np.ndarray, p2: np.ndarray) -> np.ndarray:
    a = np.where(p1 < 0, "none", p1.astype(str))
    both = np.char.add(np.char.add(a, ","), p2.astype(str))
    return np.char.add(np.char.add("[", np.where(p2 >= 0, both, a)), "]")


def agents_table(lin: LineageFile, living_only: bool = False, first_parent: bool = False) -> Any:
    """Agent-level ALife standard phylogeny as a DataFrame (``living_only``: the living and their
    ancestors through either parent; ``first_parent``: drop the mates, keeping the tree of the
    parents that reproduced, which tools limited to one parent per taxon can load)."""
    import pandas as pd

    keep = np.ones(lin.ids.size, dtype=bool)
    if living_only:
        keep = np.zeros(lin.ids.size, dtype=bool)
        frontier = np.flatnonzero(lin.living_mask)
        while frontier.size:
            frontier = frontier[~keep[frontier]]
            keep[frontier] = True
            up = lin.rows((lin.parent_ids[frontier, :1] if first_parent else lin.parent_ids[frontier]).ravel())
            frontier = np.unique(up[up >= 0])
    p = lin.parent_ids[keep].copy()
    if first_parent:
        p[:, 1] = -1
    ids = lin.ids[keep]
    death = lin.death_step[keep].astype(np.float64)
    death[lin.living_mask[keep]] = np.inf
    df = pd.DataFrame({"id": ids, "ancestor_list": _lists(p[:, 0], p[:, 1]),
                       "origin_time": lin.birth_step[keep], "destruction_time": death})
    if (p[:, 1] < 0).all():
        df["ancestor_id"] = np.where(p[:, 0] < 0, ids, p[:, 0])
    return df


def species_table(lin: LineageFile, living_only: bool = False) -> Any:
    """Species-level ALife standard phylogeny (one parent each, so with ``ancestor_id``)."""
    import pandas as pd

    sid = lin.data["species/id"]
    parent = lin.data["species/parent"]
    ext = np.full(sid.size, np.inf)
    ext[lin.data["extinctions/species"]] = lin.data["extinctions/step"]
    keep = np.ones(sid.size, dtype=bool)
    if living_only:
        keep = tree.ancestors_mask(parent, sid[np.isinf(ext)])
    none = np.full(sid.size, -1)
    return pd.DataFrame({"id": sid, "ancestor_list": _lists(parent, none),
                         "origin_time": lin.data["species/origin_step"], "destruction_time": ext,
                         "ancestor_id": np.where(parent < 0, sid, parent)})[keep].reset_index(drop=True)


def write_alife_csv(lin: LineageFile, out: str | Path, level: str = "agent", living_only: bool = False,
                    first_parent: bool = False) -> int:
    """Write the ALife standard CSV; returns the number of taxa."""
    df = species_table(lin, living_only) if level == "species" else agents_table(lin, living_only, first_parent)
    df.to_csv(out, index=False)
    return len(df)


def newick(ids: np.ndarray, parent_ids: np.ndarray, times: np.ndarray) -> str:
    """A newick string of a forest (``parent_ids`` -1 for roots; several roots hang from an unnamed
    root at the earliest time). Labels are the ids; branch lengths are time differences.

    Built without recursion (phylogenies are deeper than Python's stack): nodes are emitted in a
    depth-first order computed with an explicit stack over one array of children lists.
    """
    n = ids.size
    order = np.argsort(ids)
    pos = np.searchsorted(ids[order], parent_ids)
    pos = np.minimum(pos, max(n - 1, 0))
    prow = np.where((parent_ids >= 0) & (ids[order][pos] == parent_ids), order[pos], -1)
    kids, start = tree.children_index(prow)
    roots = np.flatnonzero(prow < 0)
    t0 = float(times.min()) if n else 0.0
    label = ids.astype(str)
    length = np.where(prow >= 0, times - times[np.maximum(prow, 0)], times - t0).astype(np.float64)
    out: list[str] = []
    # stack items: (node, state) with state 0 = open, 1 = close
    stack: list[tuple[int, int]] = [(int(r), 0) for r in roots[::-1]]
    multi = roots.size > 1
    if multi:
        out.append("(")
    sep_next = False
    while stack:  # one iteration per node: a tree walk has no vectorised form that stays readable
        node, state = stack.pop()
        if state == 0:
            if sep_next:
                out.append(",")
            ch = kids[start[node]:start[node + 1]]
            if ch.size:
                out.append("(")
                stack.append((node, 1))
                stack.extend((int(c), 0) for c in ch[::-1])
                sep_next = False
            else:
                out.append(f"{label[node]}:{_fmt(length[node])}")
                sep_next = True
        else:
            out.append(f"){label[node]}:{_fmt(length[node])}")
            sep_next = True
    if multi:
        out.append(")")
    return "".join(out) + ";"


def _fmt(x: float) -> str:
    return f"{x:g}"


def write_newick(lin: LineageFile, out: str | Path, level: str = "agent", living_only: bool = False,
                 first_parent: bool = False) -> int:
    """Write newick (asexual trees only at agent level); returns the number of nodes."""
    if level == "species":
        df = species_table(lin, living_only)
        parents = np.where(df["ancestor_id"].to_numpy() == df["id"].to_numpy(), -1, df["ancestor_id"].to_numpy())
        text = newick(df["id"].to_numpy(), parents, df["origin_time"].to_numpy())
        n = len(df)
    else:
        df = agents_table(lin, living_only, first_parent)
        if "ancestor_id" not in df:
            raise UserError(f"{lin.path}: agents with two parents make a network, not a tree; newick "
                            "needs an asexual run (or --first-parent, or --level species)")
        ids = df["id"].to_numpy()
        parents = np.where(df["ancestor_id"].to_numpy() == ids, -1, df["ancestor_id"].to_numpy())
        text = newick(ids, parents, df["origin_time"].to_numpy())
        n = len(df)
    Path(out).write_text(text + "\n")
    return n
