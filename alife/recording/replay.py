"""The replay recorder and reader: ``<run>/replay.h5``, enough to redraw the world.

Layout (schema 1). Root attributes: ``format = "alife-replay"``, ``schema_version``, ``width``,
``height``, ``every`` (steps between frames), ``resource_max``, ``energy_max``, ``action_names``,
``config_toml`` (the world file text), ``world``, ``seed``, ``alife_version``, ``strategy_names``.

* ``frames/step``, ``frames/start``, ``frames/count``: the frame index table. Frame ``i`` is the
  world after ``step[i]`` steps (frame 0 of a new run is the initial population); its agents are
  rows ``start[i] : start[i] + count[i]`` of the ``agents/*`` columns. The table is written last
  for each frame, so it is the commit record: a reader trusts only frames it lists.
* ``frames/resource`` ``[F, H, W]`` uint8: the resource field, ``value / resource_max * 255``.
* ``agents/*``: flat columns of the living agents of every frame, in slot order (each frame's block
  starts on a multiple of ``agent_chunk`` rows; rows between blocks are padding): ``id`` int64,
  ``x``/``y`` uint16 (``pos / size * 65536``), ``heading`` uint8 (``heading / 2pi * 256``),
  ``energy`` float16, ``age`` int32, ``species`` int32, ``action`` int8 ``[N, 5]`` (``a * 127``),
  ``strategy`` uint8 (the variation strategy, an index into the ``strategy_names`` attribute, a
  JSON list). Files written before ``strategy`` lack the column and the attribute: they read as
  all zero, named after the world's reproduction strategy (no schema change; old readers ignore
  both).

The writer runs in SWMR mode and flushes after every frame, so a killed run leaves a file readable
up to its last frame (open it with :func:`open_replay`, which falls back to a SWMR read).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import alife
from alife.errors import FileFormatError, UserError

FORMAT = "alife-replay"
SCHEMA_VERSION = 1
TWO_PI = 2.0 * math.pi
#: (name, dtype, per-row shape) of the agent columns
COLUMNS: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("id", "i8", ()), ("x", "u2", ()), ("y", "u2", ()), ("heading", "u1", ()),
    ("energy", "f2", ()), ("age", "i4", ()), ("species", "i4", ()), ("action", "i1", (5,)),
    ("strategy", "u1", ()))
#: columns a file written before them may lack; a reader takes them as all zero
OPTIONAL_COLUMNS = ("strategy",)
#: rows per chunk of the agent columns. Each frame's rows start on a chunk boundary and the tail
#: of its last chunk is zero padding (a few bytes once compressed): every chunk is written once,
#: whole. In SWMR mode HDF5 never reuses freed space, so re-writing a growing compressed chunk at
#: every flush would leak a copy of it each time.
AGENT_CHUNK = 2048


@dataclass
class Frame:
    """One frame: the living agents (numpy arrays, one row each) and the resource field."""

    step: int
    ids: np.ndarray        # [N] int64
    pos: np.ndarray        # [N, 2] float32, cell units
    heading: np.ndarray    # [N] float32, radians
    energy: np.ndarray     # [N] float32
    age: np.ndarray        # [N] int64
    species: np.ndarray    # [N] int64
    action: np.ndarray     # [N, 5] float32 in [-1, 1]
    resource: np.ndarray   # [H, W] float32
    #: [N] int64: the variation strategy each agent's lineage carries, an index into
    #: ``strategy_names`` (``None`` given: all 0)
    strategy: np.ndarray = field(default=None)  # type: ignore[assignment]
    strategy_names: tuple[str, ...] = ("unknown",)

    def __post_init__(self) -> None:
        if self.strategy is None:
            self.strategy = np.zeros(len(self.ids), np.int64)

    def __len__(self) -> int:
        return len(self.ids)


def frame_from_sim(sim: Any) -> Frame:
    """The live simulation's current state as a :class:`Frame` (one device-to-host copy per array)."""
    st = sim.world
    slots = st.alive[: st.hw].nonzero().squeeze(1)

    def take(t: Any) -> np.ndarray:
        return t[slots].cpu().numpy()

    strategy = getattr(st, "strategy", None)  # per-slot strategy index (worlds mixing strategies)
    codes = take(strategy).astype(np.int64) if strategy is not None else np.zeros(len(slots), np.int64)
    return Frame(int(st.step), take(st.ids), take(st.pos), take(st.heading), take(st.energy),
                 take(st.age), take(st.species), take(st.last_action), st.resource.cpu().numpy().copy(),
                 codes, sim_strategy_names(sim))


def sim_strategy_names(sim: Any) -> tuple[str, ...]:
    """The names ``world.strategy`` indexes: ``sim.strategy_names``, or, in a simulation without
    them, its one reproduction strategy."""
    names = getattr(sim, "strategy_names", None)
    if names:
        return tuple(str(n) for n in names)
    chosen = getattr(getattr(sim, "hooks", None), "chosen", None) or {}
    return (str(chosen.get("reproduction", "unknown")),)


# ------------------------------------------------------------------------------------ writing
def _quantise(frame: Frame, width: int, height: int, rmax: float) -> dict[str, np.ndarray]:
    size = np.array([width, height], dtype=np.float64)
    q = np.rint(frame.pos.astype(np.float64) / size * 65536.0).astype(np.int64) % 65536
    hd = np.rint(np.mod(frame.heading.astype(np.float64), TWO_PI) / TWO_PI * 256.0).astype(np.int64) % 256
    return {
        "id": frame.ids.astype(np.int64), "x": q[:, 0].astype(np.uint16), "y": q[:, 1].astype(np.uint16),
        "heading": hd.astype(np.uint8), "energy": frame.energy.astype(np.float16),
        "age": np.clip(frame.age, 0, 2**31 - 1).astype(np.int32), "species": frame.species.astype(np.int32),
        "action": np.rint(np.clip(frame.action, -1.0, 1.0) * 127.0).astype(np.int8),
        "strategy": np.clip(frame.strategy, 0, 255).astype(np.uint8),
        "resource": np.rint(np.clip(frame.resource / rmax, 0.0, 1.0) * 255.0).astype(np.uint8)}


class ReplayRecorder:
    """Writes ``replay.h5`` every ``every`` steps. A plugin: register it with the simulation.

    Frames are buffered and written together (an HDF5 append costs about the same for one frame
    as for thirty): when ``buffer_frames`` are waiting, when ``flush_seconds`` have passed since
    the last write (so a reader following the file stays close behind), before every checkpoint
    (``commit``, called by ``alife run``) and at the end. A run killed between two writes loses
    at most the buffered frames, which a resume from the last checkpoint records again.

    Args:
        path: the file to write.
        every: steps between frames (frame 0 is the initial population).
        compression: gzip level (1-9).
        buffer_frames: frames held before a write (1: write each frame at once).
        flush_seconds: the longest a frame waits in the buffer.
    """

    def __init__(self, path: str | Path, every: int = 1, compression: int = 4,
                 buffer_frames: int = 32, flush_seconds: float = 2.0):
        if every < 1:
            raise UserError(f"replay: every must be >= 1, got {every}")
        if buffer_frames < 1:
            raise UserError(f"replay: buffer_frames must be >= 1, got {buffer_frames}")
        self.path = Path(path)
        self.every = int(every)
        self.compression = int(compression)
        self.buffer_frames = int(buffer_frames)
        self.flush_seconds = float(flush_seconds)
        self.file: h5py.File | None = None
        self._pending_first = False
        self._buffer: list[tuple[int, int, dict[str, np.ndarray]]] = []
        self._last_write = time.monotonic()

    # -- hooks
    @alife.hookimpl
    def alife_sim_start(self, sim: Any) -> None:
        cfg = sim.config
        self._wh = (cfg.world.width, cfg.world.height)
        self._rmax = float(cfg.resource.max)
        self._names = sim_strategy_names(sim)
        resume = getattr(sim, "resume_step", None)
        if resume == 0 and not self.path.exists():
            resume = None  # a run killed before its replay file existed restarts from step 0: a new file
        if resume is None:
            self._create(sim)
            self.write(frame_from_sim(sim))
            self.flush()  # the file holds a frame from the start
        else:
            self._open_for_append(int(resume))
            # the world may be restored after sim_start; record the resume frame before the first step
            self._pending_first = True

    @alife.hookimpl
    def alife_step_start(self, sim: Any, step: int) -> None:
        if self._pending_first:
            self._pending_first = False
            if step % self.every == 0:
                self.write(frame_from_sim(sim))

    @alife.hookimpl
    def alife_step_end(self, sim: Any, step: int) -> None:
        if (step + 1) % self.every == 0:
            self.write(frame_from_sim(sim))

    @alife.hookimpl
    def alife_sim_end(self, sim: Any) -> None:
        if self._pending_first:
            self.alife_step_start(sim, sim.world.step)
        self.close()

    # -- file
    def _create(self, sim: Any) -> None:
        cfg = sim.config
        w, h = self._wh
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = h5py.File(self.path, "w", libver="latest")
        a = f.attrs
        a.update({"format": FORMAT, "schema_version": SCHEMA_VERSION, "width": w, "height": h,
                  "every": self.every, "resource_max": self._rmax, "agent_chunk": AGENT_CHUNK,
                  "energy_max": float(cfg.agent.max_energy), "world": cfg.name, "seed": int(sim.seed),
                  "config_toml": cfg.text or "", "alife_version": alife.__version__,
                  "action_names": np.array(["turn", "speed", "eat", "attack", "mate"], dtype="S8"),
                  "strategy_names": json.dumps(list(self._names))})
        gz = {"compression": "gzip", "compression_opts": self.compression, "shuffle": True}
        fr = f.create_group("frames")
        for name in ("step", "start", "count"):
            fr.create_dataset(name, shape=(0,), maxshape=(None,), dtype="i8", chunks=(1024,))
        fr.create_dataset("resource", shape=(0, h, w), maxshape=(None, h, w), dtype="u1",
                          chunks=(1, h, w), **gz)
        ag = f.create_group("agents")
        for name, dt, shape in COLUMNS:
            ag.create_dataset(name, shape=(0, *shape), maxshape=(None, *shape), dtype=dt,
                              chunks=(AGENT_CHUNK, *shape), **gz)
        f.swmr_mode = True
        self.file = f

    def _open_for_append(self, resume_step: int) -> None:
        if not self.path.exists():
            raise FileFormatError(str(self.path), "cannot resume: the replay file is missing")
        try:
            f = h5py.File(self.path, "r+", libver="latest")
        except (OSError, RuntimeError) as e:
            if "already open for write" not in str(e):
                raise FileFormatError(str(self.path), f"cannot resume: not a readable HDF5 file: {e}") from None
            # a killed SWMR writer leaves the file flagged open; rebuild it from a SWMR read
            self._rebuild()
            f = h5py.File(self.path, "r+", libver="latest")
        _check_format(f, self.path)
        self.every = int(f.attrs["every"])
        fr, ag = f["frames"], f["agents"]
        steps = fr["step"][:]
        n = _committed(f)
        keep = int(np.searchsorted(steps[:n], resume_step, side="left"))
        end = int(fr["start"][keep - 1] + fr["count"][keep - 1]) if keep else 0
        rows = -(-end // AGENT_CHUNK) * AGENT_CHUNK
        for name in ("step", "start", "count", "resource"):
            fr[name].resize(keep, axis=0)
        gz = {"compression": "gzip", "compression_opts": self.compression, "shuffle": True}
        for name, dt, shape in COLUMNS:
            if name not in ag:  # a file from before the column: its earlier frames read as zeros
                ag.create_dataset(name, shape=(rows, *shape), maxshape=(None, *shape), dtype=dt,
                                  chunks=(AGENT_CHUNK, *shape), fillvalue=0, **gz)
            ag[name].resize(rows, axis=0)
        f.attrs["strategy_names"] = json.dumps(list(getattr(self, "_names", ("unknown",))))
        f.flush()
        f.swmr_mode = True
        self.file = f

    def _rebuild(self) -> None:
        tmp = self.path.with_suffix(".h5.rebuild")
        with h5py.File(self.path, "r", swmr=True) as src, h5py.File(tmp, "w", libver="latest") as dst:
            n = _committed(src)
            end = int(src["frames/start"][n - 1] + src["frames/count"][n - 1]) if n else 0
            rows = -(-end // AGENT_CHUNK) * AGENT_CHUNK
            dst.attrs.update(dict(src.attrs))
            for group, cut in (("frames", n), ("agents", rows)):
                g = dst.create_group(group)
                for name, d in src[group].items():
                    g.create_dataset(name, data=d[:cut], maxshape=(None, *d.shape[1:]), chunks=d.chunks,
                                     compression=d.compression, compression_opts=d.compression_opts,
                                     shuffle=d.shuffle)
        os.replace(tmp, self.path)

    def write(self, frame: Frame) -> None:
        """Append one frame (buffered; see the class)."""
        if self.file is None:
            raise RuntimeError("replay recorder is not open")
        self._buffer.append((frame.step, len(frame), _quantise(frame, *self._wh, self._rmax)))
        if len(self._buffer) >= self.buffer_frames or time.monotonic() - self._last_write >= self.flush_seconds:
            self.flush()

    def commit(self, step: int) -> None:
        """Put every frame recorded so far on disk (before a checkpoint at ``step + 1``)."""
        self.flush()

    def flush(self) -> None:
        """Write the buffered frames and flush the file."""
        f, frames = self.file, self._buffer
        self._last_write = time.monotonic()
        if f is None or not frames:
            return
        self._buffer = []
        fr, ag = f["frames"], f["agents"]
        start = ag["id"].shape[0]
        rows = [-(-k // AGENT_CHUNK) * AGENT_CHUNK for _, k, _ in frames]
        starts = start + np.concatenate([[0], np.cumsum(rows)[:-1]]).astype(np.int64)
        for name, _, _ in COLUMNS:
            d = ag[name]
            block = np.zeros((sum(rows), *d.shape[1:]), d.dtype)
            for (_, k, q), at in zip(frames, starts - start, strict=True):
                block[at:at + k] = q[name]
            d.resize(start + block.shape[0], axis=0)
            d[start:] = block
        i, m = fr["step"].shape[0], len(frames)
        res = fr["resource"]
        res.resize(i + m, axis=0)
        res[i:] = np.stack([q["resource"] for _, _, q in frames])
        # the index rows go last: they commit the frames
        index = (("start", starts), ("count", [k for _, k, _ in frames]), ("step", [s for s, _, _ in frames]))
        for name, v in index:
            fr[name].resize(i + m, axis=0)
            fr[name][i:] = np.asarray(v, dtype=np.int64)
        f.flush()

    def close(self) -> None:
        if self.file is not None:
            self.flush()
            self.file.close()
            self.file = None


# ------------------------------------------------------------------------------------ reading
def _check_format(f: h5py.File, path: Path | str) -> None:
    if f.attrs.get("format") != FORMAT:
        raise FileFormatError(str(path), "not an alife replay (no format='alife-replay' attribute)")
    v = int(f.attrs.get("schema_version", -1))
    if v > SCHEMA_VERSION:
        raise FileFormatError(str(path), f"replay schema {v} is newer than this alife reads "
                                         f"({SCHEMA_VERSION}); upgrade alife")
    if "frames" not in f or "agents" not in f:
        raise FileFormatError(str(path), "replay is missing its frames/agents groups")


def _committed(f: h5py.File) -> int:
    """Frames whose index row, resource and agent rows are all on disk."""
    fr, ag = f["frames"], f["agents"]
    n = min(fr["step"].shape[0], fr["start"].shape[0], fr["count"].shape[0], fr["resource"].shape[0])
    rows = min(ag[name].shape[0] for name, _, _ in COLUMNS if name in ag or name not in OPTIONAL_COLUMNS)
    if n:
        ends = fr["start"][:n] + fr["count"][:n]
        n = int(np.searchsorted(np.maximum.accumulate(ends), rows, side="right"))
    return n


def _strategy_names(attrs: Any, config_toml: str) -> tuple[str, ...]:
    """The ``strategy_names`` attribute (a JSON list); in a file from before it, the reproduction
    strategy its world file names, else ``("unknown",)``."""
    raw = attrs.get("strategy_names")
    if raw is not None:
        try:
            names = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
        except ValueError:
            names = None
        if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
            return tuple(names)
    try:
        import tomllib

        chosen = tomllib.loads(config_toml).get("strategies", {}).get("reproduction")
    except (ValueError, AttributeError):
        chosen = None
    return (chosen,) if isinstance(chosen, str) and chosen else ("unknown",)


class Replay:
    """A replay file opened for reading; use :func:`open_replay`."""

    def __init__(self, f: h5py.File, path: Path):
        self.file, self.path = f, path
        a = f.attrs
        self.width, self.height = int(a["width"]), int(a["height"])
        self.every = int(a["every"])
        self.resource_max = float(a["resource_max"])
        self.energy_max = float(a.get("energy_max", 1.0))
        self.config_toml = str(a.get("config_toml", ""))
        self.n_frames = _committed(f)
        fr = f["frames"]
        self.steps = fr["step"][: self.n_frames]
        self.starts = fr["start"][: self.n_frames]
        self.counts = fr["count"][: self.n_frames]
        ag = f["agents"]
        self._ag = {name: ag[name] for name, _, _ in COLUMNS if name in ag or name not in OPTIONAL_COLUMNS}
        self._res = fr["resource"]
        self.strategy_names = _strategy_names(a, self.config_toml)

    def __len__(self) -> int:
        return self.n_frames

    def index_of_step(self, step: int) -> int:
        """The last frame recorded at or before ``step`` (0 when ``step`` is before the first)."""
        return max(0, int(np.searchsorted(self.steps, step, side="right")) - 1)

    def frame(self, i: int) -> Frame:
        if not 0 <= i < self.n_frames:
            raise IndexError(f"frame {i} out of range (the replay has {self.n_frames} frames)")
        a, b = int(self.starts[i]), int(self.starts[i] + self.counts[i])
        try:
            c = {name: d[a:b] for name, d in self._ag.items()}
            res = self._res[i]
        except (OSError, RuntimeError, ValueError) as e:
            raise FileFormatError(str(self.path), f"frame {i} cannot be read (truncated?): {e}") from None
        size = np.array([self.width, self.height], dtype=np.float32)
        pos = np.stack([c["x"], c["y"]], axis=1).astype(np.float32) * (size / np.float32(65536.0))
        return Frame(int(self.steps[i]), c["id"], pos,
                     c["heading"].astype(np.float32) * np.float32(TWO_PI / 256.0),
                     c["energy"].astype(np.float32), c["age"].astype(np.int64),
                     c["species"].astype(np.int64), c["action"].astype(np.float32) / 127.0,
                     res.astype(np.float32) * np.float32(self.resource_max / 255.0),
                     c["strategy"].astype(np.int64) if "strategy" in c else np.zeros(b - a, np.int64),
                     self.strategy_names)

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> Replay:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


#: the largest world side a replay may declare (the world file's own limit for width and height)
MAX_SIDE = 1 << 14


def _check_replay(f: h5py.File, size: int) -> None:
    """Check a replay before anything is allocated from it: the world's size, the dataset types,
    shapes and sizes against the frame index and against the bytes the file holds, the frame
    index itself (starts and counts within the agent rows, in order), and no HDF5 feature a file
    of ours never uses. Raises :class:`~alife.lineage.schema.FileProblem`."""
    from alife.lineage.schema import FileProblem, checked_dataset, scalar_attr

    a = f.attrs
    w = scalar_attr(a, "width", int, 1, MAX_SIDE)
    h = scalar_attr(a, "height", int, 1, MAX_SIDE)
    scalar_attr(a, "every", int, 1)
    if scalar_attr(a, "resource_max", float) <= 0:
        raise FileProblem("attribute 'resource_max' must be above 0")
    if "energy_max" in a:
        scalar_attr(a, "energy_max", float)
    index = {name: checked_dataset(f, f"frames/{name}", "i8", (), 0, size) for name in ("step", "start", "count")}
    res = checked_dataset(f, "frames/resource", "u1", (h, w), 0, size)
    optional = OPTIONAL_COLUMNS
    agents = {name: checked_dataset(f, f"agents/{name}", dt, shape, 0, size)
              for name, dt, shape in COLUMNS if name not in optional or name in f["agents"]}
    n = min(d.shape[0] for d in (*index.values(), res))
    for name in ("step", "start", "count"):
        checked_dataset(f, f"frames/{name}", "i8", (), n, size)
    checked_dataset(f, "frames/resource", "u1", (h, w), n, size)
    steps, starts, counts = (index[k][:n] for k in ("step", "start", "count"))
    rows = min(d.shape[0] for name, d in agents.items() if name not in optional)
    ends = starts + counts
    k = int(np.searchsorted(np.maximum.accumulate(ends), rows, side="right")) if n else 0
    steps, starts, counts, ends = steps[:k], starts[:k], counts[:k], ends[:k]
    if k and (starts.min() < 0 or counts.min() < 0):
        raise FileProblem("the frame index holds a negative start or count")
    if k and (steps.min() < 0 or np.any(np.diff(steps) < 0)):
        raise FileProblem("the frame index's steps are negative or out of order")
    if k > 1 and np.any(starts[1:] < ends[:-1]):
        raise FileProblem("the frame index's agent rows overlap or are out of order")
    last = int(ends[-1]) if k else 0
    for name, dt, shape in COLUMNS:
        if name in agents and name not in optional:
            checked_dataset(f, f"agents/{name}", dt, shape, last, size)


def open_replay(path: str | Path) -> Replay:
    """Open ``replay.h5`` (or a run folder holding one) for reading.

    Opens without HDF5 file locking (a reader never blocks the run writing the file) and checks
    the file (:func:`_check_replay`) before reading any frame.

    Raises:
        FileFormatError: the file is missing, not a regular file, not HDF5, truncated, foreign,
            of a newer schema, or declares what it cannot hold.
    """
    from alife.lineage.schema import FileProblem, open_for_reading, regular_file_problem

    p = Path(path)
    if p.is_dir():
        p = p / "replay.h5"
    problem = regular_file_problem(p)
    if problem:
        raise FileFormatError(str(p), problem)
    size = p.stat().st_size
    try:
        # only a file flagged open by a SWMR writer (running, or killed) gets a SWMR read: on a
        # truncated file HDF5's SWMR read retries a bad read for minutes instead of failing
        f = open_for_reading(p)
    except (OSError, RuntimeError, ValueError) as e:
        raise FileFormatError(str(p), f"not a readable HDF5 file (truncated or foreign): {e}") from None
    try:
        _check_format(f, p)
        _check_replay(f, size)
        replay = Replay(f, p)
    except FileProblem as e:
        f.close()
        raise FileFormatError(str(p), str(e)) from None
    except (KeyError, OSError, RuntimeError, ValueError, TypeError, IndexError) as e:
        f.close()
        raise FileFormatError(str(p), f"damaged replay: {e}") from None
    except FileFormatError:
        f.close()
        raise
    if replay.n_frames == 0:
        f.close()
        raise FileFormatError(str(p), "the replay holds no frames")
    try:  # a truncated file often opens; its last frame does not read
        replay.frame(0)
        replay.frame(replay.n_frames - 1)
    except FileFormatError:
        f.close()
        raise
    return replay


# ------------------------------------------------------------------------------------ alife run
#: compressed bytes a frame takes per living agent and per resource cell (measured: 14.7 and
#: 0.61 in the first 200 steps of a 5,000-agent meadow, about 0.16 per cell in a settled one; the
#: reported 20,000-agent world took 404 KB a frame; gzip 4; docs/viewer.md)
BYTES_PER_AGENT = 15.0
BYTES_PER_CELL = 0.25
#: the default cadence records every 2 steps up to this many agents, and 2 more steps per as many
#: agents again beyond (20,000 agents: every 8 steps)
AGENTS_PER_EVERY_2 = 5000
#: ``alife run`` says the expected size of a replay bigger than this, before the run starts
NOTICE_BYTES = 1 << 30


def default_every(cfg: Any) -> int:
    """The cadence when neither ``--replay-every`` nor ``[plugin.replay] every`` gives one:
    2 steps, and 2 more per ``AGENTS_PER_EVERY_2`` initial agents beyond the first (10,000 agents:
    4; 20,000: 8), which keeps a big world's replay near 60 MB per 1,000 steps."""
    return 2 * max(1, math.ceil(cfg.world.initial_agents / AGENTS_PER_EVERY_2))


def estimate_bytes(cfg: Any, every: int, steps: int, agents: int | None = None) -> int:
    """The expected size of a replay of ``steps`` steps at one frame every ``every`` steps, for
    ``agents`` living agents (default: the world's ``initial_agents``)."""
    n = cfg.world.initial_agents if agents is None else agents
    frames = 1 + steps // max(1, every)
    return int(frames * (BYTES_PER_AGENT * n + BYTES_PER_CELL * cfg.world.width * cfg.world.height))


def notice_replay_size(sim: Any, recorders: list[Any], steps: int) -> None:
    """``alife run``: one line on stderr when the run's replay is expected above ``NOTICE_BYTES``."""
    for r in recorders:
        if isinstance(r, ReplayRecorder):
            agents = max(sim.config.world.initial_agents, sim.population)
            size = estimate_bytes(sim.config, r.every, steps, agents)
            if size > NOTICE_BYTES:
                print(f"alife: replay.h5 will take about {size / 1e9:.1f} GB ({steps:,} steps, a frame every "
                      f"{r.every} steps, ~{agents:,} agents); --replay-every N to thin it, "
                      "--no-record replay to turn it off", file=sys.stderr)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--replay-every", type=int, default=None, metavar="N",
                        help="record a replay frame every N steps (default: [plugin.replay] every, else 2, "
                             f"and 2 more per {AGENTS_PER_EVERY_2:,} initial agents beyond the first "
                             f"{AGENTS_PER_EVERY_2:,}: every 8 steps at 20,000)")


def recorder_for_run(run_dir: Path, args: argparse.Namespace, cfg: Any) -> ReplayRecorder:
    every = getattr(args, "replay_every", None)
    if every is None:
        every = int(cfg.plugin.get("replay", {}).get("every", default_every(cfg)))
    return ReplayRecorder(Path(run_dir) / "replay.h5", every=every)


#: the name ``alife run --no-record`` and ``alife plugins`` know this recorder by
ALIFE_RECORDER = "replay"


@alife.hookimpl
def alife_add_run_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)


@alife.hookimpl
def alife_make_recorders(run_dir: Path, args: argparse.Namespace, config: Any) -> list[ReplayRecorder]:
    """A replay draws an ecology world: a generational run (``config.task``) gets none."""
    return [] if config.task is not None else [recorder_for_run(run_dir, args, config)]
