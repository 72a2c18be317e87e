"""`alife sweep`: the plan, gathering against hand-computed means and intervals, resuming (finished
runs skipped, unfinished ones redone), failures reported; real runs under -m slow, and the same
table locally and on a local Ray cluster under -m distributed."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alife import sweep as S
from alife.cli.main import main

TINY = ["world.width=32", "world.height=32", "world.initial_agents=60", "world.capacity=1024"]


def test_plan_names_groups_and_grid():
    runs = S.plan(["meadow", "worlds/seasons.toml"], [0, 1], 50, overrides=["world.width=32"],
                  vary=["agent.max_age=100,200"], args=["-p", "x"])
    assert len(runs) == 2 * 2 * 2
    assert runs[0].name == "meadow-agent.max_age=100-s0" and runs[0].group == "meadow[agent.max_age=100]"
    assert runs[0].overrides == ["world.width=32", "agent.max_age=100"] and runs[0].args == ["-p", "x"]
    assert {r.group for r in runs} == {"meadow[agent.max_age=100]", "meadow[agent.max_age=200]",
                                      "seasons[agent.max_age=100]", "seasons[agent.max_age=200]"}
    cmd = S.command(runs[-1], Path("/x/runs") / runs[-1].name)
    assert cmd[3:] == ["run", "worlds/seasons.toml", "--seed", "1", "--steps", "50", "--out",
                       "/x/runs/seasons-agent.max_age=200-s1", "--no-progress", "--set", "world.width=32",
                       "--set", "agent.max_age=200", "-p", "x"]
    two = S.plan(["a/meadow.toml", "b/meadow.toml"], [0], 10)
    assert [r.name for r in two] == ["meadow0-s0", "meadow1-s0"]
    with pytest.raises(S.UserError, match="KEY=V1"):
        S.plan(["meadow"], [0], 10, vary=["agent.max_age"])


def _fake_run(d: Path, **summary) -> None:
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps(summary))


def test_gather_means_and_intervals_by_hand(tmp_path):
    runs = S.plan(["meadow", "seasons"], [0, 1, 2], 10)
    S.write_plan(tmp_path, runs, {"steps": 10, "assay": None})
    births = {"meadow": [10, 20, 30], "seasons": [5, 5, 8]}
    for r in runs:
        _fake_run(tmp_path / "runs" / r.name, births=births[r.world][r.seed], extinct=r.seed == 2,
                  population={"final": 7}, steps_per_s=123.0 + r.seed)
    # an unfinished run (failed.json) is left out of the table
    (tmp_path / "runs" / "seasons-s2" / "failed.json").write_text("{}")
    got, table = S.gather(tmp_path, ["births", "extinct", "population.final", "mating.two_parent_share"])
    assert len(got) == 5
    m, s = table[0], table[1]
    assert (m["group"], m["runs"], s["runs"]) == ("meadow", 3, 2)
    assert m["births"]["mean"] == 20 and m["births"]["sd"] == 10
    assert m["births"]["hi"] - 20 == pytest.approx(4.3027 * 10 / math.sqrt(3), abs=1e-3)
    assert m["extinct"]["mean"] == pytest.approx(1 / 3)
    assert s["births"]["mean"] == 5 and s["births"]["sd"] == 0 and s["births"]["n"] == 2
    assert m["mating.two_parent_share"]["n"] == 0  # absent from these summaries
    with pytest.raises(S.UserError, match="machine"):
        S.gather(tmp_path, ["steps_per_s"])
    paths = S.write_tables(tmp_path, got, table, ["births"])
    md = paths["md"].read_text()
    assert "| births | 20 [-4.842, 44.84] | 5 [5, 5] |" in md
    assert paths["png"].stat().st_size > 5000


def test_resume_skips_finished_runs_and_redoes_the_rest(tmp_path, monkeypatch):
    runs = S.plan(["meadow"], [0, 1, 2], 10)
    S.write_plan(tmp_path, runs, {"steps": 10, "assay": None})
    _fake_run(tmp_path / "runs" / "meadow-s0", births=1)
    (tmp_path / "runs" / "meadow-s1").mkdir(parents=True)  # killed midway: no summary.json
    (tmp_path / "runs" / "meadow-s1" / "partial").write_text("x")
    calls = []

    def fake(cmd):
        out = Path(cmd[cmd.index("--out") + 1])
        calls.append(out.name)
        assert not out.exists()  # an unfinished folder is removed before the run starts again
        _fake_run(out, births=int(cmd[cmd.index("--seed") + 1]) + 10)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(S, "_call", fake)
    res = S.sweep(["meadow"], [0, 1, 2], 10, tmp_path, jobs=1, fields=["births"])
    assert sorted(calls) == ["meadow-s1", "meadow-s2"] and res["skipped"] == 1
    assert res["table"][0]["births"]["mean"] == pytest.approx((1 + 11 + 12) / 3)
    calls.clear()
    res = S.sweep(["meadow"], [0, 1, 2], 10, tmp_path, jobs=1, fields=["births"])
    assert calls == [] and res["skipped"] == 3
    with pytest.raises(S.UserError, match="another sweep"):
        S.sweep(["meadow"], [0, 1], 10, tmp_path)


def test_a_failing_run_is_reported(tmp_path, capsys):
    code = main(["sweep", "meadow", "--seeds", "1", "--steps", "5", "--set", "world.width=-4", "-o", str(tmp_path),
                 "--jobs", "1"])
    assert code == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "world.width" in out
    assert (tmp_path / "logs" / "meadow-s0.log").is_file()


def _sweep(out: Path, *extra: str) -> subprocess.CompletedProcess:
    sets = [x for s in TINY for x in ("--set", s)]
    return subprocess.run([sys.executable, "-m", "alife", "sweep", "meadow", "worlds/seasons.toml", "--seeds", "2",
                           "--steps", "200", *sets, "-o", str(out), *extra], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent, timeout=900)


@pytest.mark.slow
def test_a_killed_sweep_resumes(tmp_path):
    out = tmp_path / "sw"
    sets = [x for s in TINY for x in ("--set", s)]
    p = subprocess.Popen([sys.executable, "-m", "alife", "sweep", "meadow", "--seeds", "4", "--steps", "200", *sets,
                          "-o", str(out), "--jobs", "1"], cwd=Path(__file__).resolve().parent.parent,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline and not list(out.glob("runs/*/summary.json")):
        time.sleep(0.5)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    done = {d.parent.name: d.stat().st_mtime_ns for d in out.glob("runs/*/summary.json")}
    assert 1 <= len(done) < 4
    r = subprocess.run([sys.executable, "-m", "alife", "sweep", "meadow", "--seeds", "4", "--steps", "200", *sets,
                        "-o", str(out), "--jobs", "1"], cwd=Path(__file__).resolve().parent.parent,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(done)} already finished" in r.stdout
    for name, mtime in done.items():
        assert (out / "runs" / name / "summary.json").stat().st_mtime_ns == mtime  # not run again
    assert len(list(out.glob("runs/*/summary.json"))) == 4


@pytest.mark.distributed
def test_the_same_table_locally_and_on_ray(tmp_path):
    pytest.importorskip("ray")
    local = _sweep(tmp_path / "local", "--jobs", "2")
    assert local.returncode == 0, local.stdout + local.stderr
    ray = _sweep(tmp_path / "ray", "--ray", "--ray-cpus", "2")
    assert ray.returncode == 0, ray.stdout + ray.stderr
    assert "on Ray local cluster" in ray.stdout
    a = (tmp_path / "local" / "table.csv").read_text()
    b = (tmp_path / "ray" / "table.csv").read_text()
    assert a == b and a.count("\n") == 3  # header + 2 worlds


def test_assay_results_join_the_table(tmp_path):
    runs = S.plan(["meadow"], [0, 1], 10)
    S.write_plan(tmp_path, runs, {"steps": 10, "assay": ["--steps", "5"]})
    for r, w in zip(runs, (0.5, 1.5), strict=True):
        d = tmp_path / "runs" / r.name
        _fake_run(d, births=3)
        (d / "assay").mkdir()
        table = [{"pool": "ancestral", "reference": True, "relative_fitness": {"mean": 0.0}},
                 {"pool": "evolved", "reference": False, "relative_fitness": {"mean": w},
                  "gain_rate": {"mean": -w}, "final_share": {"mean": float("nan")}}]
        (d / "assay" / "assay.json").write_text(json.dumps({"table": table}))
    got, table = S.gather(tmp_path, ["births"])
    assert [g["assay.relative_fitness"] for g in got] == [0.5, 1.5]
    assert table[0]["assay.relative_fitness"]["mean"] == 1.0 and table[0]["assay.gain_rate"]["mean"] == -1.0
    assert table[0]["assay.final_share"]["n"] == 0


def test_an_interrupted_sweep_stops_its_runs(tmp_path, monkeypatch):
    """Ctrl-C or SIGTERM in a local sweep: queued runs never start and running ones are stopped and
    waited for, so nothing writes into the sweep folder afterwards (a resume runs them again)."""
    runs = S.plan(["meadow"], [0, 1, 2, 3, 4], 10)
    S.write_plan(tmp_path, runs, {"steps": 10, "assay": None})
    started = []

    def cmd(spec, run_dir):
        started.append(spec.seed)
        if spec.seed == 0:
            return [sys.executable, "-c", f"import os; os.makedirs({str(run_dir)!r}); "
                    f"open(os.path.join({str(run_dir)!r}, 'summary.json'), 'w').write('{{}}')"]
        return [sys.executable, "-c", "import time; time.sleep(120)"]

    def report(r):
        raise KeyboardInterrupt

    monkeypatch.setattr(S, "command", cmd)
    t0 = time.time()
    with pytest.raises(KeyboardInterrupt):
        S.run_local(runs, tmp_path, 2, None, report)
    assert time.time() - t0 < 60
    assert 0 in started and 1 in started and 4 not in started and len(started) <= 3
    assert not S._CHILDREN
    time.sleep(0.5)
    assert len(started) <= 3  # no thread started another run after the interruption
    assert S.finished(tmp_path / "runs" / "meadow-s0") and not (tmp_path / "runs" / "meadow-s4").exists()
