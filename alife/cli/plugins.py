"""``alife plugins``: each plugin, where it came from, the strategy or recorder it offers, the
hooks it implements."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("plugins", help="list plugins, their origin, strategies, recorders and hooks")
    p.add_argument("world", nargs="?", default=None, help="world file whose plugins and strategies to resolve")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a world key as `alife run --set` does, e.g. --set strategies.mutation=NAME")
    p.add_argument("-p", dest="modules", action="append", default=[], metavar="NAME",
                   help="load plugin module NAME; -p no:NAME blocks the plugin NAME (as `alife run`)")
    p.add_argument("--plugins-dir", action="append", default=[], metavar="DIR",
                   help="load every .py file in DIR as a plugin (as `alife run`)")
    p.add_argument("--hooks", action="store_true", help="list every hook a plugin can implement")
    p.set_defaults(func=plugins_command)


def plugins_command(args: argparse.Namespace) -> int:
    from alife import config as config_mod
    from alife.cli.run import cli_plugins, parse_overrides, split_plugin_args
    from alife.plugins import hookspecs
    from alife.plugins.manager import build_manager

    if args.hooks:
        for name in sorted(n for n in dir(hookspecs) if n.startswith("alife_")):
            fn = getattr(hookspecs, name)
            first = (fn.__doc__ or "").strip().splitlines()[0]
            kind = "decision" if name in hookspecs.ROLE_HOOKS.values() else "event"
            print(f"{name:28s} {kind:9s} {first}")
        return 0
    cfg = config_mod.load(args.world, parse_overrides(args.overrides))
    load, blocked = split_plugin_args(args.modules)
    pm = build_manager(cfg.strategies, world_plugins=cfg.plugins, world_base_dir=cfg.base_dir,
                       world_source=cfg.source, modules=load, plugins_dirs=args.plugins_dir, blocked=blocked)
    # the command line's plugins: the built-in recorders join the simulation's plugins here
    cli = cli_plugins(args.modules, args.plugins_dir)
    recorder_of = {plugin: name for name, plugin in cli.recorder_names().items()}
    listed = pm.plugins()
    names = {info.name for info in listed}
    for info in [*listed, *(i for i in cli.plugins() if i.name not in names)]:
        roles = ", ".join(f"{r}={n}" for r, n in info.strategies.items())
        state = "" if info.active else "  (inactive: not chosen)"
        print(f"{info.name}{state}")
        print(f"    origin: {info.origin}")
        if roles:
            print(f"    strategy: {roles}")
        if info.name in recorder_of:
            print(f"    recorder: {recorder_of[info.name]}")
        print(f"    hooks: {', '.join(info.hooks) or '-'}")
    print("strategies in use: " + ", ".join(f"{r}={n}" for r, n in pm.chosen.items()))
    return 0
