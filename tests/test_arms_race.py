"""`alife arms-race` (CIAO, ``alife.armsrace``): roles come from the checkpoints' role array,
a matrix of identical moments shows no trend at all (a neutral input reads neutral), predators that
cannot hurt prey gain nothing, and the command line writes its table, JSON and PNG."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from alife import armsrace as R
from alife.checkpoint import list_checkpoints
from alife.cli.main import main
from alife.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
WORLD = ROOT / "worlds" / "predator_prey.toml"
SMALL_PP = ["--set", "world.width=64", "--set", "world.height=64", "--set", "world.initial_agents=160",
            "--set", "world.capacity=2048"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("arms") / "run"
    assert main(["run", str(WORLD), "--steps", "120", "--seed", "2", "--out", str(d), "--no-progress",
                 "--no-record", "replay", "--checkpoint-every", "60", "--keep-checkpoints", "0", *SMALL_PP]) == 0
    return d


def test_role_pools_split_the_living_by_the_role_array(run_dir):
    from alife.checkpoint import open_checkpoint

    (_, path), = list_checkpoints(run_dir)[:1]
    pred, prey = R.role_pools(path, "predator-prey.role", (1, 0), ("predators", "prey"))
    ck = open_checkpoint(path)
    alive = ck.arrays["alive"].astype(bool)
    role = ck.plugin_arrays["predator-prey.role"]
    assert pred.genomes.shape[0] == int((alive & (role == 1)).sum()) > 0
    assert prey.genomes.shape[0] == int((alive & (role == 0)).sum()) > 0
    assert pred.name == f"predators@{ck.step}"
    with pytest.raises(UserError, match="no per-slot array 'nope'"):
        R.role_pools(path, "nope", (1, 0), ("a", "b"))


def test_identical_moments_give_identical_cells_and_no_trend(run_dir):
    """The same checkpoint on both axes: every cell places the same genomes with the same seeds,
    so the matrix is flat and every trend is exactly zero (a neutral input reads neutral)."""
    path = list_checkpoints(run_dir)[-1][1]
    res = R.ciao([path, path], _world(run_dir), replicates=2, steps=25, agents=120)
    assert res.gain.shape == (2, 2, 2, 2)
    for i in range(2):
        for j in range(2):
            np.testing.assert_array_equal(res.gain[:, i, j], res.gain[:, 0, 0])
            np.testing.assert_array_equal(res.survival[:, i, j], res.survival[:, 0, 0])
    for d in res.trends("gain").values():
        assert d["mean"] == 0.0
    assert (res.gain[..., 0] > 0).all(), "predators with the run's damage caught nothing in 25 steps"
    assert ((res.survival >= 0) & (res.survival <= 1)).all()


def test_predators_that_cannot_hurt_prey_gain_nothing(run_dir):
    """Predators cannot graze: with damage 0 their only income is gone, so their gain rate is 0
    exactly, while the prey (who graze) gain. Were the roles not written into the arena, pool A
    would graze as prey and gain."""
    a, b = [p for _, p in list_checkpoints(run_dir)[:2]]
    res = R.ciao([a, b], _world(run_dir), replicates=1, steps=25, agents=120,
                 overrides={"plugin.predator-prey.damage": 0.0})
    assert (res.gain[..., 0] == 0).all()
    assert (res.gain[..., 1] > 0).all()


def _world(run_dir):
    from alife.assay import run_world

    return run_world(run_dir)


def test_command_line(run_dir, tmp_path, capsys):
    out = tmp_path / "ciao"
    assert main(["arms-race", str(run_dir), "--replicates", "1", "--steps", "10", "--agents", "100",
                 "--moments", "2", "--quiet", "-o", str(out)]) == 0
    data = json.loads((out / "ciao.json").read_text())
    steps = [s for s, _ in list_checkpoints(run_dir)]
    assert data["steps_a"] == [steps[0], steps[-1]]
    assert np.asarray(data["gain_mean"]).shape == (2, 2)
    assert (out / "ciao.png").stat().st_size > 1000
    assert "predators: energy gain rate" in (out / "ciao.md").read_text()
    # a run folder with one checkpoint cannot make an arms race; the message says what to do
    one = tmp_path / "one"
    assert main(["run", str(WORLD), "--steps", "10", "--out", str(one), "--no-progress", "--no-record", "replay",
                 *SMALL_PP]) == 0
    assert main(["arms-race", str(one)]) == 2
    assert "--keep-checkpoints 0" in capsys.readouterr().err
