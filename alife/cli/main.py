"""The ``alife`` command line: a thin layer over the Python API.

Each subcommand lives in its own module under ``alife.cli`` and exposes ``register(subparsers)``,
which adds an ``argparse`` parser with ``set_defaults(func=...)``; ``func(args)`` returns the exit
code. Errors a user can act on (:class:`alife.errors.UserError`, ``ConfigError``, ``PluginError``)
print one line and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import re
import signal
import sys
import threading

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


class _Terminated(KeyboardInterrupt):
    """SIGTERM before a command installs its own handling (start-up: imports, parsing)."""

    signum = signal.SIGTERM


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    """Run one command. Ctrl-C (SIGINT) exits 130 and SIGTERM 143, at any moment, start-up
    included: ``alife run`` stops after the step it is in and saves a checkpoint first."""
    old = None
    if threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(argv)
    except KeyboardInterrupt as e:  # start-up, or a command without its own handling
        return _interrupted(e)
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def _interrupted(e: BaseException) -> int:
    signum = int(getattr(e, "signum", signal.SIGINT))
    print(f"alife: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
    return 128 + signum


def _main(argv: list[str] | None) -> int:
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
    except KeyboardInterrupt as e:
        return _interrupted(e)
    except BrokenPipeError:
        # the reader of our output went away (`alife lineage FILE species | head`): stop quietly,
        # and point stdout at devnull so the interpreter's final flush does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports it
    except OSError as e:
        # the disk filled up, a folder became unwritable: one line naming the file, no traceback
        if e.errno in _ENVIRONMENT or (e.errno is None and _h5_errno(e) in _ENVIRONMENT):
            print(f"alife: error: {_os_message(e)}", file=sys.stderr)
            return 2
        raise


#: errors of the machine rather than of alife: reported in one line
_ENVIRONMENT = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM,
                errno.EIO, errno.ELOOP, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.EMFILE}


def _h5_errno(e: OSError) -> int | None:
    """h5py reports a failed write as an OSError without errno; the C errno is in its text."""
    m = re.search(r"errno = (\d+)", str(e))
    return int(m.group(1)) if m else None


def _os_message(e: OSError) -> str:
    code = e.errno if e.errno is not None else _h5_errno(e)
    why = os.strerror(code) if code is not None else str(e).splitlines()[0][:200]
    where = e.filename
    if where is None:
        m = re.search(r"filename = '([^']*)'", str(e))
        where = m.group(1) if m else None
    return f"{where}: {why}" if where else why


if __name__ == "__main__":
    sys.exit(main())
