"""The ``alife`` command line: a thin layer over the Python API.

Each subcommand lives in its own module under ``alife.cli`` and exposes ``register(subparsers)``,
which adds an ``argparse`` parser with ``set_defaults(func=...)``; ``func(args)`` returns the exit
code. Errors a user can act on (:class:`alife.errors.UserError`, ``ConfigError``, ``PluginError``)
print one line and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from alife.config import ConfigError
from alife.errors import UserError
from alife.plugins.manager import PluginError

SUBCOMMANDS = ("alife.cli.run", "alife.cli.plugins", "alife.cli.lineage", "alife.cli.replay")


def build_parser() -> argparse.ArgumentParser:
    from alife import __version__

    parser = argparse.ArgumentParser(prog="alife", description="A plugin-based artificial-life ecosystem simulator.")
    parser.add_argument("--version", action="version", version=f"alife {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for modname in SUBCOMMANDS:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as e:
            if e.name == modname:  # a subcommand not built yet
                continue
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (UserError, ConfigError, PluginError) as e:
        print(f"alife: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("alife: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of our output went away (`alife lineage FILE species | head`): stop quietly,
        # and point stdout at devnull so the interpreter's final flush does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports it


if __name__ == "__main__":
    sys.exit(main())
