"""`alife lineage FILE summary | ancestry | species | export | plot`."""

from __future__ import annotations

import pandas as pd
import pytest

from alife.cli.main import main

PARENTS = [(-1, -1), (-1, -1), (0, -1), (0, -1), (2, -1), (2, 3), (1, -1)]
STEPS = [-1, -1, 5, 7, 10, 12, 3]
DEATHS = {0: 20, 1: 8, 6: 9, 3: 15}


def test_summary(make_synthetic, capsys):
    p = make_synthetic(PARENTS, STEPS, DEATHS)
    assert main(["lineage", str(p), "summary"]) == 0
    out = capsys.readouterr().out
    assert "agents: 7 (2 roots at step -1, 5 births), 4 deaths, 3 living" in out
    assert "MRCA of the living: agent 2 born at step 5" in out
    assert "phylogenetic diversity of the living: 18 steps; mean pairwise distance: 8.0 steps" in out
    assert "checks: all pass" in out


def test_summary_compares_with_the_run_summary(make_synthetic, capsys):
    import json

    p = make_synthetic(PARENTS, STEPS, DEATHS)
    (p.parent / "summary.json").write_text(json.dumps({"steps": 21, "births": 5, "deaths": 4}))
    assert main(["lineage", str(p), "summary"]) == 0
    assert "births equal summary.json's; deaths equal summary.json's" in capsys.readouterr().out
    (p.parent / "summary.json").write_text(json.dumps({"steps": 21, "births": 6, "deaths": 4}))
    assert main(["lineage", str(p), "summary"]) == 1
    assert "checks: FAILED: births equal summary.json's" in capsys.readouterr().out


def test_ancestry_and_species(make_synthetic, capsys):
    p = make_synthetic(PARENTS, STEPS, DEATHS)
    assert main(["lineage", str(p.parent), "ancestry", "5"]) == 0  # a run folder works too
    rows = capsys.readouterr().out.strip().splitlines()
    assert [r.split()[0] for r in rows[1:]] == ["5", "2", "0"]
    assert main(["lineage", str(p), "species"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["id", "parent", "origin_step", "extinction_step", "births", "living"]
    assert out[1].split() == ["0", "-1", "0", "<NA>", "7", "3"]


@pytest.mark.parametrize("fmt, level, extra", [("alife-csv", "agent", []), ("alife-csv", "species", []),
                                               ("newick", "agent", ["--first-parent"]),
                                               ("newick", "species", [])])
def test_export(make_synthetic, tmp_path, capsys, fmt, level, extra):
    p = make_synthetic(PARENTS, STEPS, DEATHS)
    out = tmp_path / "out.txt"
    assert main(["lineage", str(p), "export", "--format", fmt, "--level", level, "-o", str(out), *extra]) == 0
    n = 7 if level == "agent" else 1
    assert capsys.readouterr().out.strip() == f"wrote {n} taxa to {out}"
    if fmt == "alife-csv":
        assert len(pd.read_csv(out)) == n
    else:
        assert out.read_text().endswith(";\n")


def test_plot(sexual_run, tmp_path, capsys):
    import matplotlib.image as mpimg

    path, _ = sexual_run
    assert main(["lineage", str(path), "plot", "-o", str(tmp_path / "plots")]) == 0
    names = [line.rsplit("/", 1)[-1] for line in capsys.readouterr().out.split()]
    assert names == ["population.png", "muller.png", "phylogeny.png", "activity.png"]
    for name in names:
        img = mpimg.imread(tmp_path / "plots" / name)
        assert img.shape[0] > 300 and img.shape[1] > 600
        assert img[..., :3].std() > 0.05  # something was drawn


def test_output_into_a_closed_pipe_is_quiet(make_synthetic):
    """`alife lineage FILE species | head` must not end in a BrokenPipeError traceback."""
    import os
    import subprocess
    import sys

    p = make_synthetic(PARENTS, STEPS, DEATHS)
    r, w = os.pipe()
    os.close(r)  # the reader is gone before we write: every write fails with EPIPE
    try:
        proc = subprocess.run([sys.executable, "-m", "alife", "lineage", str(p), "species"],
                              stdout=w, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(w)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert proc.returncode == 141
