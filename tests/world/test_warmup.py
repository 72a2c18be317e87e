"""The CPU step's kernels compile before `alife run`'s clock starts (not in its steps/s or its
ETA), with a one-line message when numba's cache is cold; the tiny warm-up world calls every
kernel, so a run after it compiles nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from alife.cli import run as run_mod
from alife.cli.main import main
from alife.world import warmup

SMALL = ["--set", "world.width=24", "--set", "world.height=24", "--set", "world.initial_agents=60",
         "--set", "world.capacity=256"]


def test_alife_run_warms_the_kernels_before_the_clock_starts(tmp_path, monkeypatch):
    order = []
    warm, loop = run_mod.warm_for_run, run_mod.run_loop
    monkeypatch.setattr(run_mod, "warm_for_run", lambda sim: (order.append("warm"), warm(sim))[1])
    monkeypatch.setattr(run_mod, "run_loop", lambda *a, **k: (order.append("loop"), loop(*a, **k))[1])
    assert main(["run", "--steps", "5", "--out", str(tmp_path / "run"), "--no-progress", *SMALL]) == 0
    assert order == ["warm", "loop"]
    order.clear()
    assert main(["run", "--resume", str(tmp_path / "run"), "--steps", "10", "--no-progress"]) == 0
    assert order == ["warm", "loop"]


def test_no_message_when_the_cache_is_warm(tmp_path, capsys):
    warmup.warm_kernels()
    assert not warmup.cache_is_cold()
    assert main(["run", "--steps", "5", "--out", str(tmp_path / "run"), "--no-progress", *SMALL]) == 0
    assert warmup.COMPILE_MESSAGE not in capsys.readouterr().err


def test_every_kernel_module_has_dispatchers():
    names = {d.__name__ for d in warmup.dispatchers()}
    if not names:
        pytest.skip("numba is not importable")
    assert {"_sense", "_act_move_eat", "_metabolism", "_children"} <= names


SCRIPT = textwrap.dedent("""
    import json, sys
    from alife.world import warmup
    said = []
    cold = warmup.cache_is_cold()
    warmup.warm_kernels(said.append)
    after_warm = warmup.cache_is_cold()
    # a run of the meadow after the warm-up must find every signature it needs in the cache
    def entries():
        return sum(len(d._cache._cache_file._load_index()) for d in warmup.dispatchers())
    before = entries()
    import alife
    with alife.Simulation(seed=2, device="cpu", overrides={"world.width": 40, "world.height": 40,
                          "world.initial_agents": 300, "world.capacity": 2048}) as sim:
        sim.run(150)
    grew = entries() - before
    print(json.dumps({"cold": cold, "said": said, "after_warm": after_warm, "grew": grew}))
""")


@pytest.mark.slow
def test_a_cold_cache_compiles_in_the_warm_up_with_a_message(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                         timeout=900, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    assert r["cold"] is True and r["said"] == [warmup.COMPILE_MESSAGE]
    assert r["after_warm"] is False  # every kernel compiled (and cached) by the tiny world
    assert r["grew"] == 0  # the run compiled no signature the warm-up had not
