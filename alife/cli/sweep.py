"""``alife sweep WORLD... --seeds N``: worlds x seeds x overrides, each run into its own folder under
one sweep folder, locally (``--jobs N``) or on Ray (``--ray [ADDRESS]``), gathered into one table
of means with 95% intervals (:mod:`alife.sweep`). Run again to resume: finished runs are skipped."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from alife.errors import UserError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sweep", help="run worlds x seeds x overrides and gather one table with 95% intervals",
        description="Run every world with every seed (and every combination of --vary values), each "
                    "into OUT/runs/<name>/, in local processes or on Ray; then gather summary.json "
                    "fields (and assay results with --assay) into OUT/table.csv, table.md and "
                    "table.png: means over seeds with 95%% t-intervals. An interrupted sweep resumes: "
                    "run the same command again; runs with a summary.json and no failed.json are skipped.")
    p.add_argument("worlds", nargs="+", metavar="WORLD", help="world files or embedded world names")
    p.add_argument("--seeds", type=int, default=4, help="seeds per world and setting (default 4)")
    p.add_argument("--seed-start", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--steps", type=int, default=2000, help="steps per run (default 2000)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a world key in every run (repeatable)")
    p.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="one axis of a grid of overrides (repeatable: the product of the axes)")
    p.add_argument("-p", dest="modules", action="append", default=[], metavar="NAME",
                   help="plugin module for every run (repeatable)")
    p.add_argument("--plugins-dir", action="append", default=[], metavar="DIR")
    p.add_argument("-o", "--out", help="sweep folder (default sweeps/sweep-<time>)")
    p.add_argument("--jobs", type=int, default=max(1, (_cpus() or 2) // 2),
                   help="runs at a time in local processes (default: half the CPUs)")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="run on Ray: a local cluster (ray.init(num_cpus=--ray-cpus)), or the cluster at "
                        "ADDRESS, whose workers must see the sweep folder")
    p.add_argument("--ray-cpus", type=int, default=2, help="CPUs of a local Ray cluster (default 2)")
    p.add_argument("--field", action="append", default=[], metavar="PATH",
                   help="summary.json field to gather, dotted (repeatable; default: population, species, "
                        "births, deaths, causes, extinct, mating counters)")
    p.add_argument("--assay", action="store_true",
                   help="also assay each run (evolved vs ancestral) and gather its relative fitness")
    p.add_argument("--assay-steps", type=int, default=1000, help="steps of each assay world (default 1000)")
    p.add_argument("--assay-replicates", type=int, default=3, help="assay replicates per run (default 3)")
    p.add_argument("--gather", action="store_true", help="only gather the finished runs into the tables")
    p.set_defaults(func=sweep_command)


def _cpus() -> int | None:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def sweep_command(args: argparse.Namespace) -> int:
    from alife import sweep as S

    if args.seeds < 1 or args.steps < 1 or args.jobs < 1:
        raise UserError("--seeds, --steps and --jobs must be >= 1")
    out = Path(args.out or f"sweeps/sweep-{time.strftime('%Y%m%d-%H%M%S')}")
    run_args = [x for m in args.modules for x in ("-p", m)] + [x for d in args.plugins_dir for x in ("--plugins-dir", d)]
    assay_args = (["--steps", str(args.assay_steps), "--replicates", str(args.assay_replicates)]
                  + run_args) if args.assay else None
    seeds = S.seeds_of(args.seeds, args.seed_start)
    fields = args.field or None
    if args.gather:
        if not (out / "sweep.json").is_file():
            raise UserError(f"{out}: no sweep.json to gather")
        runs, table = S.gather(out, fields)
        paths = S.write_tables(out, runs, table, fields or S.DEFAULT_FIELDS)
        print((out / "table.md").read_text())
        print("wrote " + ", ".join(str(p) for p in paths.values()))
        return 0
    runs = S.plan(args.worlds, seeds, args.steps, args.overrides, args.vary, run_args)
    where = ("Ray " + ("local cluster" if args.ray == "local" else args.ray)) if args.ray else f"{args.jobs} local processes"
    print(f"sweep {out}: {len(runs)} runs ({len(args.worlds)} worlds x {len(runs) // max(1, len(args.worlds) * len(seeds))} "
          f"settings x {len(seeds)} seeds, {args.steps} steps) on {where}", flush=True)
    t0 = time.perf_counter()

    def report(r: dict[str, Any]) -> None:
        state = ("ran" if r["ran"] else "assayed") if r["ok"] else "FAILED"
        print(f"  {r['name']}: {state} in {r['seconds']:.0f} s" + (f": {r['error']}" if r["error"] else ""),
              flush=True)

    res = S.sweep(args.worlds, seeds, args.steps, out, overrides=args.overrides, vary=args.vary, run_args=run_args,
                  jobs=args.jobs, ray=args.ray is not None, ray_address=None if args.ray in (None, "local") else args.ray,
                  ray_cpus=args.ray_cpus, assay_args=assay_args, fields=fields, report=report)
    print(f"{res['planned']} runs: {res['skipped']} already finished, {len(res['results'])} run now, "
          f"{len(res['failed'])} failed ({time.perf_counter() - t0:.0f} s)")
    print((out / "table.md").read_text())
    print("wrote " + ", ".join(str(p) for p in res["paths"].values()))
    if res["failed"]:
        print("failed runs (logs in " + str(out / "logs") + "): " + ", ".join(r["name"] for r in res["failed"]))
        return 1
    return 0
