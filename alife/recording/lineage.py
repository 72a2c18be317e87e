"""The lineage writer: every birth, death and species, genomes and observables, to ``lineage.h5``.

A recording plugin on the same events a user's plugin sees. Records are buffered as numpy arrays
(one array per step and column, never one object per agent) and appended at each commit, every
``commit_every`` steps: every column dataset is extended and flushed, then one row is added to the
commit table and flushed. The file is in HDF5 SWMR mode, so a reader (or a writer killed at any
moment) sees a consistent file; readers read each dataset only up to the row count of the last
commit whose checksum matches. The format is documented in ``docs/lineage.md``.

Initial agents are recorded as roots: births with parents ``(-1, -1)`` at step ``-1``
(:data:`alife.lineage.schema.ROOT_STEP`) and strategy ``"initial"``.

Resume contract: when ``sim.resume_step`` is an int at ``alife_sim_start``, the existing file is
rolled back to its records with ``step < resume_step`` (written to a temporary file, then renamed
over the old one, so a crash during the rollback loses nothing) and appended to.

Compaction: HDF5 does not reuse freed file space while a file is in SWMR write mode, and every
commit rewrites the last, partly filled compressed chunk of each column, so the file grows by the
abandoned chunk versions. Whenever the file has grown to twice its size after the last compaction
(and at the end of the run) the writer copies the committed datasets, chunk for chunk, into a new
file and renames it over the old one (``compact``): the file on disk stays within about twice its
live data during a run and ends tight. A kill during compaction leaves the old file intact.
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

import alife
from alife.errors import UserError
from alife.events import CAUSES, Births, Deaths
from alife.lineage import schema
from alife.lineage.schema import INITIAL_STRATEGY, OBSERVABLES, ROOT_STEP

FILENAME = "lineage.h5"
#: rows of living genomes the diversity observable looks at (a deterministic stride sample)
DIVERSITY_SAMPLE = 1024
#: the file is never compacted below this size (compaction of a small file gains little);
#: ``ALIFE_LINEAGE_COMPACT_MIN_BYTES`` sets it (the kill tests use a small value to land kills
#: inside compactions)
COMPACT_MIN_BYTES = int(os.environ.get("ALIFE_LINEAGE_COMPACT_MIN_BYTES", 4 << 20))


def parse_genome_cadence(spec: str) -> tuple[str, int]:
    """``none``, ``births`` (every birth), ``births:N`` (every birth whose id is a multiple of N),
    ``survivors:K`` (the living every K steps, at the start and at the end)."""
    kind, _, n = spec.partition(":")
    if kind == "none" and not n:
        return "none", 0
    if kind in ("births", "survivors"):
        try:
            every = int(n) if n else 1
        except ValueError:
            every = 0
        if every >= 1:
            return kind, every
    raise UserError(f"--lineage-genomes: expected none, births, births:N or survivors:K, got {spec!r}")


class LineageRecorder:
    """Writes ``lineage.h5``. Register it as a plugin: ``Simulation(plugins=[LineageRecorder(p)])``.

    Args:
        path: the file to write.
        commit_every: steps between commits (the most a SIGKILL can lose).
        genomes: genome cadence, see :func:`parse_genome_cadence`.
        series_every: steps between samples of the observables.
    """

    def __init__(self, path: str | Path, commit_every: int = 100, genomes: str = "survivors:10000",
                 series_every: int = 10):
        if commit_every < 1 or series_every < 1:
            raise UserError("lineage commit and series intervals must be >= 1")
        self.path = Path(path)
        self.commit_every = int(commit_every)
        self.genome_mode, self.genome_every = parse_genome_cadence(genomes)
        self.genome_spec = genomes
        self.series_every = int(series_every)
        self._f: h5py.File | None = None
        self._buf: dict[str, list[np.ndarray]] = {}
        self._cols: list[schema.Column] = []
        self._strategies: list[str] = []
        #: plugin series name -> code (``plugin_series/key``)
        self._series: dict[str, int] = {}
        self._plugin_series = False
        self._species_seen = 0
        self._extinct = np.zeros(0, dtype=bool)
        self._last_step = ROOT_STEP - 1
        self._counts = np.zeros(0, dtype=np.int64)
        #: file size after the last compaction; the next one comes at twice this (at least 4 MiB)
        self._compact_size = 0
        self.compactions = 0

    # ------------------------------------------------------------------ hooks
    @alife.hookimpl
    def alife_sim_start(self, sim: Any) -> None:
        self._plugin_series = sim.hooks.has_impls("alife_series")
        if sim.resume_step is None or (sim.resume_step == 0 and not self.path.exists()):
            self._create(sim)  # (a run killed before its lineage file existed restarts from step 0)
        else:
            self._resume(sim, int(sim.resume_step))

    @alife.hookimpl
    def alife_agents_born(self, sim: Any, births: Births) -> None:
        if self._f is None or len(births) == 0:
            return
        slots = torch.from_numpy(births.slots).to(sim.device)
        genomes = sim.world.genomes[slots].cpu().numpy()
        if births.strategies is not None:  # a [mixture]: each row's lineage strategy
            table = np.array([self._strategy_code(n) for n in births.strategy_names], dtype=np.uint8)
            code: Any = table[births.strategies]
        else:
            code = self._strategy_code(births.strategy)
        self._add_births(births.ids, births.parent_ids, births.step, births.species, code, genomes)

    @alife.hookimpl
    def alife_agents_died(self, sim: Any, deaths: Deaths) -> None:
        if self._f is None or len(deaths) == 0:
            return
        slots = torch.from_numpy(deaths.slots).to(sim.device)
        k = len(deaths)
        self._put("deaths/id", deaths.ids)
        self._put("deaths/step", np.full(k, deaths.step, dtype=np.int64))
        self._put("deaths/cause", deaths.causes.astype(np.uint8))
        self._put("deaths/offspring", sim.world.children[slots].cpu().numpy())
        self._put("deaths/lifetime_energy", sim.world.lifetime_energy[slots].cpu().numpy())

    @alife.hookimpl
    def alife_step_end(self, sim: Any, step: int) -> None:
        if self._f is None:
            return
        self._species(sim, step)
        if step % self.series_every == 0:
            self._observe(sim, step)
        if self.genome_mode == "survivors" and (step + 1) % self.genome_every == 0:
            self._snapshot(sim, step)
        self._last_step = step
        if (step + 1) % self.commit_every == 0:
            self.commit(step)

    @alife.hookimpl
    def alife_sim_end(self, sim: Any) -> None:
        if self._f is None:
            return
        last = sim.world.step - 1
        if self.genome_mode == "survivors" and (last + 1) % self.genome_every != 0:
            self._snapshot(sim, last)
        self.commit(max(last, self._last_step))
        if self.path.stat().st_size > self._compact_size:  # unless the last commit just compacted
            self.compact()
        self._f.close()
        self._f = None

    # ------------------------------------------------------------------ opening
    def _attrs(self, sim: Any) -> dict[str, Any]:
        from alife.provenance import versions

        return {
            "world_text": getattr(sim.config, "text", "") or "",
            "world_name": sim.config.name,
            "seed": int(sim.seed),
            "versions": versions(),
            "plugins": [{"name": p.name, "origin": p.origin, "active": p.active, "hooks": p.hooks}
                        for p in sim.hooks.plugins()],
            "strategies": dict(sim.hooks.chosen),
            "genome_layout": sim.layout.to_table(),
            "causes": list(CAUSES),
            "commit_every": self.commit_every,
            "genome_cadence": self.genome_spec,
            "series_every": self.series_every,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "resumes": [],
        }

    def _create(self, sim: Any) -> None:
        if self.path.exists():
            raise UserError(f"{self.path}: a lineage file already exists; resume the run or pick another folder")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        size = sim.layout.size
        self._cols = schema.columns(size)
        self._buf = {c.path: [] for c in self._cols}
        # the roots go into the file before it gets its name: a lineage.h5 always holds them
        self._strategy_code(INITIAL_STRATEGY)
        st = sim.world
        slots = st.alive_slots()
        ids = st.ids[slots].cpu().numpy()
        parents = np.full((ids.size, 2), -1, dtype=np.int64)
        code: Any = 0
        if getattr(sim, "mixed_role", None):  # a [mixture]: the roots carry their lineage's strategy
            table = np.array([self._strategy_code(n) for n in sim.strategy_names], dtype=np.uint8)
            code = table[st.strategy[slots].long().cpu().numpy()]
        self._add_births(ids, parents, ROOT_STEP, st.species[slots].cpu().numpy(), code,
                         st.genomes[slots].cpu().numpy())
        self._species(sim, ROOT_STEP)
        if self.genome_mode == "survivors":
            self._snapshot(sim, ROOT_STEP)
        data = {path: np.concatenate(parts) for path, parts in self._buf.items() if parts}
        schema.write_file(self._tmp, self._attrs(sim), size, data, ROOT_STEP)
        self._install_tmp()

    @property
    def _tmp(self) -> Path:
        """Where a new version of the file is built before it is renamed over the old one."""
        return self.path.with_name(self.path.name + ".tmp")

    def _install_tmp(self) -> None:
        """Open the finished ``lineage.h5.tmp`` for appending, then rename it over the file.

        In that order: between opening a file for writing and switching it to SWMR mode, HDF5
        marks it "open for write", a state no reader can open (SWMR readers need "open for SWMR
        writing"). A kill in that moment must hit the temporary file, never ``lineage.h5``."""
        self._open_swmr(self._tmp)
        os.replace(self._tmp, self.path)
        self._compact_size = self.path.stat().st_size

    def _open_swmr(self, path: Path) -> None:
        # without HDF5 file locking: a reader holding the file (an `alife lineage` in a loop, the
        # viewer, h5py with its default locks) must never make the run fail; readers are safe
        # without the lock (SWMR, and a compacted copy only ever replaces the file by rename)
        self._f = h5py.File(path, "r+", libver="latest", locking=False)
        self._f.swmr_mode = True
        self._cols = schema.columns(int(self._f.attrs["genome_size"]))
        self._buf = {c.path: [] for c in self._cols}

    def _resume(self, sim: Any, resume_step: int) -> None:
        from alife.lineage.reader import read_committed

        attrs, data, last = read_committed(self.path)
        if int(attrs["genome_size"]) != sim.layout.size:
            raise UserError(f"{self.path}: genome size {attrs['genome_size']} differs from this run's {sim.layout.size}")
        keep = {}
        for c in schema.columns(int(attrs["genome_size"])):
            if c.step_col is None:
                keep[c.path] = data[c.path]
            else:
                keep[c.path] = data[c.path][: int(np.searchsorted(data[c.step_col], resume_step))]
        if last < resume_step - 1:
            warnings.warn(f"{self.path}: its last commit covers step {last} but the run resumes at "
                          f"step {resume_step}; records of steps {last + 1}..{resume_step - 1} are lost",
                          stacklevel=2)
        out_attrs = {k: (json.loads(v) if k in ("versions", "plugins", "strategies", "genome_layout",
                                                 "causes", "resumes") else v)
                     for k, v in attrs.items() if k not in ("format", "schema_version", "root_step", "genome_size")}
        out_attrs["resumes"] = [*out_attrs.get("resumes", []), {"step": resume_step, "last_commit": int(last)}]
        schema.write_file(self._tmp, out_attrs, int(attrs["genome_size"]), keep, resume_step - 1)
        self._install_tmp()
        self._strategies = [s.decode() for s in keep["strategy_names"]]
        self._series = {s.decode(): i for i, s in enumerate(keep["plugin_series_names"])}
        self._species_seen = len(keep["species/id"])
        self._extinct = np.zeros(self._species_seen, dtype=bool)
        self._extinct[keep["extinctions/species"]] = True
        self._last_step = resume_step - 1

    # ------------------------------------------------------------------ buffering
    def _put(self, path: str, arr: np.ndarray) -> None:
        self._buf[path].append(arr)

    def _strategy_code(self, name: str) -> int:
        if name not in self._strategies:
            if len(self._strategies) >= 255:
                raise UserError("lineage: more than 255 reproduction strategy names in one file")
            self._strategies.append(name)
            self._put("strategy_names", np.array([name.encode()[:64]], dtype="S64"))
        return self._strategies.index(name)

    def _add_births(self, ids: np.ndarray, parents: np.ndarray, step: int, species: np.ndarray,
                    code: int | np.ndarray, genomes: np.ndarray) -> None:
        k = len(ids)
        self._put("births/id", np.asarray(ids, dtype=np.int64))
        self._put("births/parents", np.asarray(parents, dtype=np.int64).reshape(k, 2))
        self._put("births/step", np.full(k, step, dtype=np.int64))
        self._put("births/species", np.asarray(species, dtype=np.int64))
        self._put("births/strategy", np.broadcast_to(np.asarray(code, dtype=np.uint8), (k,)).copy())
        self._put("births/digest", schema.genome_digest(genomes))
        if self.genome_mode == "births":
            pick = np.asarray(ids) % self.genome_every == 0
            if pick.any():
                self._put("genomes/id", np.asarray(ids, dtype=np.int64)[pick])
                self._put("genomes/step", np.full(int(pick.sum()), step, dtype=np.int64))
                self._put("genomes/vector", np.asarray(genomes, dtype=np.float32)[pick])

    def _species(self, sim: Any, step: int) -> None:
        st = sim.world
        n_sp = int(st.species_origin.shape[0])
        if n_sp > self._species_seen:
            new = slice(self._species_seen, n_sp)
            self._put("species/id", np.arange(self._species_seen, n_sp, dtype=np.int64))
            self._put("species/parent", st.species_parent[new].cpu().numpy().astype(np.int64))
            origin = st.species_origin[new].cpu().numpy().astype(np.int64)
            self._put("species/origin_step", origin)
            self._extinct = np.concatenate([self._extinct, np.zeros(n_sp - self._species_seen, dtype=bool)])
            self._species_seen = n_sp
        hw = st.hw
        living = st.species[:hw][st.alive[:hw]]
        counts = torch.bincount(living, minlength=n_sp).cpu().numpy() if living.numel() else np.zeros(n_sp, np.int64)
        gone = np.flatnonzero((counts[:n_sp] == 0) & ~self._extinct[:n_sp])
        if gone.size:
            self._extinct[gone] = True
            self._put("extinctions/species", gone.astype(np.int64))
            self._put("extinctions/step", np.full(gone.size, step, dtype=np.int64))
        self._counts = counts

    def _observe(self, sim: Any, step: int) -> None:
        st = sim.world
        slots = st.alive_slots()
        n = int(slots.numel())
        values = {"population": float(n),
                  "mean_energy": float(st.energy[slots].mean()) if n else float("nan"),
                  "species_count": float(np.count_nonzero(self._counts)),
                  "diversity": float("nan")}
        if n >= 2:
            sample = slots[:: max(1, n // DIVERSITY_SAMPLE)]
            values["diversity"] = float(st.genomes[sample].std(dim=0).mean())
        for name in OBSERVABLES:
            self._put(f"observables/{name}/step", np.array([step], dtype=np.int64))
            self._put(f"observables/{name}/value", np.array([values[name]], dtype=np.float64))
        if self._plugin_series:
            got = sim.hooks.series(sim, step)
            if got:
                keys = np.array([self._series_code(k) for k in got], dtype=np.uint16)
                self._put("plugin_series/step", np.full(keys.size, step, dtype=np.int64))
                self._put("plugin_series/key", keys)
                self._put("plugin_series/value", np.fromiter(got.values(), dtype=np.float64, count=keys.size))

    def _series_code(self, name: str) -> int:
        code = self._series.get(name)
        if code is None:
            if len(self._series) >= schema.MAX_SERIES:
                raise UserError(f"lineage: more than {schema.MAX_SERIES} plugin series names in one file")
            code = self._series[name] = len(self._series)
            self._put("plugin_series_names", np.array([name.encode()[:64]], dtype="S64"))
        return code

    def _snapshot(self, sim: Any, step: int) -> None:
        st = sim.world
        slots = st.alive_slots()
        self._put("genomes/id", st.ids[slots].cpu().numpy())
        self._put("genomes/step", np.full(int(slots.numel()), step, dtype=np.int64))
        self._put("genomes/vector", st.genomes[slots].cpu().numpy().astype(np.float32))

    # ------------------------------------------------------------------ committing
    def commit(self, step: int) -> None:
        """Append every buffered record, flush, then add and flush one commit row."""
        f = self._f
        if f is None:
            return
        for c in self._cols:
            parts = self._buf[c.path]
            if not parts:
                continue
            arr = np.concatenate(parts) if len(parts) > 1 else parts[0]
            d = f[c.path]
            n = d.shape[0]
            d.resize((n + len(arr), *c.tail))
            d[n:] = arr
            d.flush()
            parts.clear()
        schema.append_commit(f, step, self._cols)
        f[schema.COMMITS].flush()
        if self.path.stat().st_size > max(2 * self._compact_size, COMPACT_MIN_BYTES):
            self.compact()

    def compact(self) -> None:
        """Rewrite the file without the space abandoned by earlier commits (see the module notes).

        Call it right after a commit: every dataset then holds exactly its committed rows. The
        datasets are copied with ``H5Ocopy`` (compressed chunks as they are, no decoding) into
        ``lineage.h5.tmp``, which is synced and renamed over the old file.
        """
        if self._f is None:
            return
        self._f.close()
        self._f = None
        with h5py.File(self.path, "r", locking=False) as src, \
                h5py.File(self._tmp, "w", libver="latest", locking=False) as dst:
            for k, v in src.attrs.items():
                dst.attrs[k] = v
            for name in src:
                src.copy(src[name], dst, name=name)
        with open(self._tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        self.compactions += 1
        self._install_tmp()


# ---------------------------------------------------------------------- `alife run` integration
def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("lineage recording (lineage.h5)")
    g.add_argument("--lineage-commit-every", type=int, default=100, metavar="N",
                   help="steps between commits to lineage.h5; a kill loses at most these (default 100)")
    g.add_argument("--lineage-genomes", default="survivors:10000", metavar="MODE",
                   help="genome vectors to keep: none, births, births:N (every Nth id), "
                        "survivors:K (the living every K steps and at the end; default survivors:10000)")
    g.add_argument("--lineage-series-every", type=int, default=10, metavar="N",
                   help="steps between samples of population, mean energy, species count, diversity (default 10)")


def recorder_for_run(run_dir: Path, args: argparse.Namespace, cfg: Any) -> LineageRecorder:
    """The lineage recorder ``alife run`` registers (``--no-record lineage`` turns it off)."""
    return LineageRecorder(Path(run_dir) / FILENAME,
                           commit_every=getattr(args, "lineage_commit_every", 100),
                           genomes=getattr(args, "lineage_genomes", "survivors:10000"),
                           series_every=getattr(args, "lineage_series_every", 10))


#: the name ``alife run --no-record`` and ``alife plugins`` know this recorder by
ALIFE_RECORDER = "lineage"


@alife.hookimpl
def alife_add_run_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)


@alife.hookimpl
def alife_make_recorders(run_dir: Path, args: argparse.Namespace, config: Any) -> list[LineageRecorder]:
    return [recorder_for_run(run_dir, args, config)]
