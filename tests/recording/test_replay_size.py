"""Big worlds: `alife run` says a replay's expected size up front when it passes 1 GB, and the
default cadence thins with the number of agents (docs/viewer.md)."""

from __future__ import annotations

import h5py
import pytest

from alife import config as config_mod
from alife.cli.main import main
from alife.recording import replay as R


def _cfg(agents: int, side: int = 96, **extra):
    ov = {"world.initial_agents": agents, "world.capacity": max(4 * agents, 64),
          "world.width": side, "world.height": side, **extra}
    return config_mod.load(None, ov)


@pytest.mark.parametrize(("agents", "every"), [(600, 2), (5000, 2), (5001, 4), (10000, 4), (20000, 8)])
def test_default_every_thins_with_agents(agents, every):
    assert R.default_every(_cfg(agents)) == every


def test_a_world_file_or_the_command_line_still_chooses(tmp_path):
    import argparse

    cfg = _cfg(20000)
    args = argparse.Namespace(replay_every=5)
    assert R.recorder_for_run(tmp_path, args, cfg).every == 5
    assert R.recorder_for_run(tmp_path, argparse.Namespace(replay_every=None), cfg).every == 8
    cfg3 = config_mod.from_dict({"plugin": {"replay": {"every": 3}}, "world": {"initial_agents": 20000,
                                "capacity": 80000}}, "w.toml", "", str(tmp_path), {})
    assert R.recorder_for_run(tmp_path, argparse.Namespace(replay_every=None), cfg3).every == 3


def test_estimate_matches_the_reported_big_world():
    # the report that started this: 20,000 agents, a frame every 2 steps, 202 MB per 1,000 steps
    side = round((20000 / 0.0287) ** 0.5)
    est = R.estimate_bytes(_cfg(20000, side), 2, 1000)
    assert 150e6 < est < 260e6
    # the new default keeps it near 50 MB per 1,000 steps
    assert R.estimate_bytes(_cfg(20000, side), R.default_every(_cfg(20000)), 1000) < 70e6


def test_alife_run_says_the_size_of_a_big_replay_up_front(tmp_path, capsys):
    out = tmp_path / "run"
    # 20,000 agents with no food starve in their first step: the run ends at once, after the notice
    rc = main(["run", "--steps", "400000", "--out", str(out), "--no-progress", "--no-record", "lineage",
               "--set", "world.initial_agents=20000", "--set", "world.capacity=20000",
               "--set", "world.width=400", "--set", "world.height=400",
               "--set", "agent.initial_energy=0.000001", "--set", "resource.initial=0",
               "--set", "resource.regrowth=0", "--set", "resource.seed_growth=0"])
    assert rc == 0
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if "replay.h5 will take about" in line]
    assert len(notes) == 1 and "GB" in notes[0] and "a frame every 8 steps" in notes[0]
    assert "--replay-every" in notes[0]
    with h5py.File(out / "replay.h5", "r") as f:
        assert int(f.attrs["every"]) == 8


def test_no_notice_for_a_small_run(tmp_path, capsys):
    rc = main(["run", "--steps", "20", "--out", str(tmp_path / "run"), "--no-progress",
               "--set", "world.width=24", "--set", "world.height=24", "--set", "world.initial_agents=60",
               "--set", "world.capacity=256"])
    assert rc == 0
    assert "replay.h5 will take" not in capsys.readouterr().err
