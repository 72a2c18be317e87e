"""``alife run``: run a world, show progress, write a run folder with a summary."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alife.config import ConfigError, parse_override
from alife.errors import UserError
from alife.plugins.manager import PluginError, PluginManager, split_plugin_args
from alife.provenance import versions

#: the recorders built into alife: plugins of the ``alife run`` command line, loaded before the
#: ``alife`` entry points, ``--plugins-dir`` and ``-p`` (see :func:`cli_plugins`)
BUILTIN_RECORDERS = ("alife.recording.lineage", "alife.recording.replay")


def register(sub: Any) -> None:
    # argparse makes a subcommand's parser with the class its subparsers action holds; the run
    # parser is a RunParser, which adds the plugins' options before it parses
    parser_class, sub._parser_class = sub._parser_class, RunParser
    try:
        p = sub.add_parser("run", help="run a world (the embedded default when no file is given)",
                           description="Run a world and write replays/<name>/ with a summary.")
    finally:
        sub._parser_class = parser_class
    p.add_argument("world", nargs="?", default=None, help="world file (.toml) or embedded world name; default: meadow")
    p.add_argument("--steps", type=int, default=None,
                   help="steps to run, counted from the run's start (default 2000; with --resume, the run's own)")
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
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch threads (default 1 for a world on the CPU: its step runs in serial numba "
                        "kernels, and idle torch workers spin, slowing other runs on the machine)")
    p.add_argument("--help-world", action="store_true", help="list every world-file key and exit")
    p.add_argument("--no-record", action="append", default=[], metavar="NAME",
                   help="turn off a recorder (repeatable)")
    p.add_argument("--watch", action="store_true", help="watch the run live in the viewer window")
    p.add_argument("--checkpoint-every", type=int, default=0, metavar="N",
                   help="save a checkpoint every N steps (0: only at the end of the run)")
    p.add_argument("--keep-checkpoints", type=int, default=3, metavar="K",
                   help="checkpoints kept in the run folder, newest first (default 3; 0 keeps all)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue a run from its last checkpoint (or from a checkpoint file); "
                        "appends to its lineage and replay files")
    p.set_defaults(func=run_command)


class RunParser(argparse.ArgumentParser):
    """The ``alife run`` parser. On its first parse it reads ``-p`` and ``--plugins-dir``, loads
    the command line's plugins (:func:`cli_plugins`) and lets each add its options through
    ``alife_add_run_arguments``, then parses (as pytest reads ``-p`` before ``pytest_addoption``).
    When a plugin fails to load or to add its options, the parse keeps the error as
    ``plugin_error`` and ignores the arguments it does not know (options of that plugin, most
    likely): :func:`run_command` raises the error, so it is reported in one line."""

    plugins_added = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        if not self.plugins_added:
            self.plugins_added = True
            pre = argparse.ArgumentParser(add_help=False, exit_on_error=False)
            pre.add_argument("-p", dest="modules", action="append", default=[])
            pre.add_argument("--plugins-dir", action="append", default=[])
            try:
                given, _ = pre.parse_known_args(sys.argv[1:] if args is None else list(args))
            except argparse.ArgumentError:  # the full parse below reports it
                given = pre.parse_args([])
            try:
                pm = cli_plugins(given.modules, given.plugins_dir)
                pm.add_run_arguments(self)
                names = list(pm.recorder_names())
            except PluginError as e:
                self.set_defaults(plugin_error=e)
            else:
                for action in self._actions:
                    if action.dest == "no_record":
                        action.help = f"turn off a recorder: {', '.join(names) or 'none'} (repeatable)"
        ns, extras = super().parse_known_args(args, namespace)
        return ns, ([] if getattr(ns, "plugin_error", None) is not None else extras)


def set_threads(sim: Any, threads: int | None) -> None:
    """``--threads``: torch's intra-op threads; by default 1 when the world runs on the CPU.

    Measured (docs/performance.md): the CPU step is serial numba passes, so a second torch thread
    gains little even at 10,000 agents, while torch's idle worker spins on the other core; two
    runs side by side on a 2-core machine then ran 10x slower than one."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    elif sim.device.type == "cpu":
        torch.set_num_threads(1)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        k, v = parse_override(item)
        out[k] = v
    return out


def cli_plugins(modules: list[str] = (), plugins_dirs: list[str] = ()) -> PluginManager:
    """The plugins of the ``alife run`` command line, which add its options
    (``alife_add_run_arguments``) and make a run's recorders (``alife_make_recorders``): the
    built-in recorders, the ``alife`` entry points, every ``.py`` in ``plugins_dirs`` and the
    ``-p`` ``modules`` (``no:NAME`` blocks a plugin). A world file's ``plugins`` join the
    simulation only."""
    load, blocked = split_plugin_args(list(modules))
    pm = PluginManager()
    for name in blocked:
        pm.block(name)
    for modname in BUILTIN_RECORDERS:
        pm.register(importlib.import_module(modname), modname, "builtin")
    pm.load_entry_points()
    for d in plugins_dirs:
        pm.load_dir(d)
    for m in load:
        pm.load_module(m)
    return pm


def make_recorders(run_dir: Path, args: argparse.Namespace, cfg: Any) -> list[Any]:
    """The recorders of a run: those every command-line plugin makes (:func:`cli_plugins`), but
    the ones ``--no-record NAME`` turns off."""
    pm = cli_plugins(args.modules, args.plugins_dir)
    known = list(pm.recorder_names())
    off = set(args.no_record)
    unknown = off - set(known)
    if unknown:
        raise UserError(f"--no-record: unknown recorder(s) {sorted(unknown)}; known: {sorted(known)}")
    return pm.make_recorders(run_dir, args, cfg, skip=off)


def run_command(args: argparse.Namespace) -> int:
    from alife import config as config_mod
    from alife.simulation import Simulation

    if getattr(args, "plugin_error", None) is not None:  # a command-line plugin failed (RunParser)
        raise args.plugin_error
    if args.help_world:
        print(config_mod.describe())
        return 0
    if args.watch:  # refuse before any run folder is made
        from alife.viewer.live import require_display
        require_display()
    if args.steps is not None and args.steps < 0:
        raise UserError(f"--steps must be >= 0, got {args.steps}")
    if args.checkpoint_every < 0 or args.keep_checkpoints < 0:
        raise UserError("--checkpoint-every and --keep-checkpoints must be >= 0")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be >= 1, got {args.threads}")
    if args.resume is not None:
        return resume_command(args)
    if args.steps is None:
        args.steps = 2000
    overrides = parse_overrides(args.overrides)
    cfg = config_mod.load(args.world, overrides)
    if cfg.task is not None:  # a [task] table: generational mode
        from alife.generational.cli import run_task_command
        return run_task_command(args, cfg, recorders=lambda run_dir: make_recorders(run_dir, args, cfg))
    seed = cfg.seed if args.seed is None else args.seed
    if seed < 0:
        raise ConfigError("--seed", "seed", f"expected a value >= 0, got {seed}")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.out) if args.out else Path("replays") / f"{cfg.name}-s{seed}-{stamp}"
    if run_dir.exists() and any(run_dir.iterdir()):
        raise UserError(f"run folder {str(run_dir)!r} already exists and is not empty; pick another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    load, blocked = split_plugin_args(args.modules)
    recorders = make_recorders(run_dir, args, cfg)
    sim = Simulation(cfg, seed=seed, device=args.device, modules=load, blocked=blocked,
                     plugins_dirs=args.plugins_dir, plugins=recorders, run_dir=run_dir)
    write_run_record(run_dir, args, cfg, seed)  # once the world has started: a bad one leaves none
    on_step = None
    if args.watch:
        from alife.viewer.live import LiveViewer
        on_step = LiveViewer(sim).update
    set_threads(sim, args.threads)
    summary = run_loop(sim, args.steps, progress=not args.no_progress, on_step=on_step,
                       checkpoint_every=args.checkpoint_every, run_dir=run_dir,
                       keep_checkpoints=args.keep_checkpoints, recorders=recorders)
    summary.update(run_dir=str(run_dir), world_source=cfg.source)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print_summary(summary)
    return 0


#: what a run folder keeps so that ``--resume`` needs nothing else: the world text and the run's
#: own arguments (seed, overrides, plugins, recorder flags, target steps)
RUN_RECORD = "run.json"


def write_run_record(run_dir: Path, args: argparse.Namespace, cfg: Any, seed: int) -> None:
    (run_dir / "world.toml").write_text(cfg.text or "")
    saved = {k: v for k, v in vars(args).items()
             if k not in ("func", "resume") and isinstance(v, (str, int, float, bool, list, type(None)))}
    saved["plugins_dir"] = [str(Path(d).resolve()) for d in args.plugins_dir]
    record = {"seed": seed, "world_source": cfg.source, "world_base_dir": str(Path(cfg.base_dir).resolve()),
              "args": saved}
    tmp = run_dir / (RUN_RECORD + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(run_dir / RUN_RECORD)


def _read_run_record(run_dir: Path) -> dict[str, Any]:
    from alife.errors import FileFormatError

    path = run_dir / RUN_RECORD
    if not path.is_file():
        raise FileFormatError(str(run_dir), f"not an alife run folder (no {RUN_RECORD}); give the folder "
                              "`alife run --out` wrote")
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise FileFormatError(str(path), f"unreadable run record ({type(e).__name__}: {e})") from None
    if (not isinstance(record, dict) or not isinstance(record.get("args"), dict)
            or not isinstance(record.get("seed"), int)):
        raise FileFormatError(str(path), "run record lacks its seed or arguments")
    return record


def resume_command(args: argparse.Namespace) -> int:
    """``alife run --resume RUN_DIR``: continue from the run's last checkpoint (or, when it was
    killed before its first one, from step 0), appending to its lineage and replay files."""
    from alife import checkpoint as ckpt_mod
    from alife.errors import FileFormatError

    target = Path(args.resume)
    if not target.exists():
        raise UserError(f"--resume: {str(target)!r} does not exist")
    explicit = None
    if target.is_file():
        explicit, target = target, target.parent
        if target.name == ckpt_mod.CHECKPOINT_DIR:
            target = target.parent
    run_dir = target
    given = [flag for flag, v in (("a world file", args.world), ("--seed", args.seed),
                                  ("--set", args.overrides), ("-p", args.modules),
                                  ("--plugins-dir", args.plugins_dir), ("--out", args.out)) if v]
    if given:
        raise UserError(f"--resume continues a run exactly as it was started; do not give {', '.join(given)}")
    record = _read_run_record(run_dir)
    saved = argparse.Namespace(**{**vars(args), **record["args"]})
    steps = args.steps if args.steps is not None else int(record["args"].get("steps") or 2000)
    every = args.checkpoint_every or int(record["args"].get("checkpoint_every") or 0)
    path = explicit or ckpt_mod.latest_checkpoint(run_dir)
    load, blocked = split_plugin_args(saved.modules)
    made: list[Any] = []

    def recorders(cfg: Any) -> list[Any]:
        made.extend(make_recorders(run_dir, saved, cfg))
        return made
    if path is None:  # killed before its first checkpoint: start again from the world text
        sim, pop_range = _restart(run_dir, record, saved, load, blocked, recorders), None
    else:
        ckpt = ckpt_mod.open_checkpoint(path)
        if int(ckpt.meta["seed"]) != record["seed"]:
            raise FileFormatError(str(path), f"checkpoint of a run with seed {ckpt.meta['seed']}, not this "
                                  f"run's seed {record['seed']}")
        if ckpt.step > steps:
            raise UserError(f"{path}: the run is already at step {ckpt.step}, past --steps {steps}; "
                            "give a larger --steps")
        run = ckpt.meta.get("run") or {}
        pop_range = (int(run["population_min"]), int(run["population_max"])) if "population_min" in run else None
        ckpt_mod.prune_checkpoints(run_dir, 0)
        sim = ckpt_mod.restore(ckpt, device=args.device, modules=load, blocked=blocked,
                               plugins_dirs=saved.plugins_dir, run_dir=run_dir, plugin_factory=recorders)
    record["args"]["steps"] = steps
    record["args"]["checkpoint_every"] = every
    tmp = run_dir / (RUN_RECORD + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(run_dir / RUN_RECORD)
    set_threads(sim, args.threads)
    summary = run_loop(sim, steps, progress=not args.no_progress, checkpoint_every=every,
                       run_dir=run_dir, keep_checkpoints=args.keep_checkpoints, pop_range=pop_range,
                       recorders=made)
    summary.update(run_dir=str(run_dir), world_source=sim.config.source)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print_summary(summary)
    return 0


def _restart(run_dir: Path, record: dict[str, Any], saved: argparse.Namespace, load: list[str],
             blocked: list[str], recorders: Callable[[Any], list[Any]]) -> Any:
    import tomllib

    from alife import config as config_mod
    from alife.errors import FileFormatError
    from alife.simulation import Simulation

    path = run_dir / "world.toml"
    try:
        text = path.read_text()
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise FileFormatError(str(path), f"cannot read the run's world ({type(e).__name__}: {e})") from None
    overrides = parse_overrides(saved.overrides)
    overrides["seed"] = record["seed"]
    cfg = config_mod.from_dict(data, record.get("world_source", str(path)), text,
                               record.get("world_base_dir", str(run_dir)), overrides)

    def from_zero(sim: Any) -> None:
        sim.resume_step = 0

    return Simulation(cfg, device=saved.device, modules=load, blocked=blocked,
                      plugins_dirs=saved.plugins_dir, plugins=recorders(cfg), run_dir=run_dir,
                      before_start=from_zero)


def run_loop(sim: Any, steps: int, progress: bool = True,
             on_step: Callable[[], bool] | None = None, *, checkpoint_every: int = 0,
             run_dir: Path | None = None, keep_checkpoints: int = 3,
             pop_range: tuple[int, int] | None = None, recorders: list[Any] = ()) -> dict[str, Any]:
    """Step ``sim`` until ``steps`` (counted from step 0) or extinction; return the summary.

    ``on_step`` (the live viewer) is called after every step; returning False stops the run.
    With a ``run_dir``, a checkpoint is saved every ``checkpoint_every`` steps (when > 0) and at
    the end of a run that was not stopped by an error. ``pop_range`` carries a resumed run's
    population min and max so far. Before a checkpoint at step S, each of ``recorders`` with a
    ``commit(step)`` method (the lineage writer) commits through step S - 1, so that a resume from
    that checkpoint finds every earlier record on disk. On an error the simulation is still closed (recorders close
    their files in ``alife_sim_end``) and the error that stopped the run is the one raised."""
    from tqdm import tqdm

    from alife.checkpoint import checkpoint_path, prune_checkpoints, save_checkpoint

    t0 = time.perf_counter()
    first = sim.step_count
    pmin = pmax = sim.population
    if pop_range is not None:
        pmin, pmax = min(pmin, pop_range[0]), max(pmax, pop_range[1])
    bar = tqdm(total=steps, initial=sim.step_count, unit="step", disable=not progress,
               dynamic_ncols=True, file=sys.stderr)
    extinct = sim.population == 0
    saved_at = -1

    def checkpoint() -> None:
        nonlocal saved_at
        if run_dir is not None and saved_at != sim.step_count:
            for r in recorders:
                if callable(getattr(r, "commit", None)):
                    r.commit(sim.step_count - 1)
            save_checkpoint(sim, checkpoint_path(run_dir, sim.step_count),
                            run={"population_min": pmin, "population_max": pmax})
            prune_checkpoints(run_dir, keep_checkpoints)
            saved_at = sim.step_count

    try:
        while not extinct and sim.step_count < steps:
            sim.step()
            pop = sim.population
            pmin, pmax = min(pmin, pop), max(pmax, pop)
            bar.update(1)
            if progress and sim.step_count % 25 == 0:
                t = sim.totals
                by = sim.population_by_strategy() if getattr(sim, "mixed_role", None) else {}
                bar.set_postfix(pop=pop, species=sim.species_count(), births=t["births"],
                                deaths=t["deaths"], **by, refresh=False)
            if checkpoint_every and sim.step_count % checkpoint_every == 0:
                checkpoint()
            if pop == 0:
                extinct = True
                break
            if on_step is not None and on_step() is False:
                break
        checkpoint()
    finally:
        bar.close()
        if sys.exc_info()[1] is None:
            sim.close()
        else:  # keep the error that stopped the run; still let every recorder close its files
            try:
                sim.close()
            except Exception as e:
                print(f"alife: warning: closing after the error also failed: {e}", file=sys.stderr)
    wall = time.perf_counter() - t0
    return summarize(sim, wall, pmin, pmax, extinct, steps_run=sim.step_count - first)


def summarize(sim: Any, wall: float, pmin: int, pmax: int, extinct: bool,
              steps_run: int | None = None) -> dict[str, Any]:
    """``steps_run``: steps this process ran (a resumed run's throughput counts only those)."""
    import numpy as np

    sp = sim.world.species[sim.world.alive].cpu().numpy()
    ids, counts = np.unique(sp, return_counts=True)
    t = sim.totals
    return {
        "world": sim.config.name,
        "steps": sim.step_count,
        "wall_time_s": round(wall, 3),
        "steps_per_s": round((sim.step_count if steps_run is None else steps_run) / wall, 1) if wall > 0 else None,
        "seed": sim.seed,
        "device": str(sim.device),
        "extinct": extinct,
        "population": {"final": sim.population, "min": pmin, "max": pmax,
                       "capacity": sim.config.world.capacity},
        "species": {"final": len(ids), "ever": int(sim.world.species_founder.shape[0]),
                    "final_population_by_species": {str(int(i)): int(c) for i, c in zip(ids, counts, strict=True)}},
        "births": t["births"],
        "births_refused_capacity": t["births_refused_capacity"],
        "extinctions": t.get("extinctions", 0),
        "reseeded": t.get("reseeded", 0),
        "deaths": t["deaths"],
        "deaths_by_cause": {k[len("deaths_"):]: v for k, v in t.items() if k.startswith("deaths_")},
        "strategies": dict(sim.hooks.chosen),
        **_by_strategy(sim),
        "plugins": [{"name": p.name, "origin": p.origin, "active": p.active, "hooks": p.hooks}
                    for p in sim.hooks.plugins()],
        "versions": versions(),
    }


def _by_strategy(sim: Any) -> dict[str, Any]:
    """``population_by_strategy`` for a world with a ``[mixture]``: final counts, and the series
    the simulation sampled (``step`` and one list per strategy)."""
    if not getattr(sim, "mixed_role", None):
        return {}
    names = list(sim.strategy_names)
    rows = sim.strategy_series
    series = {"step": [r[0] for r in rows], **{n: [r[1 + i] for r in rows] for i, n in enumerate(names)}}
    return {"population_by_strategy": {
        "role": sim.mixed_role, "final": sim.population_by_strategy(),
        "min": {n: min(series[n], default=0) for n in names}, "max": {n: max(series[n], default=0) for n in names},
        "every": sim.strategy_series_every, "series": series}}


def print_summary(s: dict[str, Any]) -> None:
    pop = s["population"]
    print(f"world {s['world']}  seed {s['seed']}  device {s['device']}")
    print(f"steps {s['steps']} in {s['wall_time_s']:.1f} s ({s['steps_per_s']} steps/s)"
          + ("  -- the population went extinct" if s["extinct"] else ""))
    print(f"population: final {pop['final']}, min {pop['min']}, max {pop['max']} (capacity {pop['capacity']})")
    top = sorted(s["species"]["final_population_by_species"].items(), key=lambda kv: -kv[1])[:8]
    print(f"species: {s['species']['final']} alive, {s['species']['ever']} ever; largest: "
          + ", ".join(f"#{k}: {v}" for k, v in top))
    if "population_by_strategy" in s:
        pbs = s["population_by_strategy"]
        print(f"population by {pbs['role']} strategy: final "
              + ", ".join(f"{n} {c} (min {pbs['min'][n]}, max {pbs['max'][n]})" for n, c in pbs["final"].items()))
    causes = ", ".join(f"{k} {v}" for k, v in s["deaths_by_cause"].items() if v)
    print(f"births {s['births']} (refused at capacity {s['births_refused_capacity']}); deaths {s['deaths']} ({causes})")
    print(f"run folder: {s['run_dir']}")
