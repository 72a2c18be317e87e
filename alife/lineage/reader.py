"""Reading lineage files: every committed record as numpy arrays and pandas tables.

The reader opens the file in SWMR read mode (so it works on a file a writer still has open, or one
whose writer was killed), takes the last commit whose checksum matches, and reads every dataset up
to the row count that commit names. Ancestry runs on the first-parent forest: ``parents[:, 0]`` is
the parent that reproduced (it paid for the child); the second parent, when there is one, is the
mate. Agent ids grow with birth order, so a parent's row always precedes its child's.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from alife.errors import FileFormatError
from alife.lineage import schema, tree
from alife.lineage.schema import FORMAT, OBSERVABLES, SCHEMA_VERSION

_JSON_ATTRS = ("versions", "plugins", "strategies", "genome_layout", "causes", "resumes")


def read_committed(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray], int]:
    """``(raw attributes, {dataset path: committed rows}, last committed step)``.

    Raises :class:`~alife.errors.FileFormatError` for a missing, non-HDF5, truncated, foreign or
    newer-schema file.
    """
    p = Path(path)
    if not p.exists():
        raise FileFormatError(str(p), "no such file")
    if p.is_dir():
        raise FileFormatError(str(p), "is a folder, not a lineage file")
    if not h5py.is_hdf5(p):
        raise FileFormatError(str(p), "not a lineage file (not an HDF5 file)")
    eof, size = _stored_eof(p), p.stat().st_size
    if eof is not None and size < eof:
        # checked here because HDF5's SWMR read mode skips this check and then retries reads
        # past the end of the file for a long time
        raise FileFormatError(str(p), f"truncated file ({size} bytes; its superblock says {eof})")
    try:
        f = h5py.File(p, "r")
    except OSError as e:
        if "already open" not in str(e) and "lock" not in str(e):
            raise FileFormatError(str(p), f"truncated or corrupt HDF5 file ({_reason(e)})") from None
        try:  # a writer has it open (or was killed): SWMR read mode reads it as of its last flush
            f = h5py.File(p, "r", swmr=True)
        except OSError as e2:
            raise FileFormatError(str(p), f"truncated or corrupt HDF5 file ({_reason(e2)})") from None
    try:
        with f:
            attrs = dict(f.attrs)
            if attrs.get("format") != FORMAT:
                raise FileFormatError(str(p), f"not a lineage file (no 'format = {FORMAT}' attribute)")
            version = int(attrs.get("schema_version", -1))
            if version > SCHEMA_VERSION:
                raise FileFormatError(str(p), f"lineage schema {version} is newer than this alife reads "
                                              f"({SCHEMA_VERSION}); upgrade alife")
            if version < 1 or schema.COMMITS not in f:
                raise FileFormatError(str(p), f"lineage schema {version} is not supported")
            cols = schema.columns(int(attrs["genome_size"]))
            commits = f[schema.COMMITS]
            names = json.loads(commits.attrs["columns"])
            if names[1:-1] != [c.path for c in cols]:
                raise FileFormatError(str(p), "the commit table does not match the schema's datasets")
            row = schema.last_commit(commits[...])
            if row is None:
                raise FileFormatError(str(p), "no valid commit (the file is corrupt)")
            data = {}
            for c, n in zip(cols, row[1:-1], strict=True):
                d = f[c.path]
                if d.shape[0] < n:
                    raise FileFormatError(str(p), f"{c.path} holds {d.shape[0]} rows but the commit names {n}")
                data[c.path] = d[:n]
            return attrs, data, int(row[0])
    except FileFormatError:
        raise
    except (OSError, KeyError, ValueError) as e:
        raise FileFormatError(str(p), f"truncated or corrupt lineage file ({_reason(e)})") from None


def _stored_eof(p: Path) -> int | None:
    """The end-of-file address in an HDF5 superblock of version 2 or 3 (what ``libver="latest"``
    writes): after the 8-byte signature, version, two sizes, flags, base address and superblock
    extension address (HDF5 File Format Specification 3.0, section II.A). ``None`` otherwise.

    A file written in SWMR mode keeps the address of its last non-SWMR flush, so a file cut
    below it is certainly truncated; a killed SWMR writer leaves a file longer than it."""
    with p.open("rb") as fh:
        head = fh.read(48)
    if len(head) < 36 or head[:8] != b"\x89HDF\r\n\x1a\n" or head[8] not in (2, 3) or head[9] != 8:
        return None
    return int.from_bytes(head[28:36], "little")


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The concatenation of ``arange(lo[i], hi[i])`` for every i, without a Python loop."""
    lens = hi - lo
    if lens.sum() == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(lo - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
    return offsets + np.arange(int(lens.sum()))


def _reason(e: BaseException) -> str:
    return str(e).split("(", 1)[0].strip() or type(e).__name__


class LineageFile:
    """Every committed record of a lineage file, in memory. Open with :func:`alife.lineage.open`.

    Attributes:
        path: the file.
        attrs: run metadata (world text, seed, versions, plugins, genome layout, ...).
        last_step: the last step the file's last commit covers.
        data: the raw committed columns, by dataset path.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        raw, self.data, self.last_step = read_committed(self.path)
        self.attrs = {k: (json.loads(v) if k in _JSON_ATTRS else v) for k, v in raw.items()}
        ids = self.data["births/id"]
        if ids.size and np.any(np.diff(ids) <= 0):
            raise FileFormatError(str(self.path), "births are not in increasing id order")
        self.ids = ids
        self.birth_step = self.data["births/step"]
        self.parent_ids = self.data["births/parents"]
        self.species_of = self.data["births/species"]
        # death step per birth row; the living (as of the last commit) have none
        self.death_step = np.full(ids.size, -1, dtype=np.int64)
        drow = self.rows(self.data["deaths/id"])
        ok = drow >= 0
        self.death_step[drow[ok]] = self.data["deaths/step"][ok]
        self.living_mask = self.death_step < 0
        p1 = self.rows(self.parent_ids[:, 0]) if ids.size else np.zeros(0, np.int64)
        #: row of each birth's first parent, -1 for a root (or a parent missing from the file)
        self.parent = p1

    # ------------------------------------------------------------------ ids and rows
    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Births-table row of each id, ``-1`` where an id is not in the file."""
        ids = np.asarray(ids, dtype=np.int64)
        r = np.searchsorted(self.ids, ids)
        r = np.minimum(r, max(self.ids.size - 1, 0))
        found = (self.ids.size > 0) & (self.ids[r] == ids) & (ids >= 0) if self.ids.size else np.zeros(ids.shape, bool)
        return np.where(found, r, -1)

    def row(self, agent_id: int) -> int:
        r = int(self.rows(np.array([agent_id]))[0])
        if r < 0:
            raise KeyError(f"agent {agent_id} is not in {self.path}")
        return r

    @property
    def living(self) -> np.ndarray:
        """Ids of the agents alive at the last commit."""
        return self.ids[self.living_mask]

    @property
    def strategy_names(self) -> list[str]:
        return [s.decode() for s in self.data["strategy_names"]]

    # ------------------------------------------------------------------ pandas views
    @cached_property
    def births(self) -> Any:
        """One row per agent ever: id, parent1, parent2, step, species, strategy, digest,
        death_step (``<NA>`` while alive)."""
        import pandas as pd

        names = self.strategy_names
        death = pd.Series(self.death_step, dtype="Int64")
        death[self.living_mask] = pd.NA
        return pd.DataFrame({
            "id": self.ids, "parent1": self.parent_ids[:, 0], "parent2": self.parent_ids[:, 1],
            "step": self.birth_step, "species": self.species_of,
            "strategy": pd.Categorical.from_codes(self.data["births/strategy"].astype(np.int64),
                                                  categories=names) if names else [],
            "digest": self.data["births/digest"],
            "death_step": death,
        })

    @cached_property
    def deaths(self) -> Any:
        """One row per death: id, step, cause, offspring, lifetime_energy."""
        import pandas as pd

        causes = self.attrs.get("causes", [])
        return pd.DataFrame({
            "id": self.data["deaths/id"], "step": self.data["deaths/step"],
            "cause": pd.Categorical.from_codes(self.data["deaths/cause"].astype(np.int64), categories=causes),
            "offspring": self.data["deaths/offspring"],
            "lifetime_energy": self.data["deaths/lifetime_energy"],
        })

    @cached_property
    def species(self) -> Any:
        """One row per species: id, parent (-1 for founders), origin_step, extinction_step
        (``<NA>`` while extant)."""
        import pandas as pd

        sid = self.data["species/id"]
        ext = np.full(sid.size, -1, dtype=np.int64)
        ext[self.data["extinctions/species"]] = self.data["extinctions/step"]
        extinction = pd.Series(ext, dtype="Int64")
        extinction[ext < 0] = pd.NA
        return pd.DataFrame({
            "id": sid, "parent": self.data["species/parent"], "origin_step": self.data["species/origin_step"],
            "extinction_step": extinction,
        })

    @cached_property
    def series(self) -> Any:
        """Observables indexed by step: population, mean_energy, species_count, diversity."""
        import pandas as pd

        cols = {name: pd.Series(self.data[f"observables/{name}/value"],
                                index=self.data[f"observables/{name}/step"]) for name in OBSERVABLES}
        df = pd.DataFrame(cols)
        df.index.name = "step"
        return df

    def genomes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ids, steps, vectors [n, G])`` of the genomes recorded at the run's cadence; the
        layout is ``attrs["genome_layout"]`` (``alife.genome.Layout.from_table``)."""
        return self.data["genomes/id"], self.data["genomes/step"], self.data["genomes/vector"]

    # ------------------------------------------------------------------ ancestry
    def ancestry(self, agent_id: int, all_parents: bool = False) -> Any:
        """The line of descent of ``agent_id`` back to its root (first parents), newest first;
        with ``all_parents`` every ancestor through either parent, by id."""
        r = self.row(agent_id)
        if all_parents:
            mask = np.zeros(self.ids.size, dtype=bool)
            frontier = np.array([r])
            while frontier.size:
                frontier = frontier[~mask[frontier]]
                mask[frontier] = True
                frontier = np.unique(self.rows(self.parent_ids[frontier].ravel()))
                frontier = frontier[frontier >= 0]
            return self.births.iloc[np.flatnonzero(mask)]
        path = [r]
        while self.parent[path[-1]] >= 0:  # one iteration per generation of this one agent
            path.append(int(self.parent[path[-1]]))
        return self.births.iloc[path]

    def reaches_root(self, agent_ids: np.ndarray) -> np.ndarray:
        """True for each agent whose first-parent line ends at a root (a birth with no parents),
        False where it ends at a parent id missing from the file."""
        r = self.rows(agent_ids)
        root = tree.roots_of(self.parent)
        top = root[np.maximum(r, 0)]
        return (r >= 0) & (self.parent_ids[top, 0] < 0)

    def check(self) -> dict[str, bool]:
        """Integrity of the records: ids unique, every parent id (either parent) present, deaths
        of known agents once each and not before birth, every living agent's line reaching a root."""
        dead = self.rows(self.data["deaths/id"])
        par = self.parent_ids[self.parent_ids >= 0]
        return {
            "ids unique": bool(np.unique(self.ids).size == self.ids.size),
            "every parent in the file": bool(self.rows(par).min(initial=0) >= 0),
            "deaths of known agents, once each": bool(dead.min(initial=0) >= 0
                                                      and np.unique(dead).size == dead.size),
            "no death before birth": bool(np.all(self.data["deaths/step"] >= self.birth_step[np.maximum(dead, 0)])),
            "every living line reaches a root": bool(self.reaches_root(self.living).all()),
        }

    def descendants(self, agent_id: int) -> np.ndarray:
        """Ids of every descendant of ``agent_id`` through either parent (not the agent itself)."""
        r = self.row(agent_id)
        p = np.concatenate([self.rows(self.parent_ids[:, 0]), self.rows(self.parent_ids[:, 1])])
        child = np.concatenate([np.arange(self.ids.size)] * 2)
        order = np.argsort(p, kind="stable")
        p, child = p[order], child[order]
        seen = np.zeros(self.ids.size, dtype=bool)
        frontier = np.array([r])
        while frontier.size:
            lo, hi = np.searchsorted(p, frontier), np.searchsorted(p, frontier, side="right")
            kids = child[_ranges(lo, hi)]
            kids = np.unique(kids)
            frontier = kids[~seen[kids]]
            seen[frontier] = True
        return self.ids[seen]

    @cached_property
    def _living_counts(self) -> tuple[np.ndarray, np.ndarray]:
        depth = tree.depths(self.parent)
        return tree.subtree_sums(self.parent, self.living_mask.astype(np.float64), depth), depth

    def mrca(self) -> dict[str, int] | None:
        """The most recent common ancestor (first-parent line) of the living: its id, birth step,
        depth in generations from its root, and the mean generations from it to the living.
        ``None`` when the living descend from different roots or none live."""
        counts, depth = self._living_counts
        n = int(self.living_mask.sum())
        if n == 0:
            return None
        full = np.flatnonzero(counts == n)
        if full.size == 0:
            return None
        r = int(full[np.argmax(depth[full])])
        return {"id": int(self.ids[r]), "step": int(self.birth_step[r]), "depth": int(depth[r]),
                "generations_to_living": float(depth[self.living_mask].mean() - depth[r])}

    def line_of_descent(self) -> Any:
        """The line of descent of the most abundant living lineage, root first.

        The lineage is the root (initial agent) with the most living first-parent descendants;
        from it the line follows, at every branching, the child with the most living descendants
        (ties to the older child), down to a living agent.
        """
        counts, _ = self._living_counts
        if not self.living_mask.any():
            return self.births.iloc[[]]
        roots = np.flatnonzero(self.parent < 0)
        path = [int(roots[np.argmax(counts[roots])])]
        kids, start = tree.children_index(self.parent)
        while True:  # one iteration per generation along one line
            ch = kids[start[path[-1]]:start[path[-1] + 1]]
            ch = ch[counts[ch] > 0]
            if ch.size == 0:
                break
            path.append(int(ch[np.argmax(counts[ch])]))
        return self.births.iloc[path]

    def species_over_time(self, every: int | None = None) -> Any:
        """Abundance of each species at grid steps: a DataFrame, rows = steps, columns = species."""
        import pandas as pd

        grid, ab = self.abundance(every)
        return pd.DataFrame(ab.T, index=pd.Index(grid, name="step"),
                            columns=pd.Index(np.arange(ab.shape[0]), name="species"))

    def abundance(self, every: int | None = None, key: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(grid steps, counts [groups, steps])``: agents alive after each grid step, grouped by
        ``key`` per birth row (default: species)."""
        last = max(self.last_step, 0)
        every = every or max(1, (last + 1) // 400)
        grid = np.arange(0, last + 1, every, dtype=np.int64)
        if grid[-1] != last:
            grid = np.append(grid, last)
        key = self.species_of if key is None else key
        g = int(key.max()) + 1 if key.size else 0
        g = max(g, len(self.data["species/id"])) if key is self.species_of else g
        t = grid.size
        start = np.searchsorted(grid, self.birth_step, side="left")
        stop = np.where(self.living_mask, t, np.searchsorted(grid, self.death_step, side="left"))
        delta = np.zeros((g, t + 1), dtype=np.int64)
        np.add.at(delta, (key, start), 1)
        np.add.at(delta, (key, stop), -1)
        return grid, np.cumsum(delta, axis=1)[:, :t]


def open_lineage(path: str | Path) -> LineageFile:
    """Open a lineage file (see :class:`LineageFile`)."""
    return LineageFile(path)
