"""Analyses against hand-computed answers on a synthetic tree, and the neutral shadow's invariants."""

from __future__ import annotations

import numpy as np
import pytest

import alife
from alife.lineage import analysis

PARENTS = [(-1, -1), (-1, -1), (0, -1), (0, -1), (2, -1), (2, 3), (1, -1)]
STEPS = [-1, -1, 5, 7, 10, 12, 3]
DEATHS = {0: 20, 1: 8, 6: 9, 3: 15}


def test_phylogenetic_diversity_and_mpd(make_synthetic):
    lin = alife.lineage.open(make_synthetic(PARENTS, STEPS, DEATHS))
    # living 2, 4, 5: edges 0->2 (6 steps), 2->4 (5), 2->5 (7)
    assert analysis.phylogenetic_diversity(lin) == 18
    # pairs (2,4)=5, (2,5)=7, (4,5)=12
    assert analysis.mean_pairwise_distance(lin) == pytest.approx(8.0)
    assert analysis.mean_pairwise_distance(lin, unit_branches=True) == pytest.approx(4 / 3)


def test_activity_statistics_by_hand():
    ab = np.array([[1, 2, 0, 0], [0, 1, 1, 3]])
    dt = np.ones(4)
    act = analysis.component_activity(ab, dt)
    assert act.tolist() == [[1, 3, 3, 3], [0, 1, 2, 5]]
    st = analysis.activity_statistics(ab, dt, threshold=2, strip=1)
    assert st["diversity"].tolist() == [1, 2, 1, 1]
    assert st["cumulative"].tolist() == [1, 4, 2, 5]
    assert st["mean_cumulative"].tolist() == [1, 2, 2, 5]
    # strip [2, 3]: component 0 at t=1 (3), component 1 at t=2 (2)
    assert st["new"].tolist() == [0, 3, 2, 0]


def test_neutral_shadow_keeps_the_population(sexual_run):
    path, _ = sexual_run
    lin = alife.lineage.open(path)
    r = analysis.evolutionary_activity(lin, np.random.default_rng(1), every=1)
    real_total = r["abundance"].sum(axis=0)
    shadow = analysis.neutral_shadow(lin, r["grid"], r["abundance"], np.random.default_rng(1))
    shadow_total = shadow.sum(axis=0)
    assert shadow_total.tolist() == real_total.tolist()
    n_new = int((lin.data["species/parent"] >= 0).sum())
    assert shadow.shape[0] == int((lin.data["species/parent"] < 0).sum()) + n_new
    again = analysis.neutral_shadow(lin, r["grid"], r["abundance"], np.random.default_rng(1))
    assert np.array_equal(shadow, again)
    assert r["threshold"] > 0


def test_species_counts(make_synthetic):
    lin = alife.lineage.open(make_synthetic(PARENTS, STEPS, DEATHS, species=[0, 1, 0, 0, 0, 0, 1]))
    df = analysis.species_counts(lin, every=1)
    assert df.loc[5, "present"] == 2 and df.loc[9, "present"] == 1
