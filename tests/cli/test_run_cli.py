"""`alife run`: a run folder with a summary; config errors are one line, exit 2, no traceback."""

import json
import subprocess
import sys

import pytest

from alife.cli.main import main

SMALL = ["--set", "world.width=24", "--set", "world.height=24", "--set", "world.initial_agents=60",
         "--set", "world.capacity=256"]


def test_run_writes_summary(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["run", "--steps", "60", "--seed", "4", "--out", str(out), "--no-progress", *SMALL])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["steps"] == 60 and s["seed"] == 4
    assert s["population"]["final"] == sum(s["species"]["final_population_by_species"].values())
    assert s["population"]["min"] <= s["population"]["final"] <= s["population"]["max"]
    assert s["births"] > 0 and s["deaths"] == sum(s["deaths_by_cause"].values())
    assert s["strategies"]["mutation"] == "gaussian"
    assert {"torch", "numpy", "alife"} <= set(s["versions"])
    assert "population: final" in capsys.readouterr().out


def test_same_seed_same_summary(tmp_path):
    sums = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert main(["run", "--steps", "40", "--seed", "9", "--out", str(out), "--no-progress", *SMALL]) == 0
        s = json.loads((out / "summary.json").read_text())
        for k in ("wall_time_s", "steps_per_s", "run_dir"):
            s.pop(k, None)
        sums.append(s)
    assert sums[0] == sums[1]


@pytest.mark.parametrize("args, needle", [
    (["--set", "world.capacty=3"], "world.capacty: unknown key; did you mean 'capacity'?"),
    (["--set", "agent.max_speed=fast"], "agent.max_speed: expected a number, got 'fast'"),
    (["--set", "world.width=-5"], "world.width: expected a value >= 8, got -5"),
    (["--set", "resource.regrowth=nan"], "resource.regrowth: expected a finite number"),
    (["--set", "world.initial_agents=5000", "--set", "world.capacity=100"], "do not fit in world.capacity"),
    (["--set", "strategies.mutation=nonesuch"], "strategies.mutation = 'nonesuch': no loaded plugin provides it"),
])
def test_config_errors_name_key_and_exit_2(tmp_path, args, needle):
    p = subprocess.run([sys.executable, "-m", "alife.cli.main", "run", "--steps", "1", "--no-progress",
                        "--out", str(tmp_path / "r"), *args], capture_output=True, text=True)
    assert p.returncode == 2
    assert needle in p.stderr
    assert "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_threads_default_to_one_on_the_cpu(tmp_path):
    # the CPU step is serial numba passes; a second torch thread only spins (docs/performance.md)
    code = ("import torch, sys; from alife.cli.main import main; torch.set_num_threads(2); "
            "rc = main(sys.argv[1:]); print('threads', torch.get_num_threads()); sys.exit(rc)")
    base = ["run", "--steps", "3", "--no-progress", "--device", "cpu", *SMALL]
    for extra, want in (([], 1), (["--threads", "2"], 2)):
        p = subprocess.run([sys.executable, "-c", code, *base, "--out", str(tmp_path / f"r{want}"), *extra],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr[-500:]
        assert f"threads {want}" in p.stdout
    p = subprocess.run([sys.executable, "-m", "alife.cli.main", *base, "--threads", "0",
                        "--out", str(tmp_path / "r0")], capture_output=True, text=True)
    assert p.returncode == 2 and "--threads must be >= 1, got 0" in p.stderr
    assert not (tmp_path / "r0").exists()


def test_bad_world_file_names_the_file(tmp_path):
    w = tmp_path / "bad.toml"
    w.write_text('[world]\nwidht = 10\n')
    p = subprocess.run([sys.executable, "-m", "alife.cli.main", "run", str(w), "--steps", "1"],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert f"{w}: world.widht: unknown key; did you mean 'width'?" in p.stderr
    w.write_text('[world\n')
    p = subprocess.run([sys.executable, "-m", "alife.cli.main", "run", str(w), "--steps", "1"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "not valid TOML" in p.stderr and "Traceback" not in p.stderr


def test_embedded_default_world_matches_the_file_in_worlds():
    from pathlib import Path

    from alife.config import default_world_text
    assert default_world_text() == (Path(__file__).parents[2] / "worlds" / "meadow.toml").read_text()
