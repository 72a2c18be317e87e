"""Run folders: made whole or not at all, locked for the life of their run, marked when the run
failed; odd, unwritable or full output paths are one line; a world name cannot leave replays/."""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alife import checkpoint as ck
from alife.cli.main import main

SMALL = {"world.width": 32, "world.height": 32, "world.initial_agents": 80, "world.capacity": 256}
SMALL_SET = [f"--set={k}={v}" for k, v in SMALL.items()]

RAISES_AT_START = """
from alife.plugins import hookimpl

@hookimpl
def alife_sim_start(sim):
    raise RuntimeError("no start for you")
"""

RAISES_AT_STEP_5 = """
from alife.plugins import hookimpl

@hookimpl
def alife_step_end(sim, step):
    if step == 5:
        raise RuntimeError("boom at step 5")
"""


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "alife.cli.main", "run", "--no-progress", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("alife: error: ") and "Traceback" not in err, err
    return lines[0]


def test_two_runs_into_one_out_at_once(tmp_path):
    run = tmp_path / "run"
    args = _cmd(*SMALL_SET, "--steps", "30", "--out", str(run))
    procs = [subprocess.Popen(args + ["--seed", str(s)], env=_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for s in (1, 2)]
    out = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    rcs = sorted(rc for rc, _ in out)
    assert rcs == [0, 2], out
    err = next(e for rc, e in out if rc == 2)
    assert "taken by another run" in err or "already exists" in err or "in use" in err, err
    won = next(s for (rc, _), s in zip(out, (1, 2), strict=True) if rc == 0)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["seed"] == won and json.loads((run / "run.json").read_text())["seed"] == won
    assert not list(tmp_path.glob(".run.tmp-*"))


def test_kill_during_start_up_leaves_nothing_or_a_resumable_folder(tmp_path):
    """SIGKILL at random moments of start-up (folder creation, recorders, the world): afterwards
    there is no folder, or one that --resume accepts; and a new --out of the same name works."""
    rng = random.Random(3)
    outcomes = []
    for i in range(4):
        run = tmp_path / f"run{i}"
        proc = subprocess.Popen(_cmd(*SMALL_SET, "--steps", "20", "--out", str(run)), env=_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        if not run.exists():
            outcomes.append("no folder")
            r = subprocess.run(_cmd(*SMALL_SET, "--steps", "5", "--out", str(run)), env=_env(),
                               capture_output=True, text=True, timeout=300)
        else:
            outcomes.append("folder")
            # --steps past the killed run's 20: on a fast machine it may have finished (its last
            # checkpoint at step 20) before the kill, and a finished run is resumable too
            r = subprocess.run(_cmd("--resume", str(run), "--steps", "25"), env=_env(),
                               capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, (outcomes, r.stderr[-2000:])
    assert not list(tmp_path.glob(".*.tmp-*"))
    print(outcomes)


def test_stale_temporary_folder_of_a_killed_run_is_cleared(tmp_path, capsys):
    stale = tmp_path / ".run.tmp-999999"
    stale.mkdir()
    (stale / "run.json").write_text("{")
    assert main(["run", "--no-progress", *SMALL_SET, "--steps", "3", "--out", str(tmp_path / "run")]) == 0
    assert not stale.exists()


@pytest.mark.parametrize("why", ["unknown strategy", "plugin raises at start"])
def test_a_run_that_never_started_leaves_no_folder(tmp_path, capsys, why):
    run = tmp_path / "run"
    if why == "unknown strategy":
        extra = ["--set", "strategies.selection=nope"]
    else:
        (tmp_path / "plugins").mkdir()
        (tmp_path / "plugins" / "no_start.py").write_text(RAISES_AT_START)
        extra = ["--plugins-dir", str(tmp_path / "plugins")]
    assert main(["run", "--no-progress", *SMALL_SET, *extra, "--steps", "3", "--out", str(run)]) == 2
    _one_line(capsys.readouterr().err)
    assert not run.exists()
    assert [p.name for p in tmp_path.iterdir()] in ([], ["plugins"])


def test_a_run_that_failed_midway_is_marked_failed(tmp_path, capsys):
    run = tmp_path / "run"
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "late.py").write_text(RAISES_AT_STEP_5)
    rc = main(["run", "--no-progress", *SMALL_SET, "--plugins-dir", str(tmp_path / "plugins"),
               "--steps", "20", "--out", str(run)])
    assert rc == 2
    failed = json.loads((run / "failed.json").read_text())
    assert "boom at step 5" in failed["error"] and failed["step"] == 6  # steps done: 0..5
    assert not (run / "summary.json").exists()


def test_a_locked_run_folder_is_refused(tmp_path, capsys):
    from alife.cli.run import RunLock

    run = tmp_path / "run"
    assert main(["run", "--no-progress", *SMALL_SET, "--steps", "4", "--out", str(run)]) == 0
    capsys.readouterr()
    lineage = (run / "lineage.h5").read_bytes()
    lock = RunLock.take(run)  # as the run that is still going would hold it
    try:
        assert main(["run", "--no-progress", "--resume", str(run), "--steps", "8"]) == 2
        assert f"is in use by another alife run (pid {os.getpid()})" in _one_line(capsys.readouterr().err)
    finally:
        lock.release()
    assert (run / "lineage.h5").read_bytes() == lineage
    assert main(["run", "--no-progress", "--resume", str(run), "--steps", "8"]) == 0


# ------------------------------------------------------------------- odd output paths
def test_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    assert main(["run", "--no-progress", *SMALL_SET, "--steps", "2", "--out", str(f)]) == 2
    assert "exists and is not a folder" in _one_line(capsys.readouterr().err)
    assert main(["run", "--no-progress", *SMALL_SET, "--steps", "2", "--out", str(f / "run")]) == 2
    assert "is a file, not a folder" in _one_line(capsys.readouterr().err)
    assert f.read_text() == "x"


def test_out_is_a_symlink_loop(tmp_path, capsys):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert main(["run", "--no-progress", *SMALL_SET, "--steps", "2", "--out", str(loop)]) == 2
    _one_line(capsys.readouterr().err)
    assert loop.is_symlink()


def test_out_is_unwritable(tmp_path, capsys):
    assert main(["run", "--no-progress", *SMALL_SET, "--steps", "2", "--out", "/proc/alife-run"]) == 2
    assert "cannot create it" in _one_line(capsys.readouterr().err)
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        assert main(["run", "--no-progress", *SMALL_SET, "--steps", "2", "--out", str(ro / "run")]) == 2
        assert "Permission denied" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("name", ["../escaped", "/tmp/alife-absolute-escape", "a/../../b"])
def test_world_name_cannot_leave_replays(tmp_path, monkeypatch, capsys, name):
    monkeypatch.chdir(tmp_path)
    world = tmp_path / "w.toml"
    world.write_text(f"name = {name!r}\n")
    assert main(["run", "--no-progress", str(world), *SMALL_SET, "--steps", "2"]) == 0
    made = [p for p in tmp_path.rglob("run.json")]
    assert len(made) == 1 and made[0].parent.parent == tmp_path / "replays", made
    assert not Path("/tmp/alife-absolute-escape-s0").exists()


def _fsize_limit(limit: int):
    def set_limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return set_limit


def test_disk_full_midway_is_one_line_and_keeps_the_last_checkpoint(tmp_path):
    """Writes past a file-size limit fail as on a full disk (EFBIG): the run stops with one line,
    no traceback and no crash, its last checkpoint intact, and a resume with room finishes it."""
    run = tmp_path / "run"
    big = {**SMALL, "world.capacity": 2048, "world.initial_agents": 400}
    p = subprocess.run(_cmd(*[f"--set={k}={v}" for k, v in big.items()], "--steps", "600",
                            "--checkpoint-every", "5", "--replay-every", "1", "--out", str(run)),
                       env=_env(), capture_output=True, text=True, timeout=600,
                       preexec_fn=_fsize_limit(1_000_000))
    assert p.returncode != -signal.SIGSEGV, p.stderr[-3000:]
    assert p.returncode == 2, p.stderr[-3000:]
    line = _one_line(p.stderr)
    assert "File too large" in line, line
    last = ck.latest_checkpoint(run)
    assert last is not None
    ck.open_checkpoint(last)  # intact
    failed = json.loads((run / "failed.json").read_text())
    assert "File too large" in failed["error"]
    r = subprocess.run(_cmd("--resume", str(run), "--steps", str(ck.list_checkpoints(run)[-1][0] + 5)),
                       env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert not (run / "failed.json").exists()


def test_a_run_killed_before_its_record_files_existed_restarts_from_zero(tmp_path):
    """The window the random start-up kills above can land in: the folder and run.json exist,
    the replay and lineage files do not yet; --resume starts the run again from step 0."""
    run = tmp_path / "run"
    assert main(["run", "--no-progress", *SMALL_SET, "--steps", "5", "--out", str(run)]) == 0
    for name in ("replay.h5", "lineage.h5", "summary.json"):
        (run / name).unlink()
    for cp in (run / "checkpoints").glob("*.h5"):
        cp.unlink()
    assert main(["run", "--no-progress", "--resume", str(run), "--steps", "5"]) == 0
    assert (run / "replay.h5").exists() and (run / "lineage.h5").exists() and (run / "summary.json").exists()
