"""The threshold rule's confirmation (``alife.generational.runner.confirm_best``), which the
generational runner and the EvoTorch peer of ``benchmarks/tasks.py`` both use: a genome ranked
first on a few lucky episodes must hold its place on more, or give it to the next best."""

from __future__ import annotations

import numpy as np

from alife.generational.runner import confirm_best


def player(returns_of: dict[int, list[float]]):
    """``play(b, k)``: the next ``k`` returns scripted for row ``b``; records the calls."""
    calls: list[tuple[int, int]] = []

    def play(b: int, k: int) -> np.ndarray:
        calls.append((b, k))
        out, returns_of[b] = returns_of[b][:k], returns_of[b][k:]
        return np.array(out)

    return play, calls


def test_a_lucky_best_falls_back_and_the_next_best_is_confirmed():
    # three genomes after 2 episodes each: means 100 (lucky), 90, 10
    total, n = np.array([200.0, 180.0, 20.0]), np.full(3, 2.0)
    play, calls = player({0: [0.0, 0.0, 0.0], 1: [90.0, 90.0, 90.0], 2: []})
    ok, touched = confirm_best(total, n, 5, 0, play, floor=80.0)
    assert ok and touched == [0, 1]
    assert calls == [(0, 3), (1, 3)]  # each plays all it lacks at once
    assert n.tolist() == [5.0, 5.0, 2.0] and total[0] == 200.0 and total[1] == 450.0


def test_below_the_floor_stops_without_playing_the_rest():
    total, n = np.array([200.0, 60.0]), np.full(2, 2.0)
    play, calls = player({0: [0.0, 0.0, 0.0], 1: [100.0] * 3})
    ok, touched = confirm_best(total, n, 5, 0, play, floor=80.0)
    assert not ok and touched == [0] and calls == [(0, 3)]  # genome 1 (mean 30 < 80) never plays


def test_chunks_let_a_falling_genome_stop_early():
    total, n = np.array([200.0, 180.0]), np.full(2, 2.0)
    play, calls = player({0: [0.0] * 9, 1: [90.0] * 9})
    ok, _ = confirm_best(total, n, 11, 1, play, floor=80.0)
    # genome 0: 200/3 = 66.7 after one more episode, below genome 1 (90): genome 1 plays on alone
    assert ok and calls[0] == (0, 1) and all(c == (1, 1) for c in calls[1:]) and n[1] == 11.0


def test_without_a_floor_the_best_is_confirmed_whatever_its_score():
    total, n = np.array([-50.0, -80.0]), np.full(2, 1.0)
    play, calls = player({0: [-60.0, -60.0], 1: []})
    ok, touched = confirm_best(total, n, 3, 0, play)
    assert ok and touched == [0] and n[0] == 3.0
