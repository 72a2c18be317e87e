"""`alife run` on a world with a [task] table dispatches to the generational runner."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import h5py
from gymnasium import spaces

from alife.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def test_alife_run_cartpole_writes_summary_population_and_lineage(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["run", str(ROOT / "worlds" / "cartpole.toml"), "--out", str(out), "--no-progress",
               "--seed", "2", "--set", "task.generations=3", "--set", "task.heldout_episodes=5",
               "--set", "task.stop_at_threshold=false"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    for key in ("heldout_mean", "heldout_std", "generations", "env_steps", "wall_time_s"):
        assert key in s
    assert s["mode"] == "task" and s["generations"] == 3 and s["heldout_episodes"] == 5
    assert s["strategies"]["selection"] == "truncation"
    with h5py.File(out / "population.h5") as f:
        assert f["genomes"].shape == (30, s["genome_size"])
        assert json.loads(f.attrs["layout"])[0]["segment"] == "policy"
    if (out / "lineage.h5").exists():  # when the lineage recorder is installed
        import alife.lineage

        lin = alife.lineage.open(out / "lineage.h5")
        assert len(lin.births) == 30 + 2 * 28  # roots, then two generations of children
    assert "held-out" in capsys.readouterr().out


def test_alife_run_unknown_env_id_exits_with_a_message(tmp_path, capsys):
    rc = main(["run", str(ROOT / "worlds" / "cartpole.toml"), "--out", str(tmp_path / "r"),
               "--set", "task.env_id=NoSuchTask-v0", "--no-progress"])
    assert rc == 2
    assert "task.env_id: 'NoSuchTask-v0' is not a gymnasium environment" in capsys.readouterr().err


def test_alife_run_blackjack_and_taxi(tmp_path, capsys):
    """A Tuple observation (Blackjack-v1) and a Discrete one (the shipped Taxi world) run end to end."""
    for name, world, extra in [("bj", "cartpole.toml", ["--set", "task.env_id=Blackjack-v1"]),
                               ("taxi", "taxi.toml", ["--set", "task.population=8", "--set", "task.elite=1",
                                                      "--set", "task.parents=2", "--set", "task.episodes=1"])]:
        out = tmp_path / name
        rc = main(["run", str(ROOT / "worlds" / world), "--out", str(out), "--no-progress",
                   "--set", "task.generations=2", "--set", "task.heldout_episodes=5", *extra])
        assert rc == 0
        s = json.loads((out / "summary.json").read_text())
        assert s["generations"] == 2 and s["heldout_episodes"] == 5
    assert s["env_id"] == "Taxi-v4" and s["threshold"] == 8


class TextTask(gym.Env):
    """An environment whose observations are text: nothing a policy network can read."""

    observation_space = spaces.Text(8)
    action_space = spaces.Discrete(2)


def test_alife_run_refuses_a_space_it_cannot_drive_in_one_line(tmp_path, capsys):
    if "AlifeTest/Text-v0" not in gym.registry:
        gym.register(id="AlifeTest/Text-v0", entry_point=TextTask)
    rc = main(["run", str(ROOT / "worlds" / "cartpole.toml"), "--out", str(tmp_path / "r"),
               "--set", "task.env_id=AlifeTest/Text-v0", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert "observation space Text(" in err and "cannot be driven" in err and "\n" not in err


def test_task_run_folders_are_made_like_a_worlds(tmp_path, capsys):
    """A task run that never starts leaves no folder; one that fails midway is marked failed;
    one that ends has its summary and no failed.json (the same run folder rules as a world)."""
    world = ROOT / "worlds" / "cartpole.toml"
    quick = ["--no-progress", "--set", "task.generations=3", "--set", "task.heldout_episodes=3",
             "--set", "task.stop_at_threshold=false"]
    never = tmp_path / "never"
    assert main(["run", str(world), "--out", str(never), *quick, "--set", "strategies.mutation=nope"]) == 2
    assert not never.exists()

    plug = tmp_path / "plugs"
    plug.mkdir()
    (plug / "breaks.py").write_text(
        "from alife.plugins import hookimpl\n\n\n@hookimpl\ndef alife_step_end(sim, step):\n"
        "    if step == 1:\n        raise RuntimeError('broken on purpose')\n")
    failed = tmp_path / "failed"
    assert main(["run", str(world), "--out", str(failed), *quick, "--plugins-dir", str(plug)]) == 2
    record = json.loads((failed / "failed.json").read_text())
    assert "broken on purpose" in record["error"] and not (failed / "summary.json").exists()

    ok = tmp_path / "ok"
    assert main(["run", str(world), "--out", str(ok), *quick]) == 0
    assert (ok / "summary.json").exists() and (ok / "world.toml").exists() and not (ok / "failed.json").exists()
    capsys.readouterr()
