"""Ctrl-C and SIGTERM stop ``alife run`` within a step or two at any moment, start-up included:
exit 130 (SIGINT) or 143 (SIGTERM), a final checkpoint, no traceback; the run resumes exactly."""

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

WORLD = {"world.width": 40, "world.height": 40, "world.initial_agents": 150, "world.capacity": 1024}
SEED = 9


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "alife.cli.main", "run", "--no-progress", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _last(run: Path) -> int | None:
    cps = ck.list_checkpoints(run)
    return cps[-1][0] if cps else None


def interrupt_and_resume(run: Path, times: int, rng: random.Random, sigs=(signal.SIGINT,)) -> list[str]:
    """Start the run (or resume it) ``times`` times, each time sending a signal at a random moment
    (start-up 30% of the time, else while it steps or saves), and check each stops with
    128 + signum and no traceback, leaving a checkpoint at least as new as before."""
    world = [f"--set={k}={v}" for k, v in WORLD.items()]
    log = []
    for i in range(times):
        started = (run / "run.json").exists()
        args = (_cmd("--resume", str(run), "--steps", "100000") if started else
                _cmd(*world, "--seed", str(SEED), "--steps", "100000", "--checkpoint-every", "25",
                     "--out", str(run)))
        before = _last(run)
        sig = sigs[i % len(sigs)]
        proc = subprocess.Popen(args, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        t_start = time.monotonic()
        if rng.random() < 0.3:  # during start-up: imports, the world, the recorders
            time.sleep(rng.uniform(0.2, 3.0))
        else:  # while it steps: after its next checkpoint, plus up to 0.5 s
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None and (_last(run) or -1) <= (before or -1):
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.5))
        delay = time.monotonic() - t_start
        t0 = time.monotonic()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        took = time.monotonic() - t0
        assert proc.returncode == 128 + sig, (i, delay, proc.returncode, err[-3000:])
        assert "Traceback" not in err and err.strip().endswith(f"interrupted ({signal.Signals(sig).name})"), err[-3000:]
        after = _last(run)
        if before is not None:
            assert after is not None and after >= before
        log.append(f"{signal.Signals(sig).name} after {delay:.2f} s: rc {proc.returncode} in {took:.2f} s, "
                   f"checkpoint {before} -> {after}")
    return log


def finish_and_compare(run: Path) -> int:
    """Resume to 30 steps past the last checkpoint; the result equals a run never interrupted."""
    last = _last(run) or 0
    steps = last + 30
    p = subprocess.run(_cmd("--resume", str(run), "--steps", str(steps)), env=_env(),
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    ref = Simulation(None, seed=SEED, device="cpu", overrides=WORLD)
    ref.run(steps, stop_on_extinction=False)
    final = ck.open_checkpoint(ck.latest_checkpoint(run))
    assert final.step == steps
    for name in final.arrays:
        np.testing.assert_array_equal(final.arrays[name], getattr(ref.world, name).numpy(), err_msg=name)
    np.testing.assert_array_equal(final.rng_state, ref.generator.get_state().numpy())
    return steps


def test_interrupts_at_random_moments_stop_and_resume_exactly(tmp_path):
    run = tmp_path / "run"
    log = interrupt_and_resume(run, 4, random.Random(11), sigs=(signal.SIGINT, signal.SIGTERM))
    print("\n".join(log))
    if (run / "run.json").exists():
        finish_and_compare(run)


def test_interrupt_during_start_up_is_130_without_a_traceback(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(_cmd("--steps", "50", "--out", str(run)), env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(0.4)  # importing torch
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err[-3000:]
    assert not run.exists()


@pytest.mark.slow
def test_30_sigints_at_random_moments(tmp_path):
    run = tmp_path / "run"
    log = interrupt_and_resume(run, 30, random.Random(2026))
    print("\n".join(log))
    steps = finish_and_compare(run)
    print(f"resumed exactly to step {steps}")


def _interrupt_inside_a_weakref_callback(hook) -> int | None:
    """A SIGINT handled while Python runs a weakref callback: the exception the handler raises
    cannot propagate there and goes to ``hook`` (sys.unraisablehook)."""
    import weakref

    from alife.cli.run import StopSignals

    class Obj:
        pass

    old = sys.unraisablehook
    with StopSignals() as stop:
        o = Obj()
        ref = weakref.ref(o, lambda _: signal.raise_signal(signal.SIGINT))
        sys.unraisablehook = hook
        try:
            del o
        finally:
            sys.unraisablehook = old
    assert ref() is None
    return stop.signum


def test_an_interrupt_swallowed_by_a_callback_is_recorded_and_quiet(capsys):
    """Seen in CI once in 30 SIGINTs at start-up: the interrupt landed inside a weakref callback,
    Python printed "Exception ignored ... Traceback" and the run went on. The signal is recorded
    (the run stops after its next step, exit 130) and the command line keeps it quiet."""
    from alife.cli.main import _quiet_unraisable

    assert _interrupt_inside_a_weakref_callback(sys.__unraisablehook__) == signal.SIGINT
    assert "Interrupted: SIGINT" in capsys.readouterr().err  # what Python says without our hook
    assert _interrupt_inside_a_weakref_callback(_quiet_unraisable) == signal.SIGINT
    assert capsys.readouterr().err == ""
