"""``alife run`` for a world with a ``[task]`` table: a generational run and its run folder.

The run folder holds ``summary.json`` (held-out score, generations, environment steps, wall
time, per-generation history), ``population.h5`` (the final genomes, their training fitness and
the layout table; no pickle), and ``lineage.h5`` when the lineage recorder is installed.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alife.config import WorldConfig


def write_population(path: Path, run: Any) -> None:
    """Final genomes, ids, training fitness and the layout table, as HDF5 arrays plus JSON."""
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("genomes", data=run.world.genomes.cpu().numpy())
        f.create_dataset("ids", data=run.world.ids.cpu().numpy())
        f.create_dataset("training_fitness", data=run.fitness.cpu().numpy())
        f.attrs["layout"] = json.dumps(run.layout.to_table())
        f.attrs["best_row"] = run.best_index()
        f.attrs["env_id"] = run.task.env_id


def run_task_command(args: argparse.Namespace, cfg: WorldConfig, *, seed: int, run_dir: Path,
                     recorders: Callable[[Path], list[Any]], discard: Callable[[], None],
                     marked: Callable[[Any, Callable[[], dict[str, Any]]], dict[str, Any]]) -> int:
    """A generational run into its run folder, which ``alife run`` has made (whole, and locked
    for the run, as for a world). ``recorders(run_dir)`` makes the run's recorders (the lineage
    recorder; a replay is for ecology worlds only); ``discard()`` removes the folder of a run that
    never started; ``marked(run, loop)`` runs ``loop`` and writes ``summary.json`` when it ends,
    or ``failed.json`` when it stops on an error."""
    from alife.generational.runner import TaskRun
    from alife.plugins.manager import split_plugin_args
    from alife.provenance import versions

    load, blocked = split_plugin_args(args.modules)
    try:  # a run that never started leaves no folder
        run = TaskRun(cfg, seed=seed, device=args.device, modules=load, blocked=blocked,
                      plugins_dirs=args.plugins_dir, plugins=recorders(run_dir), run_dir=run_dir)
    except BaseException:
        discard()
        raise

    def loop() -> dict[str, Any]:
        summary = run.run(progress=not args.no_progress)
        write_population(run_dir / "population.h5", run)
        summary.update(versions=versions())
        return summary

    summary = marked(run, loop)
    print_task_summary(summary)
    return 0


def print_task_summary(s: dict[str, Any]) -> None:
    print(f"task {s['env_id']}  world {s['world']}  seed {s['seed']}  device {s['device']}")
    print(f"{s['generations']} generations of {s['population']}, {s['env_steps']} training env steps, "
          f"{s['wall_time_s']:.1f} s wall")
    if s["threshold"] is not None:
        who = ("the population mean" if s["threshold_on"] == "population" else
               f"the best genome by training fitness (on >= {s['confirm_episodes']} episodes)")
        if s["reached_threshold"]:
            print(f"{who} reached {s['threshold']:g} at generation {s['generations_to_threshold']} "
                  f"after {s['env_steps_to_threshold']} env steps, {s['wall_to_threshold_s']:.2f} s")
        else:
            print(f"{who} never reached {s['threshold']:g} (best training fitness {s['best_training_fitness']:.1f})")
    print(f"held-out: best genome by training fitness scores {s['heldout_mean']:.1f} "
          f"+- {s['heldout_std']:.1f} over {s['heldout_episodes']} unseen seeded episodes")
    print(f"run folder: {s['run_dir']}")
