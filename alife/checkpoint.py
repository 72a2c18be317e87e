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

import json
import os
import re
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
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    st = sim.world
    meta = _metadata(sim, run)
    try:
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
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


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


def _fsync_dir(d: Path) -> None:
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
    """Read and validate a checkpoint file; runs no code from it."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise _bad(path, "no such checkpoint file")
    if not path.is_file():
        raise _bad(path, "not a file")
    try:
        f = h5py.File(path, "r")
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
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as e:
        raise _bad(path, f"truncated or corrupt checkpoint ({type(e).__name__}: {_reason(e)})") from None


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(8)
    except OSError:
        return b""


def _reason(e: BaseException) -> str:
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


def _read(path: Path, f: Any) -> Checkpoint:
    if f.attrs.get("format") != FORMAT:
        what = "lineage or replay file" if "alife" in str(dict(f.attrs)).lower() else "HDF5 file"
        raise _bad(path, f"not an alife checkpoint (a foreign {what}: no 'format = {FORMAT}' attribute)")
    schema = f.attrs.get("schema")
    if isinstance(schema, np.integer):
        schema = int(schema)
    if not isinstance(schema, int) or schema != SCHEMA:
        raise _bad(path, f"checkpoint schema {schema!r} is not supported by this alife (it reads schema {SCHEMA}); "
                         "use the alife version that wrote it")
    try:
        meta = json.loads(f.attrs["meta"])
    except (KeyError, TypeError, ValueError) as e:
        raise _bad(path, f"checkpoint metadata is missing or not valid JSON ({_reason(e)})") from None
    need = ("step", "seed", "hw", "next_id", "capacity", "genome_size", "config", "layout", "totals")
    missing = [k for k in need if k not in meta]
    if missing:
        raise _bad(path, f"checkpoint metadata lacks {', '.join(missing)}")
    if "state" not in f or "rng" not in f:
        raise _bad(path, "checkpoint lacks its 'state' group or 'rng' array (truncated?)")
    g = f["state"]
    arrays: dict[str, np.ndarray] = {}
    cap, gsize = int(meta["capacity"]), int(meta["genome_size"])
    for name in SLOT_FIELDS + SPECIES_FIELDS + ("resource",):
        if name not in g:
            if name in OPTIONAL_FIELDS:
                arrays[name] = np.zeros(cap, np.int16)
                continue
            raise _bad(path, f"checkpoint lacks the array state/{name}")
        arrays[name] = np.asarray(g[name][()])
    for name in SLOT_FIELDS:
        if arrays[name].shape[:1] != (cap,):
            raise _bad(path, f"array state/{name} has shape {arrays[name].shape}, expected {cap} slots")
    if arrays["genomes"].shape != (cap, gsize):
        raise _bad(path, f"array state/genomes has shape {arrays['genomes'].shape}, expected ({cap}, {gsize})")
    nsp = arrays["species_founder"].shape[0]
    if arrays["species_parent"].shape != (nsp,) or arrays["species_origin"].shape != (nsp,):
        raise _bad(path, "species table arrays disagree in length")
    rng = np.asarray(f["rng"][()])
    if rng.dtype != np.uint8 or rng.ndim != 1:
        raise _bad(path, f"generator state must be a uint8 vector, got {rng.dtype} {rng.shape}")
    pool = None
    if "pool" in f:
        pool = {name: np.asarray(f["pool"][name][()]) for name in POOL_FIELDS
                if name in f["pool"] or name not in OPTIONAL_FIELDS}
    plugin_arrays = {name: np.asarray(d[()]) for name, d in f["plugin_arrays"].items()} if "plugin_arrays" in f else {}
    plugin_state: dict[str, dict[str, Any]] = {}
    if "plugin_state" in f:
        for name, pg in f["plugin_state"].items():
            try:
                state = json.loads(pg.attrs.get("json", "{}"))
            except (TypeError, ValueError) as e:
                raise _bad(path, f"plugin_state/{name}: state is not valid JSON ({_reason(e)})") from None
            if not isinstance(state, dict):
                raise _bad(path, f"plugin_state/{name}: state must be a JSON object")
            state.update({k: np.asarray(d[()]) for k, d in pg.items()})
            plugin_state[name] = state
    return Checkpoint(path, meta, arrays, rng, pool, plugin_arrays, plugin_state)


# ---------------------------------------------------------------------------------------- restoring
def restore(ckpt: Checkpoint, *, device: str | None = None, plugins: Iterable[Any] = (),
            modules: Iterable[str] = (), plugins_dirs: Iterable[str | Path] = (),
            blocked: Iterable[str] = (), run_dir: str | Path | None = None,
            plugin_factory: Callable[[Any], Iterable[Any]] | None = None) -> Simulation:
    """Build a Simulation from a checkpoint's config and overwrite its state with the saved one.

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
                                   meta.get("world_text", ""), meta.get("world_base_dir", "."))
    except config_mod.ConfigError as e:
        raise _bad(path, f"the world saved in the checkpoint is not valid here: {e}") from None
    dev = meta.get("generator_device", "cpu")
    if device not in (None, "auto", dev):
        raise UserError(f"{path}: the checkpoint was saved on {dev}; resume it there "
                        f"(--device {dev}) for an exact continuation")
    extra = list(plugins)
    if plugin_factory is not None:
        extra += list(plugin_factory(cfg))

    def _overwrite(sim: Simulation) -> None:
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

    return Simulation(cfg, device=dev, plugins=extra, modules=modules,
                      plugins_dirs=plugins_dirs, blocked=blocked, run_dir=run_dir,
                      before_start=_overwrite)


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
