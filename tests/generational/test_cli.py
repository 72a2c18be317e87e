"""`alife run` on a world with a [task] table dispatches to the generational runner."""

from __future__ import annotations

import json
from pathlib import Path

import h5py

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
