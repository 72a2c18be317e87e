"""Checkpoints: a simulation's whole state as HDF5 arrays plus JSON metadata.

A checkpoint holds every slot array of :class:`alife.world.state.WorldState`, the resource field,
the species table, the counters, the generator state (``torch.Generator.get_state()`` as a uint8
array) and, as one JSON attribute, what is needed to rebuild the simulation around those arrays:
the effective world config, the world text, the genome layout table, the totals, the chosen
strategies, the plugins and the library versions.

Opening a checkpoint runs no code: arrays are read with h5py and metadata with ``json``; there is
no pickle anywhere. A checkpoint is written to a temporary name, flushed to disk with ``fsync`` and
then renamed, so a process killed during a save never leaves a half-written file under a
checkpoint's name. Everything that can be wrong with a file (missing, not HDF5, truncated, foreign,
a newer schema, a layout that does not match) raises :class:`alife.errors.FileFormatError`, which
names the file and the problem.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from alife.errors import FileFormatError, UserError
from alife.world.state import SLOT_FIELDS

if TYPE_CHECKING:
    from alife.simulation import Simulation

FORMAT = "alife-checkpoint"
#: bump when the layout of the file changes; a reader refuses a schema it does not know
SCHEMA = 1
SPECIES_FIELDS = ("species_founder", "species_parent", "species_origin")
#: arrays of the extinction policy's genome pool (see ``Simulation``), when it keeps one
POOL_FIELDS = ("genomes", "ids", "species", "generation", "strategy")
#: arrays a checkpoint of an older alife may lack; they read as zeros (one strategy, index 0)
OPTIONAL_FIELDS = ("strategy",)
CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^step-(\d+)\.h5$")


@dataclass
class Checkpoint:
    """A validated checkpoint, read into memory: metadata and numpy arrays."""

    path: Path
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]
    rng_state: np.ndarray
    pool: dict[str, np.ndarray] | None
    #: plugin arrays (``sim.arrays``) by name
    plugin_arrays: dict[str, np.ndarray] = field(default_factory=dict)
    #: plugin state by plugin name: arrays and JSON values, as ``load_state_dict`` takes them
    plugin_state: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def step(self) -> int:
        return int(self.meta["step"])


# ---------------------------------------------------------------------------------------- saving
def _metadata(sim: Simulation, run: dict[str, Any] | None) -> dict[str, Any]:
    from alife.provenance import versions

    cfg, st = sim.config, sim.world
    return {
        "format": FORMAT,
        "schema": SCHEMA,
        "step": st.step,
        "seed": sim.seed,
        "hw": st.hw,
        "next_id": st.next_id,
        "capacity": st.capacity,
        "genome_size": sim.layout.size,
        "device": str(sim.device),
        "generator_device": sim.generator.device.type,
        "config": _drop_none(cfg.to_dict()),
        "world_text": cfg.text,
        "world_source": cfg.source,
        "world_base_dir": str(Path(cfg.base_dir).resolve()),
        "layout": sim.layout.to_table(),
        "totals": dict(sim.totals),
        "strategies": dict(sim.hooks.chosen),
        "strategy_names": list(sim.strategy_names),
        "plugin_arrays": sim.arrays.describe(),
        "plugin_state": sorted(sim.hooks.stateful()),
        "strategy_series": {"every": sim.strategy_series_every, "rows": sim.strategy_series},
        "plugins": [{"name": p.name, "origin": p.origin, "active": p.active}
                    for p in sim.hooks.plugins()],
        "versions": versions(),
        "identity": identity_of(sim),
        "run": dict(run or {}),
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _drop_none(d: Any) -> Any:
    """A config dict without absent optional tables (``task = None``), which TOML cannot hold."""
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    return d


def save_checkpoint(sim: Simulation, path: str | Path, run: dict[str, Any] | None = None) -> Path:
    """Write ``sim``'s state to ``path`` atomically (temp name, fsync, rename).

    ``run`` is a JSON-able dict the caller wants back on resume (``alife run`` keeps the
    population's min and max so far there). Returns the path written.
    """

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    st = sim.world
    meta = _metadata(sim, run)
    try:
        with _failed_write_quiet():
            _write_file(tmp, sim, st, meta)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


@contextlib.contextmanager
def _failed_write_quiet() -> Any:
    """When a write fails (a full disk), h5py prints the same failure again for every object it
    frees, a screen of tracebacks; the error itself is raised once. Output of a write that works
    is passed on."""
    import gc

    buf, real = io.StringIO(), sys.stderr
    sys.stderr = buf
    try:
        yield
    except BaseException:
        gc.collect()  # free the failed file's objects while their noise is still caught
        sys.stderr = real
        raise
    finally:
        sys.stderr = real
    if buf.getvalue():
        real.write(buf.getvalue())


def _write_file(tmp: Path, sim: Simulation, st: Any, meta: dict[str, Any]) -> None:
    import h5py

    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["schema"] = SCHEMA
        f.attrs["meta"] = json.dumps(meta)
        g = f.create_group("state")
        for name in SLOT_FIELDS + SPECIES_FIELDS + ("resource",):
            g.create_dataset(name, data=getattr(st, name).cpu().numpy(), compression="gzip",
                             compression_opts=1, fletcher32=True)
        # checksummed, so a flipped bit in the generator state is an error, not another run
        f.create_dataset("rng", data=sim.generator.get_state().numpy(), fletcher32=True)
        pa = f.create_group("plugin_arrays")
        for name, arr in sim.arrays.to_numpy().items():
            pa.create_dataset(name, data=arr, fletcher32=True)
        ps = f.create_group("plugin_state")
        for name, plugin in sim.hooks.stateful().items():
            _write_state(ps.create_group(name), name, plugin.state_dict())
        pool = sim.extinction_pool_arrays()
        if pool is not None:
            pg = f.create_group("pool")
            for name in POOL_FIELDS:
                pg.create_dataset(name, data=pool[name], fletcher32=True)


def _write_state(g: Any, plugin: str, state: Any) -> None:
    """One plugin's ``state_dict()``: arrays as datasets, everything else as one JSON attribute."""
    if not isinstance(state, dict):
        raise UserError(f"plugin {plugin!r}: state_dict() returned {type(state).__name__}, expected a dict")
    rest = {}
    for key, value in state.items():
        if not isinstance(key, str) or not key or "/" in key or key == ".":
            raise UserError(f"plugin {plugin!r}: state_dict() key {key!r} must be a non-empty string without '/'")
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        if isinstance(value, np.ndarray):
            if value.dtype.kind not in "biuf":
                raise UserError(f"plugin {plugin!r}: state_dict()[{key!r}] is a {value.dtype} array; "
                                "only numbers and booleans are saved")
            g.create_dataset(key, data=value, fletcher32=True)
        else:
            rest[key] = value
    try:
        g.attrs["json"] = json.dumps(rest, allow_nan=True)
    except (TypeError, ValueError) as e:
        raise UserError(f"plugin {plugin!r}: state_dict() holds a value that is neither an array nor "
                        f"JSON ({e}); no pickles are written") from None


def fsync_dir(d: Path) -> None:
    """Flush a folder's entries (a rename into it) to disk; quiet where the system cannot."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------- reading
def _bad(path: Path, problem: str) -> FileFormatError:
    return FileFormatError(str(path), problem)


def open_checkpoint(path: str | Path) -> Checkpoint:
    """Read and validate a checkpoint file; runs no code from it.

    Every dataset is checked before it is read: a hard link to a plain dataset (no soft or
    external links, no external or virtual storage, only the gzip and fletcher32 filters), its
    exact dtype and shape from the file's own metadata and world, a declared size its bytes on
    disk can hold, and the world's memory check; then every id, code and counter is checked
    against its table."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise _bad(path, "no such checkpoint file")
    if not path.is_file():
        raise _bad(path, "not a regular file")
    try:
        f = h5py.File(path, "r", locking=False)
    except OSError as e:
        head = _head(path)
        if head.startswith(b"\x89HDF"):
            raise _bad(path, f"truncated or corrupt HDF5 file ({_reason(e)})") from None
        raise _bad(path, "not an alife checkpoint (not an HDF5 file)") from None
    try:
        with f:
            return _read(path, f)
    except FileFormatError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, OverflowError) as e:
        raise _bad(path, f"truncated or corrupt checkpoint ({type(e).__name__}: {_reason(e)})") from None


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(8)
    except OSError:
        return b""


def _reason(e: BaseException) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


#: a deflate stream expands at most 1032:1; a dataset declaring more than that over its bytes on
#: disk (plus this slack, for tiny datasets) is a memory bomb, not a checkpoint
_DEFLATE_MAX = 1032
_SLACK = 1 << 16


def _int(meta: dict[str, Any], key: str, path: Path, lo: int = 0) -> int:
    v = meta.get(key)
    if isinstance(v, bool) or not isinstance(v, int):
        raise _bad(path, f"metadata {key!r} must be an integer, got {type(v).__name__} {str(v)[:40]}")
    if v < lo:
        raise _bad(path, f"metadata {key!r} must be >= {lo}, got {v}")
    return v


def _check_meta(path: Path, meta: Any) -> None:
    """Types of every metadata entry a resume reads: a doctored file is one line, never a
    traceback further on."""
    if not isinstance(meta, dict):
        raise _bad(path, f"checkpoint metadata must be a JSON object, got {type(meta).__name__}")
    need = ("step", "seed", "hw", "next_id", "capacity", "genome_size", "config", "layout", "totals")
    missing = [k for k in need if k not in meta]
    if missing:
        raise _bad(path, f"checkpoint metadata lacks {', '.join(missing)}")
    for key in ("step", "seed", "hw", "next_id", "capacity", "genome_size"):
        _int(meta, key, path)
    kinds: dict[str, type | tuple[type, ...]] = {
        "config": dict, "layout": list, "totals": dict, "strategies": dict, "strategy_names": list,
        "plugin_arrays": list, "plugin_state": list, "plugins": list, "run": dict,
        "strategy_series": dict, "world_source": str, "world_text": str, "world_base_dir": str,
        "generator_device": str, "device": str, "identity": dict}
    for key, kind in kinds.items():
        if key in meta and not isinstance(meta[key], kind):
            raise _bad(path, f"metadata {key!r} must be a {getattr(kind, '__name__', kind)}, "
                             f"got {type(meta[key]).__name__}")
    for k, v in meta["totals"].items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise _bad(path, f"metadata totals.{k} must be an integer >= 0, got {str(v)[:40]}")
    for p in meta.get("plugins", []):
        if not (isinstance(p, dict) and isinstance(p.get("name"), str) and isinstance(p.get("origin"), str)):
            raise _bad(path, "metadata 'plugins' must be a list of {name, origin} objects")
    if not all(isinstance(n, str) for n in meta.get("strategy_names", [])):
        raise _bad(path, "metadata 'strategy_names' must be a list of strings")
    for k in ("population_min", "population_max"):
        if k in meta.get("run", {}):
            _int(meta["run"], k, path)
    if meta.get("generator_device", "cpu") not in ("cpu", "cuda"):
        raise _bad(path, f"metadata 'generator_device' must be cpu or cuda, got {meta['generator_device'][:40]!r}")


def _walk_links(path: Path, g: Any, prefix: str = "") -> None:
    """Refuse any soft or external link anywhere in the file: a checkpoint of ours has none."""
    import h5py

    for name in g:
        link = g.get(name, getlink=True)
        if not isinstance(link, h5py.HardLink):
            kind = "an external link" if isinstance(link, h5py.ExternalLink) else "a soft link"
            raise _bad(path, f"{prefix}{name} is {kind}; a checkpoint holds only its own datasets")
        obj = g.get(name)
        if isinstance(obj, h5py.Group):
            _walk_links(path, obj, f"{prefix}{name}/")


def _dataset(path: Path, g: Any, key: str, dtype: Any, shape: tuple[int, ...] | None) -> np.ndarray:
    """Read one dataset after checking what it is: a plain dataset of the expected dtype and shape
    (``None`` entries of ``shape`` are free), stored in this file, whose declared size its bytes on
    disk can hold."""
    import h5py

    name = key.rsplit("/", 1)[-1]
    d = g.get(name)
    if not isinstance(d, h5py.Dataset):
        raise _bad(path, f"{key} is not a dataset")
    if d.is_virtual or d.external:
        raise _bad(path, f"{key} keeps its data outside this file (external or virtual storage)")
    if d.compression not in (None, "gzip") or d.scaleoffset is not None:
        raise _bad(path, f"{key} uses an HDF5 filter a checkpoint never uses ({d.compression or 'scaleoffset'})")
    want = np.dtype(dtype)
    if d.dtype != want:
        raise _bad(path, f"{key} is {d.dtype}, expected {want}")
    if shape is not None and (len(d.shape) != len(shape)
                              or any(s is not None and a != s for a, s in zip(d.shape, shape, strict=True))):
        raise _bad(path, f"{key} has shape {d.shape}, expected {tuple('*' if s is None else s for s in shape)}")
    declared = int(np.prod(d.shape, dtype=np.float64)) * want.itemsize
    stored = d.id.get_storage_size()
    if declared > _DEFLATE_MAX * stored + _SLACK:
        raise _bad(path, f"{key} declares {declared} bytes but holds {stored} on disk (more than any "
                         "compression gives back)")
    return np.asarray(d[()])


def _read(path: Path, f: Any) -> Checkpoint:
    from alife import config as config_mod
    from alife.genome import ACTIONS, Layout
    from alife.world.state import WorldState

    if f.attrs.get("format") != FORMAT:
        what = "lineage or replay file" if "alife" in str(dict(f.attrs)).lower() else "HDF5 file"
        raise _bad(path, f"not an alife checkpoint (a foreign {what}: no 'format = {FORMAT}' attribute)")
    schema = f.attrs.get("schema")
    if isinstance(schema, np.integer):
        schema = int(schema)
    if isinstance(schema, bool) or not isinstance(schema, int) or schema != SCHEMA:
        raise _bad(path, f"checkpoint schema {schema!r} is not supported by this alife (it reads schema {SCHEMA}); "
                         "use the alife version that wrote it")
    try:
        raw = f.attrs["meta"]
        if not isinstance(raw, (str, bytes)):
            raise TypeError(f"a {type(raw).__name__}, not a JSON string")
        meta = json.loads(raw)
    except (KeyError, TypeError, ValueError) as e:
        raise _bad(path, f"checkpoint metadata is missing or not valid JSON ({_reason(e)})") from None
    _check_meta(path, meta)
    _walk_links(path, f)
    if "state" not in f or "rng" not in f:
        raise _bad(path, "checkpoint lacks its 'state' group or 'rng' array (truncated?)")
    step, hw = meta["step"], meta["hw"]
    cap, gsize = meta["capacity"], meta["genome_size"]
    # the world the arrays belong to: its config (pure data), its layout and the memory check,
    # all before any array is read
    try:
        cfg = config_mod.from_dict(meta["config"], str(meta.get("world_source", path)),
                                   str(meta.get("world_text", "")), ".")
    except config_mod.ConfigError as e:
        raise _bad(path, f"the world saved in the checkpoint is not valid here: {e}") from None
    try:
        layout = Layout.from_table(meta["layout"])
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise _bad(path, f"metadata 'layout' is not a genome layout table ({type(e).__name__}: {_reason(e)})") from None
    w = cfg.world
    if cap != w.capacity:
        raise _bad(path, f"metadata capacity {cap} does not match its world's world.capacity {w.capacity}")
    if gsize != layout.size:
        raise _bad(path, f"its genome layout does not match its genome_size ({gsize} floats; the layout holds {layout.size})")
    if hw > cap:
        raise _bad(path, f"metadata hw {hw} is past the capacity {cap}")
    slot_bytes = sum(8 * int(np.prod(d.get("shape") or [1])) for d in meta.get("plugin_arrays", [])
                     if isinstance(d, dict) and d.get("kind") == "slot" and isinstance(d.get("shape"), list)
                     and all(isinstance(x, int) and x >= 0 for x in d["shape"]))
    try:
        config_mod.check_memory(cfg, gsize, extra_slot_bytes=slot_bytes)
    except config_mod.ConfigError as e:
        raise _bad(path, f"its world does not fit in this machine's memory ({e})") from None
    proto = WorldState(1, 1, len(ACTIONS), 8, 8, cfg.brain.tag_dim, "cpu")
    g = f["state"]
    arrays: dict[str, np.ndarray] = {}
    for name in SLOT_FIELDS:
        t = getattr(proto, name)
        dtype = torch.empty(0, dtype=t.dtype).numpy().dtype
        shape = (cap, gsize) if name == "genomes" else (cap, *t.shape[1:])
        if name not in g:
            if name in OPTIONAL_FIELDS:
                arrays[name] = np.zeros(shape, dtype)
                continue
            raise _bad(path, f"checkpoint lacks the array state/{name}")
        arrays[name] = _dataset(path, g, f"state/{name}", dtype, shape)
    if "resource" not in g:
        raise _bad(path, "checkpoint lacks the array state/resource")
    arrays["resource"] = _dataset(path, g, "state/resource", np.float32, (w.height, w.width))
    for name, dtype, tail in (("species_founder", np.float32, (cfg.brain.tag_dim,)),
                              ("species_parent", np.int64, ()), ("species_origin", np.int64, ())):
        if name not in g:
            raise _bad(path, f"checkpoint lacks the array state/{name}")
        arrays[name] = _dataset(path, g, f"state/{name}", dtype, (None, *tail))
    nsp = arrays["species_founder"].shape[0]
    if arrays["species_parent"].shape != (nsp,) or arrays["species_origin"].shape != (nsp,):
        raise _bad(path, "species table arrays disagree in length")
    rng = _dataset(path, f, "rng", np.uint8, (None,))
    if rng.shape[0] > 1 << 20:
        raise _bad(path, f"rng has {rng.shape[0]} bytes, far more than a generator state")
    pool = None
    if "pool" in f:
        pg = f["pool"]
        n = initial = w.initial_agents
        kinds = {"genomes": (np.float32, (None, gsize)), "ids": (np.int64, (None,)),
                 "species": (np.int64, (None,)), "generation": (np.int64, (None,)),
                 "strategy": (np.int16, (None,))}
        pool = {}
        for name in POOL_FIELDS:
            if name not in pg:
                if name in OPTIONAL_FIELDS:
                    continue
                raise _bad(path, f"checkpoint lacks the array pool/{name}")
            dtype, shape = kinds[name]
            pool[name] = _dataset(path, pg, f"pool/{name}", dtype, shape)
            n = pool[name].shape[0]
            if n > initial:
                raise _bad(path, f"pool/{name} has {n} rows, more than the pool's {initial}")
        if len({a.shape[0] for a in pool.values()}) > 1:
            raise _bad(path, "pool arrays disagree in length")
    plugin_arrays = _read_plugin_arrays(path, f, meta, cap, nsp)
    plugin_state: dict[str, dict[str, Any]] = {}
    if "plugin_state" in f:
        for name, pg in f["plugin_state"].items():
            try:
                raw = pg.attrs.get("json", "{}")
                if not isinstance(raw, (str, bytes)):
                    raise TypeError(f"a {type(raw).__name__}, not a JSON string")
                state = json.loads(raw)
            except (TypeError, ValueError) as e:
                raise _bad(path, f"plugin_state/{name}: state is not valid JSON ({_reason(e)})") from None
            if not isinstance(state, dict):
                raise _bad(path, f"plugin_state/{name}: state must be a JSON object")
            for k in pg:
                d = pg[k]
                if not hasattr(d, "dtype") or d.dtype.kind not in "biuf":
                    raise _bad(path, f"plugin_state/{name}/{k} is not a number array")
                state[k] = _dataset(path, pg, f"plugin_state/{name}/{k}", d.dtype, None)
            plugin_state[name] = state
    ckpt = Checkpoint(path, meta, arrays, rng, pool, plugin_arrays, plugin_state)
    _check_ranges(ckpt, nsp)
    m = _NAME.match(path.name)
    if m and int(m.group(1)) != step:
        raise _bad(path, f"its name says step {int(m.group(1))} but its metadata says step {step}")
    stored = meta.get("identity")
    if stored is not None:
        mine = identity_from_meta(meta, cfg)
        if stored.get("digest") != mine["digest"]:
            raise _bad(path, "its identity digest does not match its own world, layout and plugins "
                             "(the metadata was edited)")
    return ckpt


def _read_plugin_arrays(path: Path, f: Any, meta: dict[str, Any], cap: int, nsp: int) -> dict[str, np.ndarray]:
    if "plugin_arrays" not in f:
        return {}
    described = {d.get("name"): d for d in meta.get("plugin_arrays", []) if isinstance(d, dict)}
    out = {}
    for name in f["plugin_arrays"]:
        d = described.get(name)
        if d is None or not isinstance(d.get("shape"), list) or d.get("kind") not in ("slot", "species"):
            raise _bad(path, f"plugin_arrays/{name} is not described in its metadata")
        try:
            dtype = np.dtype(str(d.get("dtype")))
        except TypeError:
            raise _bad(path, f"plugin_arrays/{name}: metadata dtype {str(d.get('dtype'))[:40]!r} is not a dtype") from None
        if dtype.kind not in "biuf":
            raise _bad(path, f"plugin_arrays/{name}: metadata dtype {dtype} is not a number type")
        if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in d["shape"]):
            raise _bad(path, f"plugin_arrays/{name}: metadata shape {d['shape']} is not a list of sizes")
        rows = cap if d["kind"] == "slot" else nsp
        out[name] = _dataset(path, f["plugin_arrays"], f"plugin_arrays/{name}", dtype, (rows, *d["shape"]))
    return out


def _check_ranges(ckpt: Checkpoint, nsp: int) -> None:
    """Every id, code and counter within its table: what the numba kernels index with is checked
    here, never trusted."""
    path, meta, a = ckpt.path, ckpt.meta, ckpt.arrays
    hw, next_id = meta["hw"], meta["next_id"]
    alive = a["alive"]

    def bad_rows(what: str, mask: np.ndarray) -> FileFormatError:
        slot = int(np.flatnonzero(mask)[0])
        return _bad(path, f"{what} (first at slot {slot})")

    if alive[hw:].any():
        raise bad_rows(f"state/alive: a living agent at or past hw {hw}", np.r_[np.zeros(hw, bool), alive[hw:]])
    sp = a["species"]
    if ((sp < -1) | (sp >= nsp)).any():
        raise bad_rows(f"state/species: an id outside the species table of {nsp}", (sp < -1) | (sp >= nsp))
    if (alive & (sp < 0)).any():
        raise bad_rows("state/species: a living agent without a species", alive & (sp < 0))
    ids = a["ids"]
    if (alive & ((ids < 0) | (ids >= next_id))).any():
        raise bad_rows(f"state/ids: a living agent's id outside [0, next_id {next_id})",
                       alive & ((ids < 0) | (ids >= next_id)))
    live_ids = ids[alive]
    if np.unique(live_ids).size != live_ids.size:
        raise _bad(path, "state/ids: two living agents share an id")
    par = a["parents"]
    badp = alive[:, None] & ((par < -1) | (par >= next_id))
    if badp.any():
        raise bad_rows(f"state/parents: a parent id outside [-1, next_id {next_id})", badp.any(axis=1))
    for name in ("age", "generation", "children"):
        if (alive & (a[name] < 0)).any():
            raise bad_rows(f"state/{name}: a negative value", alive & (a[name] < 0))
    ncodes = max(1, len(meta.get("strategy_names") or [None]))
    st = a["strategy"]
    if (alive & ((st < 0) | (st >= ncodes))).any():
        raise bad_rows(f"state/strategy: a code outside the run's {ncodes} strategies",
                       alive & ((st < 0) | (st >= ncodes)))
    spp = a["species_parent"]
    if ((spp < -1) | (spp >= nsp)).any():
        raise _bad(path, f"state/species_parent: an id outside the species table of {nsp}")
    if (a["species_origin"] > meta["step"]).any():
        raise _bad(path, f"state/species_origin: a species founded after the checkpoint's step {meta['step']}")
    if ckpt.pool is not None:
        p = ckpt.pool
        if ((p["ids"] < -1) | (p["ids"] >= next_id)).any():
            raise _bad(path, f"pool/ids: an id outside [-1, next_id {next_id})")
        if ((p["species"] < 0) | (p["species"] >= nsp)).any():
            raise _bad(path, f"pool/species: an id outside the species table of {nsp}")
        if (p["generation"] < 0).any():
            raise _bad(path, "pool/generation: a negative value")
        if "strategy" in p and ((p["strategy"] < 0) | (p["strategy"] >= ncodes)).any():
            raise _bad(path, f"pool/strategy: a code outside the run's {ncodes} strategies")


# ---------------------------------------------------------------------------------------- identity
def external_plugins(infos: Iterable[Any]) -> list[str]:
    """Names of the plugins a user loaded from code (``-p``, ``--plugins-dir``, a world file's
    ``plugins``, entry points): every plugin but the built-ins and the objects a caller passed
    (``alife run``'s recorders). ``infos``: ``PluginInfo``s or the dicts a checkpoint keeps."""
    out = set()
    for p in infos:
        name, origin = (p["name"], p["origin"]) if isinstance(p, dict) else (p.name, p.origin)
        if not (origin.startswith("builtin") or origin.startswith("python")):
            out.add(name)
    return sorted(out)


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def world_digest(cfg: Any) -> str:
    """The world configuration's digest: every key but ``plugins`` (which says where code comes
    from, not what the world is; the plugin set has its own digest)."""
    d = _drop_none(cfg.to_dict())
    d.pop("plugins", None)
    return _digest(d)


def identity(cfg: Any, layout_table: list[Any], plugins: list[str]) -> dict[str, Any]:
    """What a resume must match: digests of the world configuration, the genome layout and the
    plugin set, and one digest of the three."""
    ident: dict[str, Any] = {"world": world_digest(cfg), "layout": _digest(layout_table), "plugins": sorted(plugins)}
    ident["digest"] = _digest([ident["world"], ident["layout"], ident["plugins"]])
    return ident


def identity_of(sim: Simulation) -> dict[str, Any]:
    return identity(sim.config, sim.layout.to_table(), external_plugins(sim.hooks.plugins()))


def identity_from_meta(meta: dict[str, Any], cfg: Any) -> dict[str, Any]:
    """The identity of a checkpoint, computed from its own config, layout and plugin list."""
    return identity(cfg, meta["layout"], external_plugins(meta.get("plugins", [])))


def _first_difference(a: Any, b: Any, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
    return f"{prefix.rstrip('.')} is {a!r} there, {b!r} here"[:200]


_HOW = "give the run's world file next to --resume (alife run WORLD --resume RUN), -p MODULE or --plugins-dir DIR"


def _plugin_hint(ckpt: Checkpoint, names: list[str]) -> str:
    origins = {p["name"]: p["origin"] for p in ckpt.meta.get("plugins", [])}
    return ", ".join(f"{n!r} (loaded from {origins.get(n, '?')})" for n in names)


# ---------------------------------------------------------------------------------------- restoring
def restore(ckpt: Checkpoint, *, device: str | None = None, plugins: Iterable[Any] = (),
            modules: Iterable[str] = (), plugins_dirs: Iterable[str | Path] = (),
            blocked: Iterable[str] = (), run_dir: str | Path | None = None,
            plugin_factory: Callable[[Any], Iterable[Any]] | None = None,
            world: Any = None) -> Simulation:
    """Build a Simulation from a checkpoint's config and overwrite its state with the saved one.

    Nothing the checkpoint names is imported: its plugins come only from ``plugins``,
    ``modules``, ``plugins_dirs`` and the ``plugins`` list of ``world``, the user's own world file
    (or ``WorldConfig``), which must be the checkpoint's world (its configuration digest is
    compared). A checkpoint saved with plugins that are not loaded, or without plugins that are,
    is refused by name before any state is touched.

    The state is in place before ``alife_sim_start`` fires, with ``sim.resume_step`` set to the
    checkpoint's step, so recorders opening files there append after dropping later records.
    ``plugin_factory(cfg)`` may return extra plugins built from the checkpoint's config (``alife
    run`` makes its recorders this way).
    """
    from alife import config as config_mod
    from alife.genome import Layout
    from alife.simulation import Simulation

    meta, path = ckpt.meta, ckpt.path
    try:
        cfg = config_mod.from_dict(meta["config"], meta.get("world_source", str(path)),
                                   meta.get("world_text", ""), ".")
    except config_mod.ConfigError as e:
        raise _bad(path, f"the world saved in the checkpoint is not valid here: {e}") from None
    cfg.plugins = []  # a file is data: the saved world's plugin list is never imported
    if world is not None:
        mine = config_mod.load(world, {"seed": int(meta["seed"])})
        if world_digest(mine) != world_digest(cfg):
            saved, here = _drop_none(cfg.to_dict()), _drop_none(mine.to_dict())
            saved.pop("plugins", None)
            here.pop("plugins", None)
            raise _bad(path, f"the world {mine.source} is not this checkpoint's world: {_first_difference(saved, here)}")
        cfg.plugins, cfg.base_dir = list(mine.plugins), mine.base_dir
    dev = meta.get("generator_device", "cpu")
    if device not in (None, "auto", dev):
        raise UserError(f"{path}: the checkpoint was saved on {dev}; resume it there "
                        f"(--device {dev}) for an exact continuation")
    extra = list(plugins)
    if plugin_factory is not None:
        extra += list(plugin_factory(cfg))
    saved_plugins = external_plugins(meta.get("plugins", []))

    def _overwrite(sim: Simulation) -> None:
        live = external_plugins(sim.hooks.plugins())
        missing = [n for n in saved_plugins if n not in live]
        if missing:
            raise _bad(path, f"the run was saved with plugin(s) {_plugin_hint(ckpt, missing)}, which this resume "
                             f"does not load; load them again ({_HOW})")
        added = [n for n in live if n not in saved_plugins]
        if added:
            raise _bad(path, f"this resume loads plugin(s) {', '.join(map(repr, added))}, which the run was not "
                             "saved with; resume without them")
        saved_layout = Layout.from_table(meta["layout"])
        if saved_layout != sim.layout:
            raise _bad(path, f"the checkpoint's genome layout does not match this run's: {_layout_diff(saved_layout, sim.layout)}")
        st = sim.world
        if st.capacity != int(meta["capacity"]) or sim.layout.size != int(meta["genome_size"]):
            raise _bad(path, "the checkpoint's capacity or genome size does not match its world config")
        a = ckpt.arrays
        if a["resource"].shape != tuple(st.resource.shape):
            raise _bad(path, f"resource field of shape {a['resource'].shape} does not match the world's "
                             f"{tuple(st.resource.shape)}")
        if a["species_founder"].ndim != 2 or a["species_founder"].shape[1] != sim.config.brain.tag_dim:
            raise _bad(path, "species table does not match the world's tag size")
        for name in SLOT_FIELDS + ("resource",):
            cur = getattr(st, name)
            cur.copy_(torch.from_numpy(a[name]).to(device=cur.device, dtype=cur.dtype).view_as(cur))
        for name in SPECIES_FIELDS:
            cur = getattr(st, name)
            setattr(st, name, torch.from_numpy(a[name]).to(device=cur.device, dtype=cur.dtype))
        st.hw, st.next_id, st.step = int(meta["hw"]), int(meta["next_id"]), int(meta["step"])
        sim.genomes_changed()
        try:
            sim.generator.set_state(torch.from_numpy(ckpt.rng_state.copy()))
        except RuntimeError as e:
            raise _bad(path, f"generator state does not fit a {dev} generator ({_reason(e)})") from None
        totals = meta["totals"]
        for k in list(sim.totals):
            sim.totals[k] = int(totals.get(k, 0))
        sim.restore_extinction_pool(ckpt.pool)
        if int(st.strategy.max()) >= len(sim.strategy_names) or int(st.strategy.min()) < 0:
            raise _bad(path, f"state/strategy holds codes outside the run's {len(sim.strategy_names)} strategies")
        sim.arrays.n_species = int(st.species_origin.shape[0])
        try:
            sim.arrays.load(ckpt.plugin_arrays, meta.get("plugin_arrays", []), str(path))
        except (ValueError, TypeError) as e:
            raise _bad(path, str(e)) from None
        _restore_plugin_state(sim, ckpt)
        series = meta.get("strategy_series") or {}
        rows, every = series.get("rows", []), series.get("every", 100)
        width = 1 + len(sim.strategy_names)
        if not (isinstance(rows, list) and isinstance(every, int) and every >= 1
                and all(isinstance(r, list) and len(r) == width and all(isinstance(x, int) for x in r) for r in rows)):
            raise _bad(path, f"strategy_series in its metadata is not rows of {width} integers")
        sim.strategy_series, sim.strategy_series_every = [list(r) for r in rows], every
        sim.recount_species()
        sim.resume_step = int(meta["step"])

    from alife.plugins.manager import PluginError

    try:
        return Simulation(cfg, device=dev, plugins=extra, modules=modules,
                          plugins_dirs=plugins_dirs, blocked=blocked, run_dir=run_dir,
                          before_start=_overwrite)
    except PluginError as e:
        if not saved_plugins:
            raise
        # most likely the strategies of a plugin the user did not give again: name them
        raise _bad(path, f"{e}; the run was saved with plugin(s) {_plugin_hint(ckpt, saved_plugins)}: "
                         f"load them again ({_HOW})") from None


def _layout_diff(saved: Any, now: Any) -> str:
    """The first tensor in which two layouts differ, named."""
    a = {e.key: e for e in saved.entries}
    b = {e.key: e for e in now.entries}
    for key in list(a) + [k for k in b if k not in a]:
        if key not in b:
            return f"it has genome tensor {key!r}, which this run's plugins do not add"
        if key not in a:
            return f"this run adds genome tensor {key!r}, which it lacks"
        if a[key] != b[key]:
            return (f"genome tensor {key!r} is {list(a[key].shape)} at offset {a[key].offset} there, "
                    f"{list(b[key].shape)} at offset {b[key].offset} here")
    return "the tensors are in another order"


def _restore_plugin_state(sim: Simulation, ckpt: Checkpoint) -> None:
    """Give every stateful plugin its saved state; refuse a checkpoint that lacks the state of a
    plugin whose state is not empty, or holds state for a plugin that is not loaded."""
    path = ckpt.path
    live = sim.hooks.stateful()
    saved = ckpt.plugin_state
    for name, plugin in live.items():
        if name not in saved:
            if plugin.state_dict():
                raise _bad(path, f"it holds no state for plugin {name!r}, which keeps state in this run "
                                 "(the run was saved without that plugin?)")
            continue
        try:
            plugin.load_state_dict(saved[name])
        except Exception as e:  # a plugin's own check: name it
            raise _bad(path, f"plugin {name!r} refused its saved state: {type(e).__name__}: {e}") from None
    orphans = [n for n, st in saved.items() if n not in live and st]
    if orphans:
        raise _bad(path, f"it holds state for plugin(s) {', '.join(map(repr, sorted(orphans)))}, which this run "
                         "does not load; load them (-p, --plugins-dir, the world's plugins) to resume")


def load_checkpoint(path: str | Path, **kwargs: Any) -> Simulation:
    """Open, validate and restore a checkpoint: a Simulation that continues exactly where the saved
    one stood. Keyword arguments go to :func:`restore`."""
    return restore(open_checkpoint(path), **kwargs)


# ---------------------------------------------------------------------------------------- run folders
def checkpoint_path(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"step-{step:010d}.h5"


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every complete checkpoint in a run folder, oldest first. Temporary files
    a killed save left behind are not checkpoints and are never listed."""
    d = Path(run_dir) / CHECKPOINT_DIR
    if not d.is_dir():
        return []
    out = []
    for p in d.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_file():
            out.append((int(m.group(1)), p))
    return sorted(out)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    cps = list_checkpoints(run_dir)
    return cps[-1][1] if cps else None


def prune_checkpoints(run_dir: str | Path, keep: int) -> None:
    """Keep the newest ``keep`` checkpoints and remove temporary files of killed saves."""
    d = Path(run_dir) / CHECKPOINT_DIR
    if not d.is_dir():
        return
    for p in d.glob("step-*.h5.tmp-*"):
        p.unlink(missing_ok=True)
    if keep > 0:
        for _, p in list_checkpoints(run_dir)[:-keep]:
            p.unlink(missing_ok=True)
