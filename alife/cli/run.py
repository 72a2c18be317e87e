"""``alife run``: run a world, show progress, write a run folder with a summary."""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from datetime import datetime, timezone
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alife.config import ConfigError, parse_override
from alife.errors import UserError


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run a world (the embedded default when no file is given)",
                       description="Run a world and write replays/<name>/ with a summary.")
    p.add_argument("world", nargs="?", default=None, help="world file (.toml) or embedded world name; default: meadow")
    p.add_argument("--steps", type=int, default=2000, help="steps to run, counted from the run's start (default 2000)")
    p.add_argument("--seed", type=int, default=None, help="seed (default: the world file's)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="where brains run")
    p.add_argument("--out", default=None, help="run folder (default replays/<world>-s<seed>-<time>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a world key, e.g. --set world.capacity=4096 (repeatable)")
    p.add_argument("-p", dest="modules", action="append", default=[], metavar="NAME",
                   help="load plugin module NAME; -p no:NAME blocks the plugin NAME (repeatable)")
    p.add_argument("--plugins-dir", action="append", default=[], metavar="DIR",
                   help="load every .py file in DIR as a plugin (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--help-world", action="store_true", help="list every world-file key and exit")
    p.add_argument("--no-record", action="append", default=[], metavar="NAME",
                   help=f"turn off a recorder: {', '.join(RECORDERS)} (repeatable)")
    p.add_argument("--watch", action="store_true", help="watch the run live in the viewer window")
    for mod in _recorder_modules().values():
        if hasattr(mod, "add_run_arguments"):
            mod.add_run_arguments(p)
    p.set_defaults(func=run_command)


def split_plugin_args(modules: list[str]) -> tuple[list[str], list[str]]:
    load = [m for m in modules if not m.startswith("no:")]
    blocked = [m[3:] for m in modules if m.startswith("no:")]
    return load, blocked


def parse_overrides(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        k, v = parse_override(item)
        out[k] = v
    return out


#: recording plugins `alife run` turns on, by name. Each module provides
#: ``recorder_for_run(run_dir: Path, args: argparse.Namespace, cfg: WorldConfig) -> plugin`` and may
#: provide ``add_run_arguments(parser)`` for its own flags. ``--no-record NAME`` turns one off.
RECORDERS = {"lineage": "alife.recording.lineage", "replay": "alife.recording.replay"}


def _recorder_modules() -> dict[str, Any]:
    mods = {}
    for name, modname in RECORDERS.items():
        try:
            mods[name] = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name != modname:
                raise
    return mods


def make_recorders(run_dir: Path, args: argparse.Namespace, cfg: Any) -> list[Any]:
    """Recording plugins that `alife run` turns on (lineage, replay)."""
    off = set(args.no_record)
    unknown = off - set(RECORDERS)
    if unknown:
        raise UserError(f"--no-record: unknown recorder(s) {sorted(unknown)}; known: {sorted(RECORDERS)}")
    return [mod.recorder_for_run(run_dir, args, cfg) for name, mod in _recorder_modules().items()
            if name not in off]


def versions() -> dict[str, str]:
    import h5py
    import numpy
    import pettingzoo
    import pluggy
    import torch

    from alife import __version__
    return {"alife": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "pettingzoo": pettingzoo.__version__,
            "pluggy": pluggy.__version__, "h5py": h5py.__version__}


def run_command(args: argparse.Namespace) -> int:
    from alife import config as config_mod
    from alife.simulation import Simulation

    if args.help_world:
        print(config_mod.describe())
        return 0
    if args.steps < 0:
        raise UserError(f"--steps must be >= 0, got {args.steps}")
    overrides = parse_overrides(args.overrides)
    cfg = config_mod.load(args.world, overrides)
    if cfg.task is not None:  # a [task] table: generational mode
        from alife.generational.cli import run_task_command
        return run_task_command(args, cfg)
    seed = cfg.seed if args.seed is None else args.seed
    if seed < 0:
        raise ConfigError("--seed", "seed", f"expected a value >= 0, got {seed}")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.out) if args.out else Path("replays") / f"{cfg.name}-s{seed}-{stamp}"
    if run_dir.exists() and any(run_dir.iterdir()):
        raise UserError(f"run folder {str(run_dir)!r} already exists and is not empty; pick another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    load, blocked = split_plugin_args(args.modules)
    sim = Simulation(cfg, seed=seed, device=args.device, modules=load, blocked=blocked,
                     plugins_dirs=args.plugins_dir, plugins=make_recorders(run_dir, args, cfg),
                     run_dir=run_dir)
    on_step = None
    if args.watch:
        from alife.viewer.live import LiveViewer
        on_step = LiveViewer(sim).update
    summary = run_loop(sim, args.steps, progress=not args.no_progress, on_step=on_step)
    summary.update(run_dir=str(run_dir), world_source=cfg.source)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print_summary(summary)
    return 0


def run_loop(sim: Any, steps: int, progress: bool = True,
             on_step: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Step ``sim`` until ``steps`` (counted from step 0) or extinction; return the summary.

    ``on_step`` (the live viewer) is called after every step; returning False stops the run."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    pmin = pmax = sim.population
    bar = tqdm(total=steps, initial=sim.step_count, unit="step", disable=not progress,
               dynamic_ncols=True, file=sys.stderr)
    extinct = False
    try:
        while sim.step_count < steps:
            sim.step()
            pop = sim.population
            pmin, pmax = min(pmin, pop), max(pmax, pop)
            bar.update(1)
            if progress and sim.step_count % 25 == 0:
                t = sim.totals
                bar.set_postfix(pop=pop, species=sim.species_count(), births=t["births"],
                                deaths=t["deaths"], refresh=False)
            if pop == 0:
                extinct = True
                break
            if on_step is not None and on_step() is False:
                break
    finally:
        bar.close()
        sim.close()
    wall = time.perf_counter() - t0
    return summarize(sim, wall, pmin, pmax, extinct)


def summarize(sim: Any, wall: float, pmin: int, pmax: int, extinct: bool) -> dict[str, Any]:
    import numpy as np

    sp = sim.world.species[sim.world.alive].cpu().numpy()
    ids, counts = np.unique(sp, return_counts=True)
    t = sim.totals
    return {
        "world": sim.config.name,
        "steps": sim.step_count,
        "wall_time_s": round(wall, 3),
        "steps_per_s": round(sim.step_count / wall, 1) if wall > 0 else None,
        "seed": sim.seed,
        "device": str(sim.device),
        "extinct": extinct,
        "population": {"final": sim.population, "min": pmin, "max": pmax,
                       "capacity": sim.config.world.capacity},
        "species": {"final": len(ids), "ever": int(sim.world.species_founder.shape[0]),
                    "final_population_by_species": {str(int(i)): int(c) for i, c in zip(ids, counts, strict=True)}},
        "births": t["births"],
        "births_refused_capacity": t["births_refused_capacity"],
        "deaths": t["deaths"],
        "deaths_by_cause": {k[len("deaths_"):]: v for k, v in t.items() if k.startswith("deaths_")},
        "strategies": dict(sim.hooks.chosen),
        "plugins": [{"name": p.name, "origin": p.origin, "active": p.active, "hooks": p.hooks}
                    for p in sim.hooks.plugins()],
        "versions": versions(),
    }


def print_summary(s: dict[str, Any]) -> None:
    pop = s["population"]
    print(f"world {s['world']}  seed {s['seed']}  device {s['device']}")
    print(f"steps {s['steps']} in {s['wall_time_s']:.1f} s ({s['steps_per_s']} steps/s)"
          + ("  -- the population went extinct" if s["extinct"] else ""))
    print(f"population: final {pop['final']}, min {pop['min']}, max {pop['max']} (capacity {pop['capacity']})")
    top = sorted(s["species"]["final_population_by_species"].items(), key=lambda kv: -kv[1])[:8]
    print(f"species: {s['species']['final']} alive, {s['species']['ever']} ever; largest: "
          + ", ".join(f"#{k}: {v}" for k, v in top))
    causes = ", ".join(f"{k} {v}" for k, v in s["deaths_by_cause"].items() if v)
    print(f"births {s['births']} (refused at capacity {s['births_refused_capacity']}); deaths {s['deaths']} ({causes})")
    print(f"run folder: {s['run_dir']}")
