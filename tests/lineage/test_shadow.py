"""The neutral shadow against known answers: its population is the run's at every grid step, and
on a neutral model (births pick parents uniformly, deaths pick victims uniformly) the fraction of
species above the activity threshold is what neutral drift gives, about ``1 - quantile``. Also
the MODES measures on a hand-made species tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import alife
from alife.lineage import analysis, schema


def neutral_lineage(path: Path, n: int = 100, steps: int = 1600, turnover: int = 25, p_new: float = 0.03,
                    founders: int = 10, seed: int = 0) -> Path:
    """A lineage file of a neutral model: a constant population of ``n``; each step ``turnover``
    uniformly chosen agents die, then ``turnover`` uniformly chosen survivors each make one child,
    which founds a new species (daughter of its parent's) with probability ``p_new``. Agents
    live about ``n / turnover`` steps, so a grid interval of several steps sees more deaths than
    standing agents, the case that emptied the old deaths-first shadow."""
    rng = np.random.default_rng(seed)
    species = list(np.arange(n) % founders)
    parents = [(-1, -1)] * n
    born = [-1] * n
    sp_parent, sp_origin = [-1] * founders, [0] * founders
    living = np.arange(n)
    deaths: dict[int, int] = {}
    for t in range(steps):
        victims = rng.choice(living.size, turnover, replace=False)
        for v in living[victims]:
            deaths[int(v)] = t
        living = np.delete(living, victims)
        chosen = living[rng.integers(living.size, size=turnover)]
        new = rng.random(turnover) < p_new
        kids = []
        for p, fresh in zip(chosen.tolist(), new.tolist(), strict=True):
            s = species[p]
            if fresh:
                sp_parent.append(s)
                sp_origin.append(t)
                s = len(sp_parent) - 1
            kids.append(len(species))
            species.append(s)
            parents.append((p, -1))
            born.append(t)
        living = np.concatenate([living, np.array(kids)])
    dead = sorted(deaths, key=lambda i: (deaths[i], i))
    m = len(species)
    data = {
        "births/id": np.arange(m), "births/parents": np.array(parents), "births/step": np.array(born),
        "births/species": np.array(species), "births/strategy": np.where(np.array(born) < 0, 0, 1),
        "births/digest": np.arange(m, dtype=np.uint64),
        "deaths/id": np.array(dead), "deaths/step": np.array([deaths[i] for i in dead]),
        "deaths/cause": np.zeros(len(dead)), "deaths/offspring": np.zeros(len(dead)),
        "deaths/lifetime_energy": np.zeros(len(dead)),
        "species/id": np.arange(len(sp_parent)), "species/parent": np.array(sp_parent),
        "species/origin_step": np.array(sp_origin),
        "strategy_names": np.array([b"initial", b"neutral"]),
    }
    schema.write_file(path, {"world_name": "neutral", "seed": seed, "causes": ["starved"]}, 4, data, steps - 1)
    return path


def test_shadow_population_tracks_the_run(tmp_path):
    lin = alife.lineage.open(neutral_lineage(tmp_path / "lineage.h5"))
    for every in (None, 7, 40):  # default grid (4 steps), and intervals of 1.75 and 10 lifetimes
        r = analysis.evolutionary_activity(lin, np.random.default_rng(2), every=every)
        real = r["abundance"].sum(axis=0)
        assert real.min() == 100  # the model keeps 100 agents after every step
        assert r["shadow_abundance"].sum(axis=0).tolist() == real.tolist()
        assert r["summary"]["shadow_population_final"] == r["summary"]["population_final"] == 100


def test_neutral_model_is_near_the_threshold_quantile(tmp_path):
    """On a neutral run the real species and the shadow's components are alike, so the fraction
    of species above the 95th percentile of the shadow's activities is near 5% (never many times
    above: the deaths-first shadow gave 30-500x in the default world)."""
    fracs = []
    for seed in range(3):
        lin = alife.lineage.open(neutral_lineage(tmp_path / f"n{seed}.h5", seed=seed))
        r = analysis.evolutionary_activity(lin, np.random.default_rng(seed))
        s = r["summary"]
        assert 0.03 <= s["shadow_fraction_above"] <= 0.06  # the quantile itself, over ~1,200 components
        fracs.append(s["fraction_above"])
        assert r["activity"].shape[0] > 1000
    assert 0.02 <= float(np.mean(fracs)) <= 0.09, fracs


def test_shadow_keeps_its_population_on_a_real_run(sexual_run):
    path, _ = sexual_run
    lin = alife.lineage.open(path)
    for every in (1, 10):
        r = analysis.evolutionary_activity(lin, np.random.default_rng(0), every=every)
        assert r["shadow_abundance"].sum(axis=0).tolist() == r["abundance"].sum(axis=0).tolist()


def _tree_file(path: Path) -> Path:
    """Species 0 (founder) lives throughout (0..40); species 1, daughter of 0, from step 10 to 19;
    species 2, daughter of 1, from 15 to the end; species 3, daughter of 0, at steps 5..7 only."""
    parents = [(-1, -1), (0, -1), (1, -1), (0, -1)]
    steps = [-1, 10, 15, 5]
    data = {
        "births/id": np.arange(4), "births/parents": np.array(parents), "births/step": np.array(steps),
        "births/species": np.array([0, 1, 2, 3]), "births/strategy": np.array([0, 1, 1, 1]),
        "births/digest": np.arange(4, dtype=np.uint64),
        "deaths/id": np.array([3, 1]), "deaths/step": np.array([8, 20]),
        "deaths/cause": np.zeros(2), "deaths/offspring": np.zeros(2), "deaths/lifetime_energy": np.zeros(2),
        "species/id": np.arange(4), "species/parent": np.array([-1, 0, 1, 0]),
        "species/origin_step": np.array([0, 10, 15, 5]), "strategy_names": np.array([b"initial", b"t"]),
        "extinctions/species": np.array([3, 1]), "extinctions/step": np.array([8, 20]),
    }
    schema.write_file(path, {"world_name": "tree", "seed": 0, "causes": ["starved"]}, 4, data, 40)
    return path


def test_modes_on_a_hand_made_tree(tmp_path):
    lin = alife.lineage.open(_tree_file(tmp_path / "lineage.h5"))
    df = analysis.modes(lin, every=1, persistence=10)
    assert df.index[0] == 0 and df.index[-1] == 30  # t + 10 must be in the file (last step 40)
    # persistent: 0 always; 3 never (gone by 15); 1 at 10..19 (its daughter 2 lives on); 2 from 15
    assert df.loc[9, "persistent"] == 1 and df.loc[10, "persistent"] == 2
    assert df.loc[15, "persistent"] == 3 and df.loc[20, "persistent"] == 2
    assert df.loc[10, "change"] == 1 and df.loc[15, "change"] == 1 and df.loc[16, "change"] == 0
    assert df.loc[0, "novelty"] == 1 and df.loc[10, "novelty"] == 1 and df.loc[20, "novelty"] == 0
    # one agent per persistent species: entropy log2(k) bits
    assert df.loc[9, "ecology"] == 0 and df.loc[15, "ecology"] == np.log2(3)
    assert df.attrs["persistence"] == 10


def test_summary_reports_activity_against_the_shadow(tmp_path, capsys):
    from alife.cli.main import main

    path = neutral_lineage(tmp_path / "lineage.h5")
    assert main(["lineage", str(path), "summary", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "near neutral" in out and "shadow population at the end 100 (run 100)" in out
    assert "MODES (species, persistence filter 160 steps" in out
