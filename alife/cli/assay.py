"""``alife assay [RUN ...] [--pool NAME=SOURCE ...]``: competition and common-garden assays
(:mod:`alife.assay`). ``alife assay RUN`` competes the run's evolved genomes (its last
checkpoint's living) against its ancestors (the lineage file's roots) in fresh worlds of the run's
world."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from alife.errors import UserError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "assay", help="competition and common-garden assays: evolved vs ancestral, strategy vs strategy",
        description="Place genome pools (from checkpoints or lineage files) in fresh replicate worlds, "
                    "follow each pool's descent, and report each pool's share over time and its "
                    "relative fitness with 95%% intervals over replicates (Markdown, CSV, JSON, PNG). "
                    "Without --pool, each RUN is an assay of its evolved genomes (last checkpoint) "
                    "against its ancestors (the lineage file's roots).")
    p.add_argument("runs", nargs="*", metavar="RUN", help="run folders (one assay each without --pool)")
    p.add_argument("--pool", action="append", default=[], metavar="NAME=SOURCE",
                   help="a pool: NAME=PATH[@step=N|first|last|all (default last),species=A+B,strategy=NAME]; PATH a run folder "
                        "(its last checkpoint, or with selectors its lineage file), a checkpoint or a "
                        "lineage.h5 (repeatable; the first is the reference unless --reference)")
    p.add_argument("--reference", help="the pool others are measured against (default: the first)")
    p.add_argument("--world", help="world file (or embedded name) of the assay worlds; default: the run's own "
                        "world (its plugin list is never imported: name plugins here, with -p or --plugins-dir)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the assay world (repeatable)")
    p.add_argument("-p", dest="modules", action="append", default=[], metavar="NAME",
                   help="load plugin module NAME (repeatable)")
    p.add_argument("--plugins-dir", action="append", default=[], metavar="DIR")
    p.add_argument("--mode", choices=("mix", "mono"), default="mix",
                   help="mix: all pools in each world (competition; default); mono: each pool alone in "
                        "worlds of the same seeds (common garden)")
    p.add_argument("--foraging", action="store_true",
                   help="nobody reproduces: compare survival and energy gathered")
    p.add_argument("--replicates", type=int, default=5, help="replicate worlds (seeds SEED..SEED+N-1; default 5)")
    p.add_argument("--steps", type=int, default=2000, help="steps per world (default 2000)")
    p.add_argument("--every", type=int, default=None, help="steps between share samples (default steps/50)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first replicate (default 0)")
    p.add_argument("--agents", type=int, default=None, help="initial agents per world (default: the world's)")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    p.add_argument("-o", "--out", help="output folder (default RUN/assay, or assay-<time> for several runs)")
    p.add_argument("--quiet", action="store_true", help="no per-replicate lines")
    p.set_defaults(func=assay_command)


def assay_command(args: argparse.Namespace) -> int:
    from alife import assay as A
    from alife import config as config_mod
    from alife.config import ConfigError
    from alife.plugins.manager import PluginError, split_plugin_args

    if args.replicates < 1 or args.steps < 1 or (args.every is not None and args.every < 1):
        raise UserError("--replicates, --steps and --every must be >= 1")
    if not args.runs and not args.pool:
        raise UserError("give a run folder (alife assay RUN) or pools (--pool NAME=SOURCE)")
    for r in args.runs:
        if not Path(r).is_dir():
            raise UserError(f"{r}: not a run folder")
    overrides = dict(config_mod.parse_override(x) for x in args.overrides)
    load, blocked = split_plugin_args(list(args.modules))
    say = None if args.quiet else (lambda m: print("  " + m, flush=True))

    def world_of(run: str | None) -> Any:
        if args.world is not None:
            return config_mod.load(args.world)
        if run is None:
            raise UserError("--world is needed when no RUN gives the world")
        return A.run_world(run)

    jobs: list[tuple[str, list[Any], Any]] = []
    if args.pool:
        pools = [A.parse_pool(s) for s in args.pool]
        first = args.runs[0] if args.runs else _run_of(args.pool[0])
        jobs.append(("assay", pools, world_of(first)))
    else:
        for r in args.runs:
            jobs.append((Path(r).resolve().name, A.run_pools(r), world_of(r)))
    if args.out:
        out = Path(args.out)
    elif len(args.runs) == 1:
        out = Path(args.runs[0]) / "assay"
    else:
        out = Path(f"assay-{time.strftime('%Y%m%d-%H%M%S')}")
    combined = []
    for label, pools, world in jobs:
        names = [p.name for p in pools]
        ref = 0
        if args.reference is not None:
            if args.reference not in names:
                raise UserError(f"--reference {args.reference!r} is not a pool ({', '.join(names)})")
            ref = names.index(args.reference)
        print(f"{label}: " + "; ".join(p.describe() for p in pools), flush=True)
        t0 = time.perf_counter()
        try:
            res = A.assay(pools, world, replicates=args.replicates, steps=args.steps, every=args.every,
                          seed=args.seed, mode=args.mode, foraging=args.foraging, reference=ref, agents=args.agents,
                          overrides=overrides, modules=load, blocked=blocked, plugins_dirs=args.plugins_dir,
                          device=args.device, label=label, progress=say)
        except (ConfigError, PluginError) as e:
            if args.world is not None or args.modules or args.plugins_dir:
                raise
            raise UserError(f"{e}. A run folder's plugins are never loaded from it: give the run's world file "
                            "with --world (it names its plugins), or the plugins with -p / --plugins-dir") from None
        stem = "assay" if len(jobs) == 1 else f"assay-{label}"
        paths = res.write(out, stem)
        print(f"{res.method()} ({time.perf_counter() - t0:.0f} s)")
        print(res.markdown())
        print("wrote " + ", ".join(str(p) for p in paths.values()))
        combined.append(res.to_dict())
    if len(jobs) > 1:
        (out / "assays.json").write_text(json.dumps(combined, indent=1, default=A._json_default) + "\n")
        print(f"wrote {out / 'assays.json'}")
    return 0


def _run_of(spec: str) -> str | None:
    """The run folder a ``--pool`` source lies in (its world is the assay's default)."""
    path = Path(spec.partition("=")[2].partition("@")[0])
    for d in (path, path.parent, path.parent.parent):
        if d.is_dir() and ((d / "world.toml").is_file() or (d / "checkpoints").is_dir()):
            return str(d)
    return None
