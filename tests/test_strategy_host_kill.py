"""A run of the stateful example strategy (docs/examples/one_fifth.py), killed with SIGKILL at
random moments and resumed each time, ends bit-identical to the run that was never killed: world
arrays, generator, the strategy's per-species step sizes and its own state."""

from __future__ import annotations

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
from alife.simulation import Simulation

ROOT = Path(__file__).resolve().parents[1]
WORLD_FILE = ROOT / "docs" / "examples" / "one_fifth.toml"
WORLD = {"world.width": 40, "world.height": 40, "world.initial_agents": 150, "world.capacity": 1024,
         "plugin.one-fifth.window": 5}
EVERY, SEED = 10, 5


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "alife.cli.main", "run", "--no-progress", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def reference(steps: int) -> Simulation:
    sim = Simulation(WORLD_FILE, seed=SEED, device="cpu", overrides=WORLD)
    sim.run(steps, stop_on_extinction=False)
    assert sim.population > 0
    return sim


def _last_step(run: Path) -> int:
    cps = ck.list_checkpoints(run)
    return cps[-1][0] if cps else 0


def kill_and_resume(run: Path, steps: int, kills: int, rng: random.Random) -> list[str]:
    """Start the run; ``kills`` times: wait until it saved a checkpoint past the last one seen
    (or ended), plus a random 0-0.25 s, and SIGKILL it, then resume; finally let it finish."""
    world = [f"--set={k}={v}" for k, v in WORLD.items()]
    args = _cmd(str(WORLD_FILE), *world, "--seed", str(SEED), "--steps", str(steps),
                "--checkpoint-every", str(EVERY), "--out", str(run))
    log = []
    for i in range(kills + 1):
        # the plugin comes from the user again on resume (the world file lists one_fifth.py),
        # never from the run folder or the checkpoint
        resume = _cmd(str(WORLD_FILE), "--resume", str(run))
        proc = subprocess.Popen(args if i == 0 else resume, env=_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if i == kills:
            _, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err.decode()[-2000:]
            break
        seen = _last_step(run)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if (run / "run.json").exists() and _last_step(run) > seen:
                break
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        if proc.returncode == 0:  # it finished first: nothing left to kill
            log.append(f"kill {i}: the run had already finished")
            break
        assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
        log.append(f"kill {i}: at or after step {_last_step(run)}")
    return log


def check_identical(run: Path, ref: Simulation, steps: int) -> None:
    final = ck.open_checkpoint(ck.latest_checkpoint(run))
    assert final.step == steps
    st = ref.world
    for name in final.arrays:
        want = getattr(st, name).numpy()
        np.testing.assert_array_equal(final.arrays[name], want, err_msg=name)
    np.testing.assert_array_equal(final.rng_state, ref.generator.get_state().numpy())
    np.testing.assert_array_equal(final.plugin_arrays["one-fifth.sigma"], ref.arrays["one-fifth.sigma"].numpy())
    plug = ref.hooks.get_plugin("one-fifth")
    state = final.plugin_state["one-fifth"]
    np.testing.assert_array_equal(state["successes"], plug.successes.numpy())
    np.testing.assert_array_equal(state["trials"], plug.trials.numpy())


def test_killed_twice_and_resumed(tmp_path):
    steps = 60
    log = kill_and_resume(tmp_path / "run", steps, 2, random.Random(7))
    check_identical(tmp_path / "run", reference(steps), steps)
    assert log


@pytest.mark.slow
def test_killed_20_times_and_resumed(tmp_path):
    steps = 3000  # long enough that 20 kills land before the end on a fast, quiet machine
    log = kill_and_resume(tmp_path / "run", steps, 20, random.Random(2026))
    print("\n".join(log))
    kills = [line for line in log if "already finished" not in line]
    assert len(kills) == 20
    check_identical(tmp_path / "run", reference(steps), steps)
