"""Bad input gets one clear line and a non-zero exit, never a traceback, and loses nothing: world
files, plugins that raise inside hooks, and corrupted, truncated or foreign files given to
``alife run --resume``, ``alife lineage`` and ``alife replay``.

``BAD_WORLDS`` and ``BAD_FILES`` are also what ``docs/robustness.md`` lists."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from alife import checkpoint as ck
from alife.cli.main import main
from alife.lineage.reader import read_committed
from alife.recording.replay import open_replay

SMALL_SET = ["--set=world.width=32", "--set=world.height=32", "--set=world.initial_agents=100",
             "--set=world.capacity=512"]

#: (name, world file text or None for "no such file", extra CLI args, a fragment of the message)
BAD_WORLDS = [
    ("unknown key", "[world]\nwidht = 64\n", [], "world.widht: unknown key; did you mean 'width'?"),
    ("unknown table", "[wrold]\nwidth = 64\n", [], "wrold: unknown key; did you mean 'world'?"),
    ("string for an integer", '[world]\nwidth = "big"\n', [], "world.width: expected an integer, got 'big'"),
    ("fraction for an integer", "[world]\nwidth = 64.5\n", [], "world.width: expected an integer, got 64.5"),
    ("boolean for an integer", "[world]\nwidth = true\n", [], "world.width: expected an integer, got True"),
    ("value for a table", "world = 64\n", [], "world: expected a table [world], got 64"),
    ("negative size", "[world]\nwidth = -5\n", [], "world.width: expected a value >= 8, got -5"),
    ("zero capacity", "[world]\ncapacity = 0\n", [], "world.capacity: expected a value >= 2, got 0"),
    ("absurd capacity", "[world]\ncapacity = 100000000000\n", [], "world.capacity: expected a value <= 4194304"),
    ("absurd memory", "[world]\nwidth = 16384\nheight = 16384\ncapacity = 4194304\n[brain]\nhidden = 4096\n", [],
     "GiB is available"),
    ("NaN", "[resource]\nmax = nan\n", [], "resource.max: expected a finite number, got nan"),
    ("infinity", "[agent]\nmax_speed = inf\n", [], "agent.max_speed: expected a finite number, got inf"),
    ("zero in float32", "[resource]\nmax = 1e-46\n", [], "resource.max: 1e-46 is below what float32 (the world's arrays) holds"),
    ("zero in float32 by --set", "", ["--set", "agent.bite=-1e-40"], "agent.bite: -1e-40 is below what float32"),
    ("negative NaN in an integer key", "[agent]\nmax_age = -nan\n", [], "agent.max_age: expected an integer, got nan"),
    ("more agents than slots", "[world]\ncapacity = 10\ninitial_agents = 20\n", [],
     "20 agents do not fit in world.capacity = 10"),
    ("impossible energy", "[agent]\nreproduce_energy = 50.0\n", [], "can never be reached with agent.max_energy"),
    ("unknown extinction policy", '[world]\nextinction = "explode"\n', [],
     "world.extinction: expected one of 'stop', 'reseed', 'inject', got 'explode'"),
    ("unknown strategy", '[strategies]\nselection = "nope"\n', [],
     "strategies.selection = 'nope': no loaded plugin provides it"),
    ("missing plugin module", 'plugins = ["no_such_module_xyz"]\n', [],
     "plugin module 'no_such_module_xyz' could not be imported"),
    ("not TOML", "[world\nwidth = 3\n", [], "not valid TOML"),
    ("not text", b"\xff\xfe\x00binary\x00", [], "cannot read"),
    ("no such file", None, [], "no such world file"),
    ("negative seed", "seed = -1\n", [], "seed: expected a value >= 0, got -1"),
    ("bad --set value", "", ["--set", "world.width=abc"], "world.width: expected an integer, got 'abc'"),
    ("bad --set syntax", "", ["--set", "worldwidth"], "expected KEY=VALUE"),
    ("--set through a value", "", ["--set", "seed.x=1"], "seed: expected an integer, got {'x': 1}"),
    ("negative --steps", "", ["--steps", "-3"], "--steps must be >= 0"),
]


def _world_file(tmp_path: Path, name: str, text: str | bytes | None) -> str:
    p = tmp_path / f"{name.replace(' ', '_').replace('-', '')}.toml"
    if text is None:
        return str(p)
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return str(p)


def run_bad(capsys, argv: list[str]) -> str:
    code = main(argv)
    out = capsys.readouterr()
    assert code == 2, out
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alife: error: "), out.err
    assert "Traceback" not in out.err + out.out
    return lines[0]


@pytest.mark.parametrize("name,text,extra,expect", BAD_WORLDS, ids=[b[0] for b in BAD_WORLDS])
def test_bad_world_files(tmp_path, capsys, name, text, extra, expect):
    path = _world_file(tmp_path, name, text)
    msg = run_bad(capsys, ["run", path, "--no-progress", "--steps", "3", "--out", str(tmp_path / "out"), *extra])
    assert expect in msg
    if text is not None and not extra and "strategy" not in name and "plugin" not in name:
        assert path in msg  # the message names the file (plugin errors name the plugin instead)
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir())  # no half-made run folder to trip over


def test_bad_world_in_a_real_process_prints_one_line(tmp_path):
    path = _world_file(tmp_path, "nan", "[resource]\nmax = nan\n")
    res = subprocess.run([sys.executable, "-m", "alife.cli.main", "run", path, "--no-progress"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert res.stderr.strip() == f"alife: error: {path}: resource.max: expected a finite number, got nan"


# ------------------------------------------------------------------------------------ raising plugins
RAISERS = {
    "step_end": """
        @alife.hookimpl
        def alife_step_end(sim, step):
            if step == 6:
                raise RuntimeError("boom at step 6")
    """,
    "agents_born": """
        @alife.hookimpl
        def alife_agents_born(sim, births):
            if births.step >= 4:
                raise ValueError("cannot count babies")
    """,
    "sim_end": """
        @alife.hookimpl
        def alife_sim_end(sim):
            raise KeyError("nothing to close")
    """,
    "interact": """
        ALIFE_STRATEGIES = {"interaction": "broken"}

        @alife.hookimpl
        def alife_interact(sim, attackers, targets):
            raise ZeroDivisionError("no damage table")
    """,
}
RAISER_HOOK = {"step_end": "alife_step_end", "agents_born": "alife_agents_born", "sim_end": "alife_sim_end",
               "interact": "alife_interact"}


@pytest.mark.parametrize("which", list(RAISERS))
def test_a_plugin_that_raises_is_named_and_the_files_are_closed(tmp_path, capsys, which):
    pdir = tmp_path / "plugins"
    pdir.mkdir()
    (pdir / f"bad_{which}.py").write_text("import alife\n" + textwrap.dedent(RAISERS[which]))
    run = tmp_path / "run"
    extra = ["--set", "strategies.interaction=broken"] if which == "interact" else []
    msg = run_bad(capsys, ["run", "--no-progress", *SMALL_SET, *extra, "--steps", "12",
                           "--plugins-dir", str(pdir), "--out", str(run)])
    assert f"plugin 'bad_{which}' raised in hook {RAISER_HOOK[which]}" in msg
    # the recorders closed their files: both open read-only, with what was recorded before the error
    attrs, data, last = read_committed(run / "lineage.h5")
    assert len(data["births/id"]) >= 100
    with open_replay(run / "replay.h5") as rp:
        assert len(rp) >= 1
    import h5py

    for name in ("lineage.h5", "replay.h5"):  # not left open for writing (SWMR) by a crashed writer
        with h5py.File(run / name, "r"):
            pass


def test_a_plugin_that_raises_keeps_the_recorded_steps(tmp_path, capsys):
    pdir = tmp_path / "plugins"
    pdir.mkdir()
    (pdir / "late.py").write_text("import alife\n" + textwrap.dedent(RAISERS["step_end"]))
    run = tmp_path / "run"
    run_bad(capsys, ["run", "--no-progress", *SMALL_SET, "--steps", "12", "--plugins-dir", str(pdir),
                     "--out", str(run)])
    _, data, last = read_committed(run / "lineage.h5")
    assert last >= 5  # steps 0..5 completed before the plugin raised at the end of step 6


# ------------------------------------------------------------------------------------ bad files
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(["run", "--no-progress", *SMALL_SET, "--steps", "20", "--checkpoint-every", "10",
                 "--out", str(run)]) == 0
    return run


def _digest(run: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.rglob("*")) if p.is_file()}


def _copy(run: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(run, dst)
    return dst


def _truncate(p: Path, frac: float = 0.5) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: int(len(data) * frac)])


#: (name, how to spoil a copy of a finished run folder, argv maker, message fragment)
BAD_FILES = [
    ("--resume: truncated latest checkpoint",
     lambda r: _truncate(ck.latest_checkpoint(r)), lambda r: ["run", "--resume", str(r)], "truncated or corrupt"),
    ("--resume: latest checkpoint is text",
     lambda r: ck.latest_checkpoint(r).write_text("hello"), lambda r: ["run", "--resume", str(r)],
     "not an alife checkpoint (not an HDF5 file)"),
    ("--resume: a lineage file given as checkpoint",
     lambda r: None, lambda r: ["run", "--resume", str(r / "lineage.h5")], "not an alife checkpoint (a foreign"),
    ("--resume: checkpoint of another run",
     lambda r: _respeed(r), lambda r: ["run", "--resume", str(r)],
     "checkpoint of a run with seed 0, not this run's seed 77"),
    ("--resume: corrupt run.json",
     lambda r: (r / "run.json").write_text("{oops"), lambda r: ["run", "--resume", str(r)], "unreadable run record"),
    ("--resume: not a run folder",
     lambda r: (r / "run.json").unlink(), lambda r: ["run", "--resume", str(r)], "not an alife run folder"),
    ("lineage: truncated file",
     lambda r: _truncate(r / "lineage.h5"), lambda r: ["lineage", str(r / "lineage.h5"), "summary"],
     "lineage.h5"),
    ("lineage: a checkpoint given as lineage",
     lambda r: None, lambda r: ["lineage", str(ck.latest_checkpoint(r)), "summary"], "not a lineage file"),
    ("lineage: text file",
     lambda r: (r / "lineage.h5").write_text("id,parent\n1,2\n"), lambda r: ["lineage", str(r / "lineage.h5"), "summary"],
     "not a lineage file (not an HDF5 file)"),
    ("replay: truncated file",
     lambda r: _truncate(r / "replay.h5", 0.3), lambda r: ["replay", str(r / "replay.h5"), "--export", str(r / "x.png")],
     "not a readable HDF5 file (truncated"),
    ("replay: a checkpoint given as replay",
     lambda r: None, lambda r: ["replay", str(ck.latest_checkpoint(r)), "--export", str(r / "x.png")], ".h5"),
    ("replay: missing file",
     lambda r: None, lambda r: ["replay", str(r / "nope.h5"), "--export", str(r / "x.png")], "no such file"),
]


def _respeed(run: Path) -> None:
    import json

    rec = json.loads((run / "run.json").read_text())
    rec["seed"] = 77
    (run / "run.json").write_text(json.dumps(rec))


def _bad_file_id(b) -> str:
    return b.values[0] if hasattr(b, "values") else b[0]


@pytest.mark.parametrize("name,spoil,argv,expect", BAD_FILES, ids=[_bad_file_id(b) for b in BAD_FILES])
def test_bad_files(tmp_path, capsys, finished_run, name, spoil, argv, expect):
    command = argv(finished_run)[0]
    if command in ("lineage", "replay"):
        import importlib.util

        if importlib.util.find_spec(f"alife.cli.{command}") is None:
            pytest.skip(f"alife {command} is not built yet")
    run = _copy(finished_run, tmp_path / "run")
    spoil(run)
    before = _digest(run)
    if command == "replay":  # in a real process, with a time limit: a reader must not hang
        try:
            res = subprocess.run([sys.executable, "-m", "alife.cli.main", *argv(run)], capture_output=True,
                                 text=True, timeout=120, env={**__import__("os").environ, "SDL_VIDEODRIVER": "dummy"})
        except subprocess.TimeoutExpired:
            pytest.fail(f"alife {' '.join(argv(run))} hung for 120 s")
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
        msg = lines[0]
    else:
        msg = run_bad(capsys, argv(run))
    assert expect in msg
    assert _digest(run) == before  # nothing lost, nothing rewritten
