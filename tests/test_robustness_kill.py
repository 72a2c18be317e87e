"""A real ``alife run --checkpoint-every K`` killed with SIGKILL at a random moment resumes, and the
result is the run that was never killed: the same final state, and a lineage with every id once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from alife import checkpoint as ck
from alife.lineage.reader import read_committed
from alife.recording.replay import open_replay
from alife.simulation import Simulation

WORLD = {"world.width": 40, "world.height": 40, "world.initial_agents": 150, "world.capacity": 1024}
STEPS, EVERY, SEED = 160, 10, 11


@pytest.fixture(scope="module")
def reference() -> Simulation:
    """The same run, never interrupted, in-process and without recorders."""
    sim = Simulation(None, seed=SEED, device="cpu", overrides=WORLD)
    sim.run(STEPS, stop_on_extinction=False)
    assert sim.population > 0
    return sim


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "alife.cli.main", "run", "--no-progress", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def kill_at_random(run: Path, rng: random.Random) -> str:
    """Start a run, kill it at a random moment: after 0 to 6 checkpoints, plus up to 0.3 s (which
    lands in steps, in checkpoint saves and in recorder commits alike)."""
    world = [f"--set={k}={v}" for k, v in WORLD.items()]
    proc = subprocess.Popen(_cmd(*world, "--seed", str(SEED), "--steps", str(STEPS),
                                 "--checkpoint-every", str(EVERY), "--out", str(run)),
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for = rng.randint(0, 6)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        cps = ck.list_checkpoints(run)  # the run keeps its newest 3: wait on the step, not the count
        if (run / "run.json").exists() and (cps[-1][0] if cps else 0) >= wait_for * EVERY:
            break
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 0.3))
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it could be killed: {err.decode()[-500:]}"
    cps = ck.list_checkpoints(run)
    return f"killed after waiting for {wait_for} checkpoints; last complete checkpoint: step {cps[-1][0] if cps else None}"


def check_resumed(run: Path, reference: Simulation) -> None:
    res = subprocess.run(_cmd("--resume", str(run)), env=_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    final = ck.open_checkpoint(ck.latest_checkpoint(run))
    assert final.step == STEPS
    st = reference.world
    for name in ("alive", "ids", "pos", "energy", "genomes", "species", "parents", "age"):
        np.testing.assert_array_equal(final.arrays[name], getattr(st, name).numpy(), err_msg=name)
    np.testing.assert_array_equal(final.rng_state, reference.generator.get_state().numpy())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == STEPS
    assert summary["births"] == reference.totals["births"]
    assert summary["deaths"] == reference.totals["deaths"]

    _, data, last = read_committed(run / "lineage.h5")
    assert last == STEPS - 1
    born = np.sort(data["births/id"])
    np.testing.assert_array_equal(born, np.arange(st.next_id))  # no id missing, none twice
    died = data["deaths/id"]
    assert len(np.unique(died)) == len(died) == reference.totals["deaths"]
    assert np.isin(died, born).all()
    alive_ids = st.ids[st.alive].numpy()
    assert not np.isin(alive_ids, died).any()

    with open_replay(run / "replay.h5") as rp:
        steps, every = np.asarray(rp.steps), rp.every
    assert (np.diff(steps) == every).all()  # no frame lost, none twice
    assert steps[0] == 0 and steps[-1] >= STEPS - every


def _trial(tmp_path: Path, reference: Simulation, trial: int) -> str:
    rng = random.Random(1000 + trial)
    run = tmp_path / f"run{trial}"
    how = kill_at_random(run, rng)
    check_resumed(run, reference)
    return how


@pytest.mark.parametrize("trial", range(2))
def test_kill_and_resume(tmp_path, reference, trial):
    _trial(tmp_path, reference, trial)


@pytest.mark.slow
def test_kill_and_resume_20_times(tmp_path, reference):
    log = [f"trial {t}: {_trial(tmp_path, reference, 100 + t)}" for t in range(20)]
    print("\n".join(log))
