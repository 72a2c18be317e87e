"""``alife arms-race RUN``: a CIAO matrix of a run with two roles (:mod:`alife.armsrace`): each
role's living at every kept checkpoint played against the other role's in fresh arenas."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from alife.errors import UserError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "arms-race", help="CIAO: one role's agents from each checkpoint against the other role's from each checkpoint",
        description="Current individual vs ancestral opponents (Cliff & Miller 1995). The living of role A "
                    "(default: predators of the predator-prey rule) at each checkpoint of RUN meet the living "
                    "of role B (prey) at each checkpoint in fresh foraging arenas of the run's world (nobody "
                    "reproduces); writes a matrix of A's energy gain rate and B's survival (PNG, Markdown, "
                    "JSON) with the trends and their 95%% intervals over replicate arenas. Keep a run's "
                    "checkpoints with --keep-checkpoints 0.")
    p.add_argument("run", metavar="RUN", help="a run folder with checkpoints")
    p.add_argument("--checkpoint", action="append", default=[], metavar="FILE",
                   help="use these checkpoints (repeatable) instead of all of RUN's")
    p.add_argument("--moments", type=int, default=0, metavar="K",
                   help="use K of RUN's checkpoints, evenly spaced, first and last included (default: all)")
    p.add_argument("--role-array", default="predator-prey.role",
                   help="the per-slot plugin array holding each agent's role (default predator-prey.role)")
    p.add_argument("--roles", default="1,0", help="role codes of A and B in that array (default 1,0)")
    p.add_argument("--names", default="predators,prey", help="names of A and B (default predators,prey)")
    p.add_argument("--world", help="world file of the arenas (default: the run's own; its plugin list is never "
                        "imported: name plugins here, with -p or --plugins-dir)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the arena world (repeatable)")
    p.add_argument("-p", dest="modules", action="append", default=[], metavar="NAME")
    p.add_argument("--plugins-dir", action="append", default=[], metavar="DIR")
    p.add_argument("--replicates", type=int, default=3, help="arenas per cell (seeds SEED..SEED+N-1; default 3)")
    p.add_argument("--steps", type=int, default=300, help="steps per arena (default 300)")
    p.add_argument("--agents", type=int, default=None, help="agents per arena (default: the world's initial agents)")
    p.add_argument("--share", type=float, default=0.3, help="share of role A in each arena (default 0.3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    p.add_argument("-o", "--out", help="output folder (default RUN/arms-race)")
    p.add_argument("--quiet", action="store_true", help="no per-cell lines")
    p.set_defaults(func=arms_race_command)


def _pair(text: str, what: str, conv: Any) -> tuple[Any, Any]:
    parts = [x.strip() for x in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise UserError(f"--{what} {text!r}: expected two values joined by a comma")
    try:
        return conv(parts[0]), conv(parts[1])
    except ValueError:
        raise UserError(f"--{what} {text!r}: expected two {conv.__name__}s joined by a comma") from None


def arms_race_command(args: argparse.Namespace) -> int:
    from alife import armsrace as R
    from alife import assay as A
    from alife import config as config_mod
    from alife.checkpoint import list_checkpoints
    from alife.plugins.manager import split_plugin_args

    run = Path(args.run)
    if not run.is_dir():
        raise UserError(f"{run}: not a run folder")
    if args.replicates < 1 or args.steps < 1 or args.moments < 0:
        raise UserError("--replicates and --steps must be >= 1, --moments >= 0")
    roles = _pair(args.roles, "roles", int)
    names = _pair(args.names, "names", str)
    if args.checkpoint:
        moments = [Path(c) for c in args.checkpoint]
        for m in moments:
            if not m.is_file():
                raise UserError(f"--checkpoint {m}: no such file")
    else:
        moments = [p for _, p in list_checkpoints(run)]
        if len(moments) < 2:
            raise UserError(f"{run}: {len(moments)} checkpoint(s); an arms race needs two or more (run with "
                            "--checkpoint-every N --keep-checkpoints 0, or give --checkpoint files)")
        if args.moments and args.moments < len(moments):
            if args.moments < 2:
                raise UserError("--moments must be >= 2")
            idx = sorted({round(i * (len(moments) - 1) / (args.moments - 1)) for i in range(args.moments)})
            moments = [moments[i] for i in idx]
    world = config_mod.load(args.world) if args.world else A.run_world(run)
    overrides = dict(config_mod.parse_override(x) for x in args.overrides)
    load, _blocked = split_plugin_args(list(args.modules))
    agents = args.agents or int(config_mod.load(world, overrides).world.initial_agents)
    say = None if args.quiet else (lambda m: print("  " + m, flush=True))
    print(f"{run}: {len(moments)} moments, {len(moments) ** 2} cells x {args.replicates} arenas of {args.steps} "
          f"steps, {agents} agents", flush=True)
    t0 = time.perf_counter()
    res = R.ciao(moments, world, array=args.role_array, roles=roles, names=names,
                 replicates=args.replicates, steps=args.steps,
                 agents=agents, share_a=args.share, seed=args.seed, overrides=overrides, modules=load,
                 plugins_dirs=args.plugins_dir, device=args.device, progress=say)
    paths = res.write(Path(args.out) if args.out else run / "arms-race")
    print(f"({time.perf_counter() - t0:.0f} s)")
    print(res.markdown())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
