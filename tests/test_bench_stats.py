"""The statistics ``benchmarks/tasks.py`` publishes beside EvoTorch, against known answers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def tasks():
    sys.path.insert(0, str(BENCH))
    try:
        import tasks as mod  # noqa: PLC0415  (the script's own directory, as when it runs)
    finally:
        sys.path.remove(str(BENCH))
    return mod


def test_ratio_of_medians_and_probability_of_fewer_steps(tasks):
    rng = np.random.default_rng(0)
    m, lo, hi, p = tasks.ratio_ci([1, 2, 3], [2, 4, 6], rng)
    assert m == pytest.approx(0.5) and lo <= 0.5 <= hi
    assert p == pytest.approx(7.5 / 9)  # 7 of 9 pairs fewer, one tie (2 = 2) counts a half
    m, lo, hi, p = tasks.ratio_ci([5, 7, 9, 11], [5, 7, 9, 11], rng)  # the same sample: no difference
    assert m == pytest.approx(1.0) and lo < 1.0 < hi and p == pytest.approx(0.5)
    m, _, _, p = tasks.ratio_ci([None, None], [None, None], rng)  # neither reached: no difference
    assert m == 1.0 and p == pytest.approx(0.5)
    m, _, _, p = tasks.ratio_ci([10, None, None], [10, 20, 30], rng)  # ours mostly never reached
    assert m == float("inf") and p == pytest.approx(2.5 / 9)  # 10 < 20, 10 < 30, 10 = 10


def test_against_the_peer_lists_each_of_our_methods(tasks):
    runs = {"cartpole": [{"method": "alife-nes", "env_steps_to_threshold": s} for s in (100, 200, 300)]
            + [{"method": "evotorch-snes", "env_steps_to_threshold": s} for s in (200, 400, 600)]}
    out = tasks.against(runs, "evotorch-snes")
    assert "| cartpole | alife-nes | 0.50 [" in out and out.rstrip().endswith("| 0.83 |")
    assert tasks.against({"cartpole": runs["cartpole"][:3]}, "evotorch-snes") == ""  # no peer rows
