"""``alife run``: run a world, show progress, write a run folder with a summary."""

from __future__ import annotations

import argparse
import errno
import fcntl
import importlib
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alife.checkpoint import fsync_dir
from alife.config import ConfigError, parse_override
from alife.errors import UserError
from alife.plugins.manager import PluginError, PluginManager, split_plugin_args
from alife.provenance import versions
from alife.world.warmup import warm_for_run

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
    from alife.recording.replay import notice_replay_size
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
    seed = cfg.seed if args.seed is None else args.seed
    if seed < 0:
        raise ConfigError("--seed", "seed", f"expected a value >= 0, got {seed}")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_dir = (out_path(args.out) if args.out
               else Path("replays") / f"{safe_name(cfg.name)}-s{seed}-{stamp}")
    if cfg.task is not None:  # a [task] table: generational mode, in a run folder made the same way
        from alife.generational.cli import run_task_command

        with StopSignals():
            existed = run_dir.is_dir()
            lock = make_run_folder(run_dir, {"world.toml": cfg.text or ""})
            try:
                return run_task_command(args, cfg, seed=seed, run_dir=run_dir,
                                        recorders=lambda d: make_recorders(d, args, cfg),
                                        discard=lambda: _discard(run_dir, existed),
                                        marked=lambda run, loop: run_marked(run_dir, run, loop))
            finally:
                lock.release()
    with StopSignals() as stop:
        existed = run_dir.is_dir()
        lock = make_run_folder(run_dir, {"world.toml": cfg.text or "",
                                         RUN_RECORD: _run_record_text(args, cfg, seed)})
        try:
            try:  # a run that never started leaves no folder
                load, blocked = split_plugin_args(args.modules)
                recorders = make_recorders(run_dir, args, cfg)
                sim = Simulation(cfg, seed=seed, device=args.device, modules=load, blocked=blocked,
                                 plugins_dirs=args.plugins_dir, plugins=recorders, run_dir=run_dir)
            except BaseException:
                _discard(run_dir, existed)
                raise
            stop.immediate = False
            write_run_record(run_dir, args, cfg, seed, identity_of(sim))
            on_step = None
            if args.watch:
                from alife.viewer.live import LiveViewer
                on_step = LiveViewer(sim).update
            set_threads(sim, args.threads)
            notice_replay_size(sim, recorders, args.steps)
            warm_for_run(sim)  # compile kernels before the clock starts: not in the rate or the ETA
            summary = run_marked(run_dir, sim, lambda: run_loop(
                sim, args.steps, progress=not args.no_progress, on_step=on_step,
                checkpoint_every=args.checkpoint_every, run_dir=run_dir,
                keep_checkpoints=args.keep_checkpoints, recorders=recorders, stop=stop))
        finally:
            lock.release()
    if stop.signum is not None:  # it came after the last step: the run is whole, still say so
        raise Interrupted(stop.signum)
    summary.update(run_dir=str(run_dir), world_source=cfg.source)
    print_summary(summary)
    return 0


def identity_of(sim: Any) -> dict[str, Any]:
    from alife.checkpoint import identity_of as ident
    return ident(sim)


# ---------------------------------------------------------------------------------------- run folders
#: the lock file of a run folder: ``fcntl.flock``-ed exclusively by the process that runs in it
LOCK_FILE = ".lock"
#: written into a run folder whose run stopped on an error, so it is not taken for a finished one
FAILED = "failed.json"


def safe_name(name: str) -> str:
    """A world name as one path component: never ``..``, ``/`` or an absolute path, so the default
    run folder stays inside ``replays/``."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", name).lstrip(".") or "world"


def out_path(out: str) -> Path:
    """``--out``: a folder path, through a symlink to where it points; a loop is an error."""
    p = Path(out)
    try:
        if p.is_symlink():
            p = p.resolve(strict=False)
        p.resolve(strict=False)
    except (OSError, RuntimeError) as e:
        raise UserError(f"--out {out}: cannot follow the path ({_why(e)})") from None
    return p


def _why(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


class RunLock:
    """An exclusive ``fcntl.flock`` on a run folder's lock file, held for the life of the run (the
    kernel drops it when the process ends, however it ends)."""

    def __init__(self, fd: int, folder: Path):
        self.fd, self.folder = fd, folder

    @classmethod
    def take(cls, folder: Path) -> RunLock:
        path = folder / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UserError(f"{folder}: cannot open its lock file ({_why(e)})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            try:
                pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            except OSError:
                pid = "?"
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise UserError(f"run folder {str(folder)!r} is in use by another alife run (pid {pid}); "
                                "wait for it to end or pick another --out") from None
            raise UserError(f"{folder}: cannot lock it ({_why(e)})") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass
        return cls(fd, folder)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _stale_tmp(parent: Path, name: str) -> None:
    """Remove the temporary folders of runs killed while making ``name``: those whose lock no
    process holds."""
    for d in parent.glob(f".{name}.tmp-*"):
        try:
            lock = RunLock.take(d)
        except UserError:
            continue
        shutil.rmtree(d, ignore_errors=True)
        lock.release()


def make_run_folder(run_dir: Path, files: dict[str, str]) -> RunLock:
    """Make ``run_dir`` whole or not at all: its files are written into a locked temporary folder
    beside it, which is then renamed into place. Two runs racing for one folder: one rename wins,
    the other is refused. Returns the lock, held until the run ends."""
    try:
        if run_dir.exists() and not run_dir.is_dir():
            raise UserError(f"--out {str(run_dir)!r} exists and is not a folder")
        if run_dir.is_dir() and any(run_dir.iterdir()):
            raise UserError(f"run folder {str(run_dir)!r} already exists and is not empty; pick another --out")
        parent = run_dir.parent
        up = parent
        while not up.exists() and up != up.parent:
            up = up.parent
        if up.exists() and not up.is_dir():
            raise UserError(f"run folder {str(run_dir)!r}: cannot create it ({str(up)!r} is a file, not a folder)")
        parent.mkdir(parents=True, exist_ok=True)
        _stale_tmp(parent, run_dir.name)
        tmp = parent / f".{run_dir.name}.tmp-{os.getpid()}"
        tmp.mkdir()
    except OSError as e:
        raise UserError(f"run folder {str(run_dir)!r}: cannot create it ({_why(e)})") from None
    try:
        lock = RunLock.take(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    lock.folder = run_dir
    try:
        for name, text in files.items():
            _write_synced(tmp / name, text)
        os.rename(tmp, run_dir)
        fsync_dir(parent)
    except BaseException as e:
        lock.release()
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError) and e.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise UserError(f"run folder {str(run_dir)!r} was just taken by another run; pick another --out") from None
        if isinstance(e, OSError):
            raise UserError(f"run folder {str(run_dir)!r}: cannot create it ({_why(e)})") from None
        raise
    return lock


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _discard(run_dir: Path, existed: bool) -> None:
    """A run that never started: remove its folder (an empty folder given as ``--out`` stays)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    if existed:
        try:
            run_dir.mkdir(exist_ok=True)
        except OSError:
            pass


def run_marked(run_dir: Path, sim: Any, loop: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``loop``; a run that stops on an error leaves ``failed.json`` (the error, the step), so
    it is not mistaken for a finished one; a run that ends writes ``summary.json`` and drops any
    ``failed.json`` an earlier attempt left. An interrupted run leaves neither: its last
    checkpoint is its state, and ``--resume`` continues it."""
    try:
        summary = loop()
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        msg = " ".join(str(e).splitlines())[:500] or type(e).__name__
        try:
            _write_synced(run_dir / FAILED, json.dumps(
                {"error": msg, "type": type(e).__name__, "step": int(sim.step_count),
                 "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}, indent=2) + "\n")
        except OSError:
            pass
        raise
    summary["run_dir"] = str(run_dir)
    tmp = run_dir / "summary.json.tmp"
    _write_synced(tmp, json.dumps({**summary, "world_source": sim.config.source}, indent=2) + "\n")
    tmp.replace(run_dir / "summary.json")
    (run_dir / FAILED).unlink(missing_ok=True)
    return summary


# ---------------------------------------------------------------------------------------- signals
class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the run (``signum``); ``alife`` exits 128 + signum.

    The signal is recorded (:class:`StopSignals` keeps ``signum``) before this is raised, so where
    Python swallows it (a signal that lands inside a weakref callback or a ``__del__``), the run
    still stops after its next step: the command line then keeps the swallowed one quiet."""

    #: the run stops on this signal even if this exception is swallowed
    recorded = True

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """SIGINT and SIGTERM while a run is made and runs. During start-up (``immediate``) a signal
    raises :class:`Interrupted` at once; once the simulation stands it only sets ``signum``, which
    :func:`run_loop` reads after every step: the run stops there, commits its records, saves a
    checkpoint and raises. Nothing can swallow the interrupt inside a hook or a callback, because
    nothing is raised there. A second signal raises at once (the checkpoint save is atomic)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.immediate = True
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        from alife.cli.main import pending_signals
        if pending_signals:  # one came before this handling, and its exception was swallowed
            self.__exit__()
            self.signum = pending_signals[0]
            raise Interrupted(self.signum)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        if self.immediate or not first:
            raise Interrupted(signum)

    def __exit__(self, *exc: Any) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old.clear()


#: what a run folder keeps so that ``--resume`` needs nothing else: the world text and the run's
#: own arguments (seed, overrides, plugins, recorder flags, target steps)
RUN_RECORD = "run.json"


def _run_record_text(args: argparse.Namespace, cfg: Any, seed: int, ident: dict[str, Any] | None = None) -> str:
    saved = {k: v for k, v in vars(args).items()
             if k not in ("func", "resume") and isinstance(v, (str, int, float, bool, list, type(None)))}
    saved["plugins_dir"] = [str(Path(d).resolve()) for d in args.plugins_dir]
    record: dict[str, Any] = {"seed": seed, "world_source": cfg.source, "args": saved}
    if ident is not None:
        record["identity"] = ident
    return json.dumps(record, indent=2) + "\n"


def write_run_record(run_dir: Path, args: argparse.Namespace, cfg: Any, seed: int,
                     ident: dict[str, Any] | None = None) -> None:
    """``run.json``: the seed and the run's own arguments, and once the simulation stands, its
    identity (digests of the world, the genome layout and the plugin set). The plugins it names
    are a record of what was loaded, never loaded from it: ``--resume`` takes them from the user."""
    tmp = run_dir / (RUN_RECORD + ".tmp")
    _write_synced(tmp, _run_record_text(args, cfg, seed, ident))
    tmp.replace(run_dir / RUN_RECORD)


def _read_run_record(run_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``run.json``, checked: every saved argument of the type this ``alife run`` gives it."""
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
            or isinstance(record.get("seed"), bool) or not isinstance(record.get("seed"), int)
            or record["seed"] < 0):
        raise FileFormatError(str(path), "run record lacks its seed or arguments")
    if not isinstance(record.get("identity", {}), dict) or not isinstance(record.get("world_source", ""), str):
        raise FileFormatError(str(path), "run record's identity or world_source is of the wrong type")
    current = vars(args)
    nullable = {"steps": int, "threads": int, "device": str, "seed": int, "world": str, "out": str}
    for k, v in record["args"].items():
        want = nullable.get(k)
        if want is not None:
            ok = v is None or (isinstance(v, want) and not isinstance(v, bool))
        elif current.get(k) is not None:
            ok = type(v) is type(current[k]) or (type(current[k]) is float and type(v) is int)
            if ok and isinstance(v, list):
                ok = all(isinstance(x, str) for x in v)
        else:
            ok = isinstance(v, (str, int, float, bool, list, type(None)))
        if not ok:
            raise FileFormatError(str(path), f"args.{k}: {str(v)[:40]!r} is not what alife run saves there")
    for k in ("steps", "checkpoint_every", "keep_checkpoints"):
        v = record["args"].get(k)
        if isinstance(v, int) and v < 0:
            raise FileFormatError(str(path), f"args.{k}: must be >= 0, got {v}")
    return record


def _check_identity(path: Path, record: dict[str, Any], ckpt: Any, cfg: Any) -> None:
    """The checkpoint belongs to this run folder: its identity (world, layout, plugins) is the one
    ``run.json`` recorded."""
    from alife.checkpoint import identity_from_meta
    from alife.errors import FileFormatError

    want = record.get("identity") or {}
    if not want.get("digest"):
        return
    got = identity_from_meta(ckpt.meta, cfg)
    if got["digest"] == want["digest"]:
        return
    what = ("another world configuration" if got["world"] != want.get("world") else
            "another genome layout" if got["layout"] != want.get("layout") else
            f"other plugins ({', '.join(got['plugins']) or 'none'}; this run's: "
            f"{', '.join(map(str, want.get('plugins') or [])) or 'none'})")
    raise FileFormatError(str(path), f"this checkpoint is not of this run folder's run: it has {what}")


def resume_command(args: argparse.Namespace) -> int:
    """``alife run [WORLD] --resume RUN_DIR [-p NAME] [--plugins-dir DIR]``: continue from the run's
    last checkpoint (or, when it was killed before its first one, from step 0), appending to its
    lineage and replay files. The plugins come from this command line and WORLD (the run's world
    file, for its ``plugins``), never from the run folder or the checkpoint."""
    from alife import checkpoint as ckpt_mod
    from alife import config as config_mod
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
    given = [flag for flag, v in (("--seed", args.seed), ("--set", args.overrides), ("--out", args.out)) if v]
    if given:
        raise UserError(f"--resume continues a run exactly as it was started; do not give {', '.join(given)}")
    record = _read_run_record(run_dir, args)
    saved = argparse.Namespace(**{**vars(args), **record["args"]})
    # code comes from the user: this command line's plugins, never the ones run.json names
    saved.modules, saved.plugins_dir, saved.world = list(args.modules), list(args.plugins_dir), args.world
    overrides = parse_overrides(record["args"].get("overrides") or [])
    overrides["seed"] = record["seed"]
    user_world = config_mod.load(args.world, overrides) if args.world is not None else None
    steps = args.steps if args.steps is not None else int(record["args"].get("steps") or 2000)
    every = args.checkpoint_every or int(record["args"].get("checkpoint_every") or 0)
    load, blocked = split_plugin_args(args.modules)
    with StopSignals() as stop:
        lock = RunLock.take(run_dir)
        try:
            path = explicit or ckpt_mod.latest_checkpoint(run_dir)
            made: list[Any] = []

            def recorders(cfg: Any) -> list[Any]:
                made.extend(make_recorders(run_dir, saved, cfg))
                return made
            if path is None:  # killed before its first checkpoint: start again from the world text
                sim = _restart(run_dir, record, saved, load, blocked, recorders, user_world)
                pop_range = None
            else:
                ckpt = ckpt_mod.open_checkpoint(path)
                if ckpt.meta["seed"] != record["seed"]:
                    raise FileFormatError(str(path), f"checkpoint of a run with seed {ckpt.meta['seed']}, not this "
                                          f"run's seed {record['seed']}")
                _check_identity(path, record, ckpt, config_mod.from_dict(ckpt.meta["config"]))
                if ckpt.step > steps:
                    raise UserError(f"{path}: the run is already at step {ckpt.step}, past --steps {steps}; "
                                    "give a larger --steps")
                run = ckpt.meta.get("run") or {}
                pop_range = (run["population_min"], run["population_max"]) if "population_min" in run else None
                ckpt_mod.prune_checkpoints(run_dir, 0)
                sim = ckpt_mod.restore(ckpt, device=args.device, modules=load, blocked=blocked,
                                       plugins_dirs=args.plugins_dir, run_dir=run_dir,
                                       plugin_factory=recorders, world=user_world)
            stop.immediate = False
            record["args"]["steps"] = steps
            record["args"]["checkpoint_every"] = every
            record["identity"] = identity_of(sim)
            tmp = run_dir / (RUN_RECORD + ".tmp")
            _write_synced(tmp, json.dumps(record, indent=2) + "\n")
            tmp.replace(run_dir / RUN_RECORD)
            set_threads(sim, args.threads)
            warm_for_run(sim)  # compile kernels before the clock starts: not in the rate or the ETA
            summary = run_marked(run_dir, sim, lambda: run_loop(
                sim, steps, progress=not args.no_progress, checkpoint_every=every, run_dir=run_dir,
                keep_checkpoints=args.keep_checkpoints, pop_range=pop_range, recorders=made, stop=stop))
        finally:
            lock.release()
    if stop.signum is not None:
        raise Interrupted(stop.signum)
    summary.update(run_dir=str(run_dir), world_source=sim.config.source)
    print_summary(summary)
    return 0


def _restart(run_dir: Path, record: dict[str, Any], saved: argparse.Namespace, load: list[str],
             blocked: list[str], recorders: Callable[[Any], list[Any]], user_world: Any) -> Any:
    import tomllib

    from alife import config as config_mod
    from alife.checkpoint import identity_of as ident
    from alife.checkpoint import world_digest
    from alife.errors import FileFormatError
    from alife.simulation import Simulation

    path = run_dir / "world.toml"
    try:
        text = path.read_text()
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise FileFormatError(str(path), f"cannot read the run's world ({type(e).__name__}: {e})") from None
    data.pop("plugins", None)  # a file is data: its plugin list is never imported
    overrides = parse_overrides(saved.overrides)
    overrides["seed"] = record["seed"]
    try:
        cfg = config_mod.from_dict(data, record.get("world_source", str(path)), text, ".", overrides)
    except ConfigError as e:
        raise FileFormatError(str(path), f"the run's world is not valid here: {e}") from None
    if user_world is not None:
        if world_digest(user_world) != world_digest(cfg):
            raise UserError(f"{user_world.source} is not the world of the run in {run_dir}")
        cfg.plugins, cfg.base_dir = list(user_world.plugins), user_world.base_dir
    want = record.get("identity") or {}

    def from_zero(sim: Any) -> None:
        got = ident(sim)
        if want.get("digest") and got["digest"] != want["digest"]:
            missing = [n for n in want.get("plugins") or [] if n not in got["plugins"]]
            raise FileFormatError(str(run_dir / RUN_RECORD), (
                f"the run was started with plugin(s) {', '.join(map(repr, missing))}, which this resume does not "
                "load; give the run's world file next to --resume, -p MODULE or --plugins-dir DIR")
                if missing else "this resume is not the run that was started (its world, genome layout "
                                "or plugins differ)")
        sim.resume_step = 0

    return Simulation(cfg, device=saved.device, modules=load, blocked=blocked,
                      plugins_dirs=saved.plugins_dir, plugins=recorders(cfg), run_dir=run_dir,
                      before_start=from_zero)


def run_loop(sim: Any, steps: int, progress: bool = True,
             on_step: Callable[[], bool] | None = None, *, checkpoint_every: int = 0,
             run_dir: Path | None = None, keep_checkpoints: int = 3,
             pop_range: tuple[int, int] | None = None, recorders: list[Any] = (),
             stop: StopSignals | None = None) -> dict[str, Any]:
    """Step ``sim`` until ``steps`` (counted from step 0) or extinction; return the summary.

    ``on_step`` (the live viewer) is called after every step; returning False stops the run.
    With a ``run_dir``, a checkpoint is saved every ``checkpoint_every`` steps (when > 0) and at
    the end of a run that was not stopped by an error. ``pop_range`` carries a resumed run's
    population min and max so far. Before a checkpoint at step S, each of ``recorders`` with a
    ``commit(step)`` method (the lineage writer) commits through step S - 1, so that a resume from
    that checkpoint finds every earlier record on disk. On an error the simulation is still closed (recorders close
    their files in ``alife_sim_end``) and the error that stopped the run is the one raised. With
    ``stop`` (:class:`StopSignals`), a SIGINT or SIGTERM ends the loop after the step it came in:
    the records are committed, a checkpoint is saved (with a ``run_dir``), the simulation closed,
    and :class:`Interrupted` raised."""
    from tqdm import tqdm

    from alife.checkpoint import checkpoint_path, prune_checkpoints, save_checkpoint

    t0 = time.perf_counter()
    first = sim.step_count
    pmin = pmax = sim.population
    if pop_range is not None:
        pmin, pmax = min(pmin, pop_range[0]), max(pmax, pop_range[1])
    series = sim.hooks.has_impls("alife_series")  # plugins' own numbers, beside the engine's
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

    stopped = False
    try:
        while not extinct and sim.step_count < steps:
            if stop is not None and stop.signum is not None:
                stopped = True
                break
            sim.step()
            pop = sim.population
            pmin, pmax = min(pmin, pop), max(pmax, pop)
            bar.update(1)
            if progress and sim.step_count % 25 == 0:
                t = sim.totals
                by = sim.population_by_strategy() if getattr(sim, "mixed_role", None) else {}
                two = f"{100 * t['births_two_parents'] / t['births']:.1f}%" if t["births"] else "-"
                extra = ({k: f"{v:.3g}" for k, v in sim.hooks.series(sim, sim.step_count - 1).items()}
                         if series else {})
                bar.set_postfix(pop=pop, species=sim.species_count(), births=t["births"],
                                deaths=t["deaths"], two_parent=two, **by, **extra, refresh=False)
            if checkpoint_every and sim.step_count % checkpoint_every == 0:
                checkpoint()
            if pop == 0:
                extinct = True
                break
            if on_step is not None and on_step() is False:
                break
        stopped = stopped or (stop is not None and stop.signum is not None)
        checkpoint()
    finally:
        bar.close()
        if sys.exc_info()[1] is None:
            sim.close()
        else:  # keep the error that stopped the run; still let every recorder close its files
            err = sys.exc_info()[1]
            try:
                sim.close()
            except Exception as e:
                if "errno = " not in str(err) or "errno = " not in str(e):  # a failed write: said once
                    print(f"alife: warning: closing after the error also failed: {' '.join(str(e).splitlines())}",
                          file=sys.stderr)
    if stopped:
        raise Interrupted(stop.signum)
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
        "mating": {"pairs_proposed": t["pairs_proposed"], "pairs_refused": t["pairs_refused"],
                   "births_two_parents": t["births_two_parents"],
                   "two_parent_share": round(t["births_two_parents"] / t["births"], 5) if t["births"] else None},
        "mean_action_final": {k: round(v, 4) for k, v in sim.mean_action().items()},
        "plugins": [{"name": p.name, "origin": p.origin, "active": p.active, "hooks": p.hooks}
                    for p in sim.hooks.plugins()],
        "plugin_fields": sim.hooks.summary(sim),
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
    m = s["mating"]
    share = f"{100 * m['two_parent_share']:.2f}%" if m["two_parent_share"] is not None else "-"
    print(f"mating: {m['pairs_proposed']} pairs proposed, {m['pairs_refused']} refused, "
          f"{m['births_two_parents']} two-parent births ({share} of births)")
    if "population_by_strategy" in s:
        pbs = s["population_by_strategy"]
        print(f"population by {pbs['role']} strategy: final "
              + ", ".join(f"{n} {c} (min {pbs['min'][n]}, max {pbs['max'][n]})" for n, c in pbs["final"].items()))
    causes = ", ".join(f"{k} {v}" for k, v in s["deaths_by_cause"].items() if v)
    print(f"births {s['births']} (refused at capacity {s['births_refused_capacity']}); deaths {s['deaths']} ({causes})")
    print(f"run folder: {s['run_dir']}")
