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
from dataclasses import dataclass
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
POOL_FIELDS = ("genomes", "ids", "species", "generation")
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
    for name in SLOT_FIELDS + SPECIES_FIELDS + ("resource",):
        if name not in g:
            raise _bad(path, f"checkpoint lacks the array state/{name}")
        arrays[name] = np.asarray(g[name][()])
    cap, gsize = int(meta["capacity"]), int(meta["genome_size"])
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
        pool = {name: np.asarray(f["pool"][name][()]) for name in POOL_FIELDS}
    return Checkpoint(path, meta, arrays, rng, pool)


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
        if Layout.from_table(meta["layout"]) != sim.layout:
            raise _bad(path, "the checkpoint's genome layout does not match this alife's layout for its world")
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
        sim.resume_step = int(meta["step"])

    return Simulation(cfg, device=dev, plugins=extra, modules=modules,
                      plugins_dirs=plugins_dirs, blocked=blocked, run_dir=run_dir,
                      before_start=_overwrite)


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
