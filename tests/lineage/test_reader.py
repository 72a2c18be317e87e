"""The reader on a synthetic tree with known answers, and on a real run against the simulation."""

from __future__ import annotations

import numpy as np
import pytest

import alife

# first-parent tree: 0 -> 2 -> {4, 5}, 0 -> 3, 1 -> 6; 5's mate is 3. Living: 2, 4, 5.
PARENTS = [(-1, -1), (-1, -1), (0, -1), (0, -1), (2, -1), (2, 3), (1, -1)]
STEPS = [-1, -1, 5, 7, 10, 12, 3]
DEATHS = {0: 20, 1: 8, 6: 9, 3: 15}


def test_views_of_a_synthetic_file(make_synthetic):
    lin = alife.lineage.open(make_synthetic(PARENTS, STEPS, DEATHS))
    assert lin.living.tolist() == [2, 4, 5]
    b = lin.births
    assert b["parent2"].tolist() == [-1, -1, -1, -1, -1, 3, -1]
    assert b["death_step"].isna().tolist() == [False, False, True, False, True, True, False]
    assert b["strategy"].tolist()[:3] == ["initial", "initial", "test"]
    assert lin.deaths["id"].tolist() == [1, 6, 3, 0]
    assert lin.last_step == 20


def test_ancestry_and_descendants(make_synthetic):
    lin = alife.lineage.open(make_synthetic(PARENTS, STEPS, DEATHS))
    assert lin.ancestry(5)["id"].tolist() == [5, 2, 0]
    assert sorted(lin.ancestry(5, all_parents=True)["id"].tolist()) == [0, 2, 3, 5]
    assert lin.descendants(0).tolist() == [2, 3, 4, 5]
    assert lin.descendants(3).tolist() == [5]  # through the mate
    assert lin.descendants(4).tolist() == []
    assert lin.reaches_root(lin.living).all()


def test_mrca_and_line_of_descent(make_synthetic):
    lin = alife.lineage.open(make_synthetic(PARENTS, STEPS, DEATHS))
    assert lin.mrca() == pytest.approx({"id": 2, "step": 5, "depth": 1, "generations_to_living": 2 / 3})
    # root 0 holds all living; at 2 the children 4 and 5 tie, the older one is taken
    assert lin.line_of_descent()["id"].tolist() == [0, 2, 4]


def test_no_mrca_across_roots(make_synthetic):
    lin = alife.lineage.open(make_synthetic([(-1, -1), (-1, -1), (0, -1), (1, -1)], [-1, -1, 2, 3], {0: 5, 1: 5},
                                            last_step=6))
    assert lin.mrca() is None
    assert len(lin.line_of_descent()) == 2


def test_missing_parent_does_not_reach_root(make_synthetic):
    lin = alife.lineage.open(make_synthetic([(-1, -1), (0, -1), (99, -1)], [-1, 2, 3], {}))
    assert lin.reaches_root(np.array([0, 1, 2])).tolist() == [True, True, False]
    checks = lin.check()
    assert not checks["every parent in the file"] and not checks["every living line reaches a root"]
    assert checks["ids unique"] and checks["no death before birth"]


def test_species_over_time(make_synthetic):
    lin = alife.lineage.open(make_synthetic(PARENTS, STEPS, DEATHS, species=[0, 1, 0, 0, 0, 0, 1]))
    df = lin.species_over_time(every=1)
    # after step 9: species 0 has 0, 2, 3 (4 is born at 10); species 1 lost 1 (at 8) and 6 (at 9)
    assert df.loc[9].tolist() == [3, 0]
    assert df.loc[12].tolist() == [5, 0]
    assert df.loc[20].tolist() == [3, 0]


def test_real_run_matches_the_simulation(sexual_run):
    path, info = sexual_run
    lin = alife.lineage.open(path)
    t = info["totals"]
    assert len(lin.ids) == t["births"] + info["initial"]
    assert len(np.unique(lin.ids)) == len(lin.ids)
    assert len(lin.deaths) == t["deaths"]
    assert sorted(lin.living.tolist()) == sorted(info["living"].tolist())
    assert lin.reaches_root(lin.living).all()
    assert lin.last_step == info["steps"] - 1
    assert (lin.birth_step[: info["initial"]] == -1).all()
    assert (lin.parent_ids[: info["initial"]] == -1).all()
    assert (lin.parent_ids[info["initial"]:, 0] >= 0).all()
    assert (lin.parent_ids[:, 1] >= 0).any(), "a meadow run should have two-parent births"
    sp = lin.species
    assert sp["parent"].tolist() == info["species_parent"].tolist()
    assert sp["origin_step"].tolist() == info["species_origin"].tolist()
    extant = set(sp.loc[sp["extinction_step"].isna(), "id"].tolist())
    assert extant == set(info["living_species"].tolist())
    assert lin.deaths["cause"].isin(["starved", "old_age", "eaten", "invalid", "removed"]).all()
    s = lin.series
    assert s.index.tolist() == list(range(0, info["steps"], 5))
    assert s["population"].iloc[-1] > 0
    ids, steps, vec = lin.genomes()
    assert vec.shape == (len(ids), lin.attrs["genome_size"])
    assert set(steps.tolist()) <= set(lin.birth_step.tolist())
    assert (ids % 3 == 0).all() and len(ids) == int((lin.ids % 3 == 0).sum())
    assert lin.attrs["seed"] == 3 and "[world]" in lin.attrs["world_text"]
