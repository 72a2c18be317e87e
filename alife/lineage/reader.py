"""Reading lineage files: every committed record as numpy arrays and pandas tables.

The reader opens the file in SWMR read mode (so it works on a file a writer still has open, or one
whose writer was killed), takes the last commit whose checksum matches, and reads every dataset up
to the row count that commit names. Ancestry runs on the first-parent forest: ``parents[:, 0]`` is
the parent that reproduced (it paid for the child); the second parent, when there is one, is the
mate. Agent ids grow with birth order, so a parent's row always precedes its child's.
"""

from __future__ import annotations

import json
import time
from functools import cached_property
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from alife.errors import FileFormatError
from alife.lineage import schema, tree
from alife.lineage.schema import FORMAT, OBSERVABLES, ROOT_STEP, SCHEMA_VERSION

_JSON_ATTRS = ("versions", "plugins", "strategies", "genome_layout", "causes", "resumes")


#: how often a read that failed while the file changed under it (a writer committing, or
#: renaming a compacted copy over it) is tried again
READ_TRIES = 5
#: the largest genome a lineage file may declare (floats; the world file's limits allow ~90,000)
MAX_GENOME_SIZE = 1 << 24


def read_committed(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray], int]:
    """``(raw attributes, {dataset path: committed rows}, last committed step)``.

    Every dataset is checked against the file's own metadata and size before anything is read
    (see :func:`alife.lineage.schema.checked_dataset`) and the records' ids and codes against
    their tables (:func:`check_records`). Opens without HDF5 file locking, so reading never blocks
    the run writing the file; a read that fails while the file changes under it (a commit, or a
    compacted copy renamed over it) is tried again.

    Raises :class:`~alife.errors.FileFormatError` for a missing, non-regular, non-HDF5, truncated,
    foreign, newer-schema or inconsistent file.
    """
    p = Path(path)
    for attempt in range(READ_TRIES):
        before = _signature(p)
        try:
            return _read_once(p)
        except FileFormatError:
            if attempt == READ_TRIES - 1 or before is None or _signature(p) == before:
                raise
        time.sleep(0.02 * (attempt + 1))
    raise AssertionError("unreachable")


def _signature(p: Path) -> tuple[int, int, int] | None:
    try:
        st = p.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _read_once(p: Path) -> tuple[dict[str, Any], dict[str, np.ndarray], int]:
    problem = schema.regular_file_problem(p)
    if problem == "is a folder, not a file":
        problem = "is a folder, not a lineage file"
    if problem:
        raise FileFormatError(str(p), problem)
    if not _looks_hdf5(p):
        raise FileFormatError(str(p), "not a lineage file (not an HDF5 file)")
    eof, size = _stored_eof(p), p.stat().st_size
    if eof is not None and size < eof:
        # checked here because HDF5's SWMR read mode skips this check and then retries reads
        # past the end of the file for a long time
        raise FileFormatError(str(p), f"truncated file ({size} bytes; its superblock says {eof})")
    try:
        f = schema.open_for_reading(p)
    except (OSError, RuntimeError, ValueError) as e:
        raise FileFormatError(str(p), f"truncated or corrupt HDF5 file ({_reason(e)})") from None
    try:
        with f:
            return _read_open(f, p, size)
    except FileFormatError:
        raise
    except schema.FileProblem as e:
        raise FileFormatError(str(p), str(e)) from None
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError) as e:
        raise FileFormatError(str(p), f"truncated or corrupt lineage file ({_reason(e)})") from None


def _read_open(f: h5py.File, p: Path, size: int) -> tuple[dict[str, Any], dict[str, np.ndarray], int]:
    attrs = dict(f.attrs)
    if attrs.get("format") != FORMAT:
        raise FileFormatError(str(p), f"not a lineage file (no 'format = {FORMAT}' attribute)")
    version = schema.scalar_attr(attrs, "schema_version", int)
    if version > SCHEMA_VERSION:
        raise FileFormatError(str(p), f"lineage schema {version} is newer than this alife reads "
                                      f"({SCHEMA_VERSION}); upgrade alife")
    if version < 1 or schema.COMMITS not in f:
        raise FileFormatError(str(p), f"lineage schema {version} is not supported")
    genome_size = schema.scalar_attr(attrs, "genome_size", int, 0, MAX_GENOME_SIZE)
    schema.scalar_attr(attrs, "root_step", int, ROOT_STEP, ROOT_STEP, default=ROOT_STEP)
    parsed = {}
    for k in _JSON_ATTRS:
        if k in attrs:
            attrs[k] = schema.scalar_attr(attrs, k, str)
            try:
                parsed[k] = json.loads(attrs[k])
            except json.JSONDecodeError as e:
                raise schema.FileProblem(f"attribute '{k}' is not valid JSON ({e.msg})") from None
    causes = parsed.get("causes", [])
    if not (isinstance(causes, list) and all(isinstance(c, str) for c in causes)
            and len(set(causes)) == len(causes) and len(causes) <= 256):
        raise schema.FileProblem("attribute 'causes' should be a list of distinct names")
    for k in ("genome_layout", "resumes", "plugins"):
        if k in parsed and not isinstance(parsed[k], list):
            raise schema.FileProblem(f"attribute '{k}' should be a JSON list")
    cols = schema.columns(genome_size, version)
    ncol = len(cols) + 2
    commits = schema.checked_dataset(f, schema.COMMITS, "i8", (ncol,), f[schema.COMMITS].shape[0]
                                     if isinstance(f[schema.COMMITS], h5py.Dataset) else 0, size)
    try:
        names = json.loads(schema.scalar_attr(commits.attrs, "columns", str))
    except json.JSONDecodeError:
        names = None
    if not isinstance(names, list) or names[1:-1] != [c.path for c in cols]:
        raise FileFormatError(str(p), "the commit table does not match the schema's datasets")
    row = schema.last_commit(commits[...])
    if row is None:
        raise FileFormatError(str(p), "no valid commit (the file is corrupt)")
    step, counts = int(row[0]), row[1:-1]
    if step < ROOT_STEP - 1:
        raise schema.FileProblem(f"the last commit names step {step}")
    if (counts < 0).any():
        bad = cols[int(np.flatnonzero(counts < 0)[0])].path
        raise schema.FileProblem(f"the last commit names a negative row count for {bad}")
    by_table: dict[str, tuple[str, int]] = {}
    for c, n in zip(cols, counts, strict=True):
        table = c.path.rsplit("/", 1)[0] if "/" in c.path else c.path
        first = by_table.setdefault(table, (c.path, int(n)))
        if first[1] != n:
            raise schema.FileProblem(f"the last commit names {first[1]} rows of {first[0]} but {n} of {c.path}")
    data = {}
    for c, n in zip(cols, counts, strict=True):
        d = schema.checked_dataset(f, c.path, c.dtype, c.tail, int(n), size)
        data[c.path] = d[: int(n)]
    for c in schema.columns(genome_size)[len(cols):]:  # an older schema: the newer tables, empty
        data[c.path] = np.zeros((0, *c.tail), dtype=c.dtype)
    check_records(data, causes)
    return attrs, data, step


def check_records(data: dict[str, np.ndarray], causes: list[str]) -> None:
    """Every id and code that indexes a table lies within it: births in increasing id order,
    parents ids or -1, strategy codes below the strategy names (which are text and distinct),
    death causes below the ``causes`` attribute, species ids ``0, 1, ...`` with older parent
    species, every species reference within the species table, and each observable sampled at
    increasing steps (one value per step). Raises
    :class:`~alife.lineage.schema.FileProblem`. (Links that are merely inconsistent, such as a
    parent born after its child, are left to :meth:`LineageFile.check`.)"""
    ids = data["births/id"]
    if ids.size and (ids[0] < 0 or np.any(np.diff(ids) <= 0)):
        raise schema.FileProblem("births are not in increasing id order")
    if data["births/parents"].size and data["births/parents"].min() < -1:
        raise schema.FileProblem("births/parents holds an id below -1")
    names = data["strategy_names"]
    try:
        decoded = [s.decode() for s in names]
    except UnicodeDecodeError:
        raise schema.FileProblem("strategy_names holds a name that is not text") from None
    if len(set(decoded)) != len(decoded):
        raise schema.FileProblem("strategy_names holds a name twice")
    _below(data["births/strategy"], len(decoded), "births/strategy", "strategy_names")
    _below(data["deaths/cause"], len(causes), "deaths/cause", "the 'causes' attribute")
    sid = data["species/id"]
    n_sp = sid.size
    if not np.array_equal(sid, np.arange(n_sp)):
        raise schema.FileProblem("species/id is not 0, 1, 2, ... in order")
    sp_parent = data["species/parent"]
    if n_sp and (sp_parent.min() < -1 or np.any(sp_parent >= sid)):
        raise schema.FileProblem("species/parent names a species that is not older (or not in the file)")
    for name in OBSERVABLES:
        if np.any(np.diff(data[f"observables/{name}/step"]) <= 0):
            raise schema.FileProblem(f"observables/{name}/step is not in increasing order")
    series = data["plugin_series_names"]
    try:
        series_names = [s.decode() for s in series]
    except UnicodeDecodeError:
        raise schema.FileProblem("plugin_series_names holds a name that is not text") from None
    if len(set(series_names)) != len(series_names):
        raise schema.FileProblem("plugin_series_names holds a name twice")
    _below(data["plugin_series/key"], len(series_names), "plugin_series/key", "plugin_series_names")
    if np.any(np.diff(data["plugin_series/step"]) < 0):
        raise schema.FileProblem("plugin_series/step is not in increasing order")
    for name in ("births/species", "extinctions/species"):
        v = data[name]
        if v.size and v.min() < 0:
            raise schema.FileProblem(f"{name} holds a negative species id")
        _below(v, n_sp, name, "species/id")


def _below(values: np.ndarray, n: int, name: str, table: str) -> None:
    if values.size and int(values.max()) >= n:
        raise schema.FileProblem(f"{name} holds {int(values.max())}, but {table} has only {n} entries")


def _looks_hdf5(p: Path) -> bool:
    """The HDF5 signature at offset 0 or a user-block boundary (512, 1024, 2048, ...), read with
    plain file reads (``h5py.is_hdf5`` opens the file through HDF5 and its locking)."""
    size = p.stat().st_size
    with p.open("rb") as fh:
        at = 0
        while at + 8 <= size:
            fh.seek(at)
            if fh.read(8) == b"\x89HDF\r\n\x1a\n":
                return True
            at = 512 if at == 0 else at * 2
    return False


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
        ids = self.data["births/id"]  # in increasing order: read_committed checked it
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
        prow = self.rows(self.parent_ids) if ids.size else np.zeros((0, 2), np.int64)
        own = np.arange(ids.size)[:, None]
        #: ``[n, 2]``: True where a parent is this agent itself or born after it. Ids grow with
        #: birth order, so in a sound file every parent's row precedes its child's; such links
        #: (a damaged file, or a plugin that bred from dead slots) can close cycles.
        self.late_parent = (prow >= 0) & (prow >= own)
        #: row of each birth's first parent, -1 for a root (or a parent missing from the file, or
        #: a late one): cut there, the first-parent links always form a forest, so every walk ends
        self.parent = np.where(self.late_parent[:, 0], -1, prow[:, 0])
        #: details of the checks that failed in the last :meth:`check`, by check name
        self.check_notes: dict[str, str] = {}

    # ------------------------------------------------------------------ ids and rows
    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Births-table row of each id, ``-1`` where an id is not in the file."""
        ids = np.asarray(ids, dtype=np.int64)
        n = self.ids.size
        if n and int(self.ids[-1]) - int(self.ids[0]) == n - 1:  # ids without gaps: no search
            r = ids - self.ids[0]
            return np.where((r >= 0) & (r < n), r, -1)
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

    @cached_property
    def plugin_series(self) -> Any:
        """The plugins' series (``alife_series``), one column per ``"<plugin>.<name>"``, indexed
        by step (NaN where a series has no sample at a step). Empty for a file without any."""
        import pandas as pd

        names = [s.decode() for s in self.data["plugin_series_names"]]
        step, key, value = (self.data[f"plugin_series/{k}"] for k in ("step", "key", "value"))
        df = pd.DataFrame({"step": step, "name": pd.Categorical.from_codes(key.astype(np.int64), names)
                           if names else pd.Categorical([]), "value": value})
        out = df.pivot_table(index="step", columns="name", values="value", aggfunc="last", observed=False)
        out = out.reindex(columns=names)
        out.columns.name = None
        return out

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
        """Integrity of the records: ids unique, every parent id (either parent) present and born
        before its child (no agent its own ancestor), deaths of known agents once each and not
        before birth, records within the committed steps, every living agent's line reaching a
        root. What failed is explained in :attr:`check_notes`."""
        dead = self.rows(self.data["deaths/id"])
        par = self.parent_ids[self.parent_ids >= 0]
        dstep = self.data["deaths/step"]
        late = self.late_parent.any(axis=1)
        checks = {
            "ids unique": bool(np.unique(self.ids).size == self.ids.size),
            "every parent in the file": bool(self.rows(par).min(initial=0) >= 0),
            "every parent born before its child": not bool(late.any()),
            "deaths of known agents, once each": bool(dead.min(initial=0) >= 0
                                                      and np.unique(dead).size == dead.size),
            "no death before birth": bool(np.all(dstep >= self.birth_step[np.maximum(dead, 0)])),
            "records within the committed steps": bool(
                self.birth_step.min(initial=ROOT_STEP) >= ROOT_STEP
                and self.birth_step.max(initial=ROOT_STEP) <= self.last_step
                and dstep.min(initial=0) >= 0 and dstep.max(initial=0) <= max(self.last_step, 0)),
            "every living line reaches a root": bool(self.reaches_root(self.living).all()),
        }
        self.check_notes = {}
        if late.any():
            self.check_notes["every parent born before its child"] = self._late_parent_note()
        return checks

    def _late_parent_note(self) -> str:
        """Which agents name themselves or a later agent as parent, and the cycles that closes."""
        def some(ids: np.ndarray) -> str:
            more = f" and {ids.size - 8} more" if ids.size > 8 else ""
            return ", ".join(map(str, ids[:8].tolist())) + more

        parts = []
        own = np.flatnonzero((self.parent_ids == self.ids[:, None]).any(axis=1))
        if own.size:
            parts.append(f"agent{'s' if own.size > 1 else ''} {some(self.ids[own])} "
                         f"{'are their' if own.size > 1 else 'is its'} own parent")
        links = self.rows(self.parent_ids[:, 0])
        cyc = np.setdiff1d(tree.cycle_nodes(np.where(links >= 0, links, -1)), own)
        if cyc.size:
            parts.append(f"agents {some(self.ids[cyc])} are each other's ancestors (a cycle)")
        rest = np.setdiff1d(np.flatnonzero(self.late_parent.any(axis=1)), np.union1d(own, cyc))
        if rest.size:
            parts.append(f"agent{'s' if rest.size > 1 else ''} {some(self.ids[rest])} "
                         f"name{'' if rest.size > 1 else 's'} a parent born after {'them' if rest.size > 1 else 'it'}")
        return "; ".join(parts)

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
