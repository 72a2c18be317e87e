"""`alife assay`: pools from checkpoints and lineage files, descent tracked through births,
relative fitness computed as documented, foraging trials without births, seeded replicates,
intervals against known values, and the command line's files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from alife import assay as A
from alife.cli.main import main

TINY = ["--set", "world.width=32", "--set", "world.height=32", "--set", "world.initial_agents=80",
        "--set", "world.capacity=1024"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("assay") / "run"
    assert main(["run", "--steps", "60", "--seed", "3", "--out", str(d), "--no-progress",
                 "--no-record", "replay", *TINY]) == 0
    return d


def test_t_quantiles_and_intervals():
    assert A.t_quantile_975(1) == pytest.approx(12.7062, abs=1e-4)
    assert A.t_quantile_975(7) == pytest.approx(2.3646, abs=1e-4)
    assert A.t_quantile_975(40) == pytest.approx(2.0211, abs=2e-4)   # beyond the table
    assert A.t_quantile_975(120) == pytest.approx(1.9799, abs=2e-4)
    m = A.mean_interval([1.0, 2.0, 3.0, float("nan")])
    assert (m["mean"], m["sd"], m["n"]) == (2.0, 1.0, 3)
    assert m["hi"] - m["mean"] == pytest.approx(4.3027 / math.sqrt(3), abs=1e-4)
    assert A.mean_interval([])["n"] == 0


def test_pools_from_a_run(run_dir):
    anc, evo = A.run_pools(run_dir)
    assert anc.name == "ancestral" and anc.genomes.shape[0] == 80  # the roots
    assert "step -1" in anc.source
    assert evo.name == "evolved" and "step 60" in evo.source
    cfg = A.run_world(run_dir)
    assert cfg.world.width == 32 and cfg.plugins == []
    assert anc.genomes.shape[1] == evo.genomes.shape[1]
    # selectors: the last stored genomes of one species
    last = A.parse_pool(f"late={run_dir}@step=last")
    sp = int(last.species[0])
    one = A.parse_pool(f"one={run_dir}@step=last,species={sp}")
    assert set(one.species.tolist()) == {sp} and one.genomes.shape[0] <= last.genomes.shape[0]
    assert np.array_equal(np.sort(last.genomes[:, 0]), np.sort(evo.genomes[:, 0]))  # same living at the end
    with pytest.raises(A.UserError, match="no stored genomes"):
        A.parse_pool(f"x={run_dir}@step=last,species=99999")


def test_descent_is_tracked_and_fitness_is_the_documented_log_ratio(run_dir):
    anc, evo = A.run_pools(run_dir)
    res = A.assay([anc, evo], A.run_world(run_dir), replicates=2, steps=40, every=10, seed=5)
    assert [r.seed for r in res.replicates] == [5, 6]
    for r in res.replicates:
        assert r.births > 0
        # every living agent belongs to a pool: children inherited their parent's
        assert r.counts.sum(axis=1).tolist() == r.population
        assert r.counts[0].tolist() == [40, 40] and r.steps == [0, 10, 20, 30, 40]
    rows = res.table()
    got = rows[1]["per_replicate"]["relative_fitness"]
    want = [math.log((r.counts[-1, 1] + 0.5) / (r.counts[-1, 0] + 0.5)) for r in res.replicates]
    assert got == pytest.approx(want)
    assert rows[0]["relative_fitness"]["mean"] == 0.0
    again = A.assay([anc, evo], A.run_world(run_dir), replicates=1, steps=40, every=10, seed=6)
    assert np.array_equal(again.replicates[0].counts, res.replicates[1].counts)  # seed i reproduces


def test_two_copies_of_one_pool_are_neutral(run_dir):
    """The known answer: a pool against an identical copy of itself has relative fitness 0 (its
    interval over replicates holds 0) and keeps about half the world."""
    anc, _ = A.run_pools(run_dir)
    twin = A.Pool("twin", anc.genomes.copy(), anc.species.copy(), source=anc.source)
    res = A.assay([anc, twin], A.run_world(run_dir), replicates=8, steps=60, every=20, seed=11)
    row = res.table()[1]
    rf, share = row["relative_fitness"], row["final_share"]
    assert rf["lo"] <= 0.0 <= rf["hi"], rf
    assert abs(share["mean"] - 0.5) < 0.15, share
    assert row["gain_rate"]["lo"] <= 0.0 <= row["gain_rate"]["hi"], row["gain_rate"]


def test_a_dead_pool_and_a_foraging_trial(run_dir):
    anc, _ = A.run_pools(run_dir)
    bad = A.Pool("nan", np.full_like(anc.genomes[:4], np.nan), anc.species[:4], None, "NaN genomes")
    res = A.assay([anc, bad], A.run_world(run_dir), replicates=1, steps=5, every=5, seed=0)
    r = res.replicates[0]
    assert r.counts[-1, 1] == 0 and r.counts[-1, 0] > 0  # NaN genomes die of cause "invalid"
    w = res.table()[1]["per_replicate"]["relative_fitness"][0]
    assert w == pytest.approx(math.log(0.5 / (r.counts[-1, 0] + 0.5)))
    f = A.assay([anc], A.run_world(run_dir), replicates=1, steps=30, every=10, seed=0, foraging=True, mode="mono")
    fr = f.replicates[0]
    assert fr.births == 0 and np.all(np.diff(fr.counts[:, 0]) <= 0)
    assert fr.gained[0] > 0 and fr.agent_steps[0] > 0


def test_wrong_genome_size_is_refused(run_dir):
    anc, _ = A.run_pools(run_dir)
    short = A.Pool("short", anc.genomes[:, :10], anc.species, None, "cut")
    with pytest.raises(A.UserError, match="genomes of size 10"):
        A.assay([short], A.run_world(run_dir), replicates=1, steps=2)


def test_command_line(run_dir, tmp_path, capsys):
    out = tmp_path / "a"
    assert main(["assay", str(run_dir), "--steps", "10", "--replicates", "2", "--quiet", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| evolved |" in text and "95%" in text
    data = json.loads((out / "assay.json").read_text())
    assert [p["name"] for p in data["pools"]] == ["ancestral", "evolved"]
    assert len(data["replicates"]) == 2 and data["table"][1]["replicates"] == 2
    assert (out / "assay.png").stat().st_size > 10_000 and (out / "assay_shares.csv").is_file()
    assert main(["assay", "--pool", f"a={run_dir}@step=first", "--pool", f"b={run_dir}", "--mode", "mono",
                 "--foraging", "--steps", "10", "--replicates", "1", "--quiet", "-o", str(tmp_path / "b"),
                 "--reference", "b"]) == 0
    data = json.loads((tmp_path / "b" / "assay.json").read_text())
    assert data["reference"] == "b" and data["foraging"] and data["mode"] == "mono"
    assert main(["assay", str(run_dir), "--reference", "nobody", "--steps", "1", "--quiet", "-o",
                 str(tmp_path / "c")]) == 2
