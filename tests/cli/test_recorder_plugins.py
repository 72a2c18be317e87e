"""Recorders are plugins of the ``alife run`` command line: ``alife_add_run_arguments`` adds a
plugin's options, ``alife_make_recorders`` makes its recorders for a run (and a resumed run),
``--no-record NAME`` turns them off. Third-party recorders come in through an ``alife`` entry
point, ``-p`` or ``--plugins-dir`` like the built-in lineage and replay recorders."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alife.cli.main import main
from alife.cli.run import cli_plugins
from alife.plugins import hookimpl
from alife.plugins.manager import PluginError
from alife.simulation import Simulation

SMALL = ["--no-progress", "--device", "cpu", "--set", "world.width=24", "--set", "world.height=24",
         "--set", "world.initial_agents=60", "--set", "world.capacity=256"]
NO_BUILTINS = ["--no-record", "lineage", "--no-record", "replay"]


class TallyRecorder:
    """Notes the steps it sees (every ``every``-th), the births, and the commits ``alife run``
    asks for; writes them to ``tally.json`` when the simulation closes."""

    def __init__(self, path: Path, every: int) -> None:
        self.path, self.every = path, every
        self.steps: list[int] = []
        self.commits: list[int] = []
        self.births = 0
        self.resumed_from: int | None = None

    def commit(self, step: int) -> None:
        self.commits.append(step)

    @hookimpl
    def alife_sim_start(self, sim: Any) -> None:
        self.resumed_from = sim.resume_step

    @hookimpl
    def alife_agents_born(self, sim: Any, births: Any) -> None:
        self.births += len(births.ids)

    @hookimpl
    def alife_step_end(self, sim: Any, step: int) -> None:
        if step % self.every == 0:
            self.steps.append(step)

    @hookimpl
    def alife_sim_end(self, sim: Any) -> None:
        self.path.write_text(json.dumps({"every": self.every, "steps": self.steps, "births": self.births,
                                         "commits": self.commits, "resumed_from": self.resumed_from}))


class TallyPlugin:
    """A third-party recorder plugin, as an entry point names it."""

    ALIFE_RECORDER = "tally"

    @hookimpl
    def alife_add_run_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--tally-every", type=int, default=1, metavar="N", help="tally every Nth step")

    @hookimpl
    def alife_make_recorders(self, run_dir: Path, args: argparse.Namespace, config: Any) -> list[Any]:
        return [TallyRecorder(Path(run_dir) / "tally.json", args.tally_every)]


#: what the fake distribution's entry point loads
PLUGIN = TallyPlugin()

#: the same kind of recorder in a module of its own, for ``-p`` and ``--plugins-dir``
NOTE_MODULE = '''
from pathlib import Path

from alife.plugins import hookimpl

ALIFE_RECORDER = "note"


class Note:
    def __init__(self, path, text):
        self.path, self.text, self.steps = path, text, 0

    @hookimpl
    def alife_step_end(self, sim, step):
        self.steps += 1

    @hookimpl
    def alife_sim_end(self, sim):
        self.path.write_text(f"{self.text} {self.steps}")


@hookimpl
def alife_add_run_arguments(parser):
    parser.add_argument("--note-text", default="steps")


@hookimpl
def alife_make_recorders(run_dir, args, config):
    return [Note(Path(run_dir) / "note.txt", args.note_text)]
'''


@pytest.fixture
def entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed distribution whose ``alife`` entry point ``tally`` is :data:`PLUGIN`."""
    site = tmp_path / "site"
    info = site / "alife_tally-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: alife-tally\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[alife]\ntally = {__name__}:PLUGIN\n")
    monkeypatch.syspath_prepend(str(site))


@pytest.fixture
def modules_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on ``sys.path`` for plugin modules, forgotten after the test."""
    d = tmp_path / "mods"
    d.mkdir()
    monkeypatch.syspath_prepend(str(d))
    before = set(sys.modules)
    yield d
    for name in set(sys.modules) - before:
        if str(getattr(sys.modules[name], "__file__", "") or "").startswith(str(d)):
            del sys.modules[name]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_an_entry_point_recorder_adds_its_option_and_records_the_run(
        entry_point: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code, _, err = run(["run", "--steps", "7", "--tally-every", "3", "--out", str(out), *SMALL], capsys)
    assert code == 0, err
    tally = json.loads((out / "tally.json").read_text())
    assert tally["every"] == 3 and tally["steps"] == [0, 3, 6] and tally["resumed_from"] is None
    summary = json.loads((out / "summary.json").read_text())
    assert tally["births"] == summary["births"] > 0
    assert {"lineage.h5", "replay.h5"} <= {p.name for p in out.iterdir()}  # the built-ins still record
    assert json.loads((out / "run.json").read_text())["args"]["tally_every"] == 3
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "--tally-every N" in capsys.readouterr().out


def test_no_record_turns_a_plugin_recorder_off(entry_point: None, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code, _, err = run(["run", "--steps", "3", "--out", str(out), "--no-record", "tally", *SMALL], capsys)
    assert code == 0, err
    assert not (out / "tally.json").exists() and (out / "lineage.h5").exists()
    code, _, err = run(["run", "--steps", "3", "--out", str(tmp_path / "run2"), "--no-record", "talley",
                        *SMALL], capsys)
    assert code == 2
    assert err.splitlines() == ["alife: error: --no-record: unknown recorder(s) ['talley']; "
                                "known: ['lineage', 'replay', 'tally']"]


def test_without_the_plugin_its_option_is_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["run", "--steps", "3", "--tally-every", "3", "--out", str(tmp_path / "run"), *SMALL])
    assert e.value.code == 2
    assert "unrecognized arguments: --tally-every" in capsys.readouterr().err


def test_a_resumed_run_makes_its_recorders_with_the_run_s_options(
        entry_point: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code, _, err = run(["run", "--steps", "6", "--checkpoint-every", "3", "--tally-every", "2", "--out", str(out),
                        *NO_BUILTINS, *SMALL], capsys)
    assert code == 0, err
    first = json.loads((out / "tally.json").read_text())
    assert first["steps"] == [0, 2, 4] and first["commits"] == [2, 5]  # before the checkpoints at 3 and 6
    code, _, err = run(["run", "--resume", str(out), "--steps", "10", "--no-progress"], capsys)
    assert code == 0, err
    resumed = json.loads((out / "tally.json").read_text())
    assert resumed["every"] == 2 and resumed["resumed_from"] == 6 and resumed["steps"] == [6, 8]


@pytest.mark.parametrize("how", ["-p", "--plugins-dir"])
def test_a_recorder_module_from_p_or_plugins_dir(how: str, modules_dir: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (modules_dir / "note_recorder.py").write_text(NOTE_MODULE)
    source = ["-p", "note_recorder"] if how == "-p" else ["--plugins-dir", str(modules_dir)]
    out = tmp_path / "run"
    code, _, err = run(["run", "--steps", "4", *source, "--note-text", "ran", "--out", str(out),
                        *NO_BUILTINS, *SMALL], capsys)
    assert code == 0, err
    assert (out / "note.txt").read_text() == "ran 4"
    off = tmp_path / "off"
    code, _, err = run(["run", "--steps", "2", *source, "--no-record", "note", "--out", str(off),
                        *NO_BUILTINS, *SMALL], capsys)
    assert code == 0, err
    assert not (off / "note.txt").exists()


def test_alife_plugins_lists_the_recorders(entry_point: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["plugins"], capsys)
    assert code == 0
    lines = out.splitlines()
    for plugin, recorder in (("alife.recording.lineage", "lineage"), ("alife.recording.replay", "replay"),
                             ("tally", "tally")):
        i = lines.index(plugin)
        assert f"    recorder: {recorder}" in lines[i + 1:i + 4]
    assert lines[-1].startswith("strategies in use: ")


@pytest.mark.parametrize("module, message", [
    # an option the replay recorder already adds
    ("from alife.plugins import hookimpl\n\n\n@hookimpl\ndef alife_add_run_arguments(parser):\n"
     "    parser.add_argument('--replay-every')\n",
     "alife: error: plugin 'bad_recorder' raised in hook alife_add_run_arguments: ArgumentError: "
     "argument --replay-every: conflicting option string: --replay-every"),
    # a second recorder called lineage
    ("from alife.plugins import hookimpl\n\nALIFE_RECORDER = 'lineage'\n\n\n@hookimpl\n"
     "def alife_make_recorders(run_dir, args, config):\n    return []\n",
     "alife: error: recorder 'lineage' is offered by both plugin 'alife.recording.lineage' and plugin "
     "'bad_recorder'; leave one out with -p no:NAME"),
    # not a list
    ("from alife.plugins import hookimpl\n\n\n@hookimpl\ndef alife_make_recorders(run_dir, args, config):\n"
     "    return object\n",
     "alife: error: plugin 'bad_recorder' returned type <class 'object'> from alife_make_recorders; "
     "expected a list of plugin objects or None"),
    # a misspelt hook
    ("from alife.plugins import hookimpl\n\n\n@hookimpl\ndef alife_make_recorder(run_dir, args, config):\n"
     "    return []\n",
     "alife: error: plugin 'bad_recorder' implements unknown hook 'alife_make_recorder'; "
     "did you mean 'alife_make_recorders'?"),
])
def test_a_bad_recorder_plugin_is_one_line_and_exit_2(module: str, message: str, modules_dir: Path,
                                                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (modules_dir / "bad_recorder.py").write_text(module)
    code, _, err = run(["run", "--steps", "2", "-p", "bad_recorder", "--out", str(tmp_path / "run"), *SMALL],
                       capsys)
    assert code == 2 and err.splitlines() == [message]


def test_a_plugin_that_fails_to_load_is_reported_not_its_options(modules_dir: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    (modules_dir / "note_recorder.py").write_text(NOTE_MODULE + "\nraise RuntimeError('no luck')\n")
    code, _, err = run(["run", "--steps", "2", "-p", "note_recorder", "--note-text", "x", "--out",
                        str(tmp_path / "run"), *SMALL], capsys)
    assert code == 2
    assert err.splitlines() == ["alife: error: plugin module 'note_recorder' could not be imported: "
                                "RuntimeError: no luck"]
    assert not (tmp_path / "run").exists()


def test_the_hooks_in_python_make_recorders_a_simulation_runs(tmp_path: Path) -> None:
    """The command line's plugin manager with a plugin registered by hand: its option parses,
    its recorder is made (the built-ins skipped) and records a simulation's steps."""
    pm = cli_plugins()
    pm.register(TallyPlugin(), "tally", "python")
    assert list(pm.recorder_names()) == ["lineage", "replay", "tally"]
    parser = argparse.ArgumentParser()
    pm.add_run_arguments(parser)
    args = parser.parse_args(["--tally-every", "2", "--replay-every", "5"])
    assert args.replay_every == 5 and args.lineage_commit_every == 100
    sim = Simulation(None, seed=3, device="cpu", overrides={"world.width": 24, "world.height": 24,
                                                             "world.initial_agents": 60, "world.capacity": 256})
    recorders = pm.make_recorders(tmp_path, args, sim.config, skip={"lineage", "replay"})
    sim.close()
    assert [type(r) for r in recorders] == [TallyRecorder]
    sim = Simulation(sim.config, seed=3, device="cpu", plugins=recorders)
    sim.run(5)
    sim.close()
    assert json.loads((tmp_path / "tally.json").read_text())["steps"] == [0, 2, 4]
    twin = type("Twin", (), {"ALIFE_RECORDER": "tally", "alife_make_recorders": TallyPlugin.alife_make_recorders})
    pm.register(twin(), "twin", "python")
    with pytest.raises(PluginError, match="recorder 'tally' is offered by both plugin 'tally' and plugin 'twin'"):
        pm.recorder_names()
