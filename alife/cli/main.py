"""The ``alife`` command line: a thin layer over the Python API.

Each subcommand lives in its own module under ``alife.cli`` and exposes ``register(subparsers)``,
which adds an ``argparse`` parser with ``set_defaults(func=...)``; ``func(args)`` returns the exit
code. Errors a user can act on (:class:`alife.errors.UserError`, ``ConfigError``, ``PluginError``)
print one line and exit with status 2; no traceback.
"""

from __future__ import annotations

import os as _os
import signal as _signal
import sys as _sys


def _interrupted_while_starting(signum: int, frame: object) -> None:
    """Ctrl-C or SIGTERM while the command line is still importing (torch, numba, h5py: seconds on
    a loaded machine): one line and 130 or 143, never a traceback from inside an import."""
    _sys.stderr.write(f"alife: interrupted ({_signal.Signals(signum).name})\n")
    _sys.stderr.flush()
    _os._exit(128 + signum)


# the command line's own process (`python -m alife.cli.main`, `python -m alife`, the `alife`
# script): the early handlers cover the imports below; main() hands over to its own handling
_EARLY = __name__ == "__main__" or _os.path.basename(_sys.argv[0] if _sys.argv else "") in ("alife", "__main__.py")
if _EARLY:
    for _s in (_signal.SIGINT, _signal.SIGTERM):
        _signal.signal(_s, _interrupted_while_starting)

# ruff: noqa: E402 (the early signal handlers must come before the imports)
import argparse
import errno
import importlib
import os
import re
import signal
import sys
import threading
from typing import Any

from alife.config import ConfigError
from alife.errors import UserError
from alife.plugins.manager import PluginError

SUBCOMMANDS = ("alife.cli.run", "alife.cli.plugins", "alife.cli.lineage", "alife.cli.replay", "alife.cli.assay",
               "alife.cli.armsrace", "alife.cli.sweep")


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


#: signals that came after start-up, before a command took over its own handling (an ``alife
#: run`` reads them when its handling starts): a signal whose exception Python swallowed (one
#: that lands in a weakref callback or ``__del__``) is still acted on
pending_signals: list[int] = []


class _Signalled(KeyboardInterrupt):
    """SIGINT or SIGTERM after the imports, before a command installs its own handling."""

    #: recorded in :data:`pending_signals`: acted on even where this exception is swallowed
    recorded = True

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _signalled(signum: int, frame: object) -> None:
    if signum not in pending_signals:
        pending_signals.append(signum)
    raise _Signalled(signum)


def main(argv: list[str] | None = None) -> int:
    """Run one command. Ctrl-C (SIGINT) exits 130 and SIGTERM 143, at any moment, start-up
    included: ``alife run`` stops after the step it is in and saves a checkpoint first."""
    old: dict[int, Any] = {}
    pending_signals.clear()
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGINT, signal.SIGTERM):  # imports done: an exception again, not os._exit
            old[s] = signal.signal(s, _signalled)
    hook, sys.unraisablehook = sys.unraisablehook, _quiet_unraisable
    try:
        code = _main(argv)
        if pending_signals:  # swallowed where it landed, and the command ended without noticing
            raise _Signalled(pending_signals[0])
        return code
    except KeyboardInterrupt as e:  # start-up, or a command without its own handling
        code = _interrupted(e)
        if argv is None:
            # the command line's own process, its files closed: end with exactly 130 or 143, not
            # whatever an interrupted interpreter's clean-up would report
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code
    except _WriteFailed as e:
        print(f"alife: error: {e}", file=sys.stderr)
        if argv is None:
            # the command line's own process: HDF5 files left half-written by a failed write can
            # crash the library's clean-up at exit, after every file of ours is closed; skip it
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(2)
        return 2
    finally:
        sys.unraisablehook = hook
        pending_signals.clear()
        for s, h in old.items():
            signal.signal(s, h)


class _WriteFailed(Exception):
    """A write failed for a reason of the machine (disk full, a file too large, read-only)."""


def _quiet_unraisable(u: Any) -> None:
    """h5py objects freed after a failed write report the same failure again while being freed;
    the error that stopped the command is reported once, in one line. An interrupt raised inside
    a callback Python cannot raise from (a weakref callback, ``__del__``) is dropped there without
    a traceback: the run recorded the signal and stops on it after its next step."""
    if isinstance(u.exc_value, KeyboardInterrupt) and getattr(u.exc_value, "recorded", False):
        return
    if _env_errno(u.exc_value) is not None and "h5py" in repr(u.object) + str(getattr(u, "err_msg", "")):
        return
    sys.__unraisablehook__(u)


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
    except BrokenPipeError:
        # the reader of our output went away (`alife lineage FILE species | head`): stop quietly,
        # and point stdout at devnull so the interpreter's final flush does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports it
    except (UserError, ConfigError, PluginError, OSError, RuntimeError) as e:
        if _env_errno(e) is not None:
            raise _WriteFailed(_os_message(e)) from None
        if isinstance(e, (OSError, RuntimeError)) and not isinstance(e, PluginError):
            raise
        print(f"alife: error: {' '.join(str(e).splitlines())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        return _interrupted(e)


#: errors of the machine rather than of alife: reported in one line
_ENVIRONMENT = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM,
                errno.EIO, errno.ELOOP, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.EMFILE}


def _h5_errno(e: BaseException) -> int | None:
    """h5py reports a failed write as an OSError or RuntimeError without errno; the C errno is in
    its text."""
    m = re.search(r"errno = (\d+)", str(e))
    return int(m.group(1)) if m else None


def _env_errno(e: BaseException | None) -> int | None:
    """The errno of a failure of the machine in ``e`` or the errors it came from, or ``None``."""
    seen = 0
    while e is not None and seen < 8:
        code = getattr(e, "errno", None) if isinstance(e, OSError) else None
        code = code if code is not None else _h5_errno(e)
        if code in _ENVIRONMENT:
            return code
        e, seen = e.__cause__ or e.__context__, seen + 1
    return None


def _os_message(e: BaseException) -> str:
    """One line: the file and the reason (``/run/lineage.h5: No space left on device``)."""
    code = _env_errno(e)
    why = os.strerror(code) if code is not None else str(e).splitlines()[0][:200]
    where = getattr(e, "filename", None)
    if where is None:
        m = re.search(r"filename = '([^']*)'", str(e))
        where = m.group(1) if m else None
    if where is None and isinstance(e, (UserError, PluginError)):
        return " ".join(str(e).splitlines())[:300]
    return f"{where}: {why}" if where else why


if __name__ == "__main__":
    sys.exit(main())
