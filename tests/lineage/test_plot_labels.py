"""Pictures and numbers of `alife lineage`: phylogeny labels that never overlap, whole-number ticks
on count axes, no negative zeros."""

from itertools import combinations

import matplotlib
import numpy as np
import pytest

import alife.lineage
from alife.cli.main import main
from alife.lineage import plots, schema

matplotlib.use("Agg")

#: species parents: 0 and 5 founders; 1, 2, 3 daughters of 0; 4 of 1; 6 of 5; 7 of 6
SPECIES_PARENT = [-1, 0, 0, 0, 1, -1, 5, 6]
EXTINCT = {3: 40, 5: 60}  # species -> extinction step; every other species lives to the end


@pytest.fixture()
def nested_lineage(tmp_path):
    """A lineage whose extant species include parents of extant daughters (0 over 1 and 2, 1 over
    4, 6 over 7), the case where the plot used to put a daughter's row on its parent's."""
    n_sp = len(SPECIES_PARENT)
    sp = np.arange(n_sp)  # one agent per species, each the child of the first agent of the parent
    parents = [(-1, -1) if p < 0 else (p, -1) for p in SPECIES_PARENT]
    steps = [-1 if p < 0 else 10 * s for s, p in enumerate(SPECIES_PARENT)]
    dead = {s: t for s, t in EXTINCT.items()}
    n_agents, series = len(sp), np.arange(0, 100, 10)
    data = {
        "births/id": np.arange(n_agents), "births/parents": np.array(parents), "births/step": np.array(steps),
        "births/species": sp, "births/strategy": np.where(np.array(steps) < 0, 0, 1),
        "births/digest": np.arange(n_agents, dtype=np.uint64),
        "deaths/id": np.array(sorted(dead), dtype=np.int64),
        "deaths/step": np.array([dead[i] for i in sorted(dead)], dtype=np.int64),
        "deaths/cause": np.zeros(len(dead)), "deaths/offspring": np.zeros(len(dead)),
        "deaths/lifetime_energy": np.zeros(len(dead)),
        "species/id": np.arange(n_sp), "species/parent": np.array(SPECIES_PARENT),
        "species/origin_step": np.maximum(steps, 0),
        "extinctions/species": np.array(sorted(EXTINCT)), "extinctions/step": np.array([EXTINCT[s] for s in sorted(EXTINCT)]),
        "strategy_names": np.array([b"initial", b"test"]),
    }
    # observables whose counts span a small range (matplotlib would tick them at halves)
    for name, values in (("population", np.array([3, 4, 4, 5, 6, 6, 5, 4, 4, 3])),
                         ("species_count", np.array([1, 2, 2, 3, 3, 2, 2, 1, 2, 3])),
                         ("mean_energy", np.linspace(1, 2, series.size)),
                         ("diversity", np.linspace(0.1, 0.2, series.size))):
        data[f"observables/{name}/step"] = series
        data[f"observables/{name}/value"] = values
    path = tmp_path / "lineage.h5"
    schema.write_file(path, {"world_name": "nested", "seed": 0, "causes": ["starved"]}, 4, data, 99)
    return path


@pytest.fixture()
def kept_figures(monkeypatch):
    """The figures the plot functions draw, kept open (they close each one after saving it)."""
    import matplotlib.pyplot as plt

    figs = []
    monkeypatch.setattr(plt, "close", lambda fig=None: figs.append(fig))
    return figs


def test_phylogeny_labels_do_not_overlap(nested_lineage, tmp_path, kept_figures):
    lin = alife.lineage.open(nested_lineage)
    plots.plot_phylogeny(lin, tmp_path)
    (fig,) = kept_figures
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    labels = {t.get_text(): t.get_window_extent(renderer) for t in ax.texts}
    extant = {f"#{s}" for s in range(len(SPECIES_PARENT)) if s not in EXTINCT}
    assert set(labels) == extant
    for (a, ba), (b, bb) in combinations(labels.items(), 2):
        assert not ba.overlaps(bb), f"labels {a} and {b} overlap: {ba} {bb}"
    # the tree is still drawn: a parent's row is joined to each daughter's by a vertical line
    assert len(ax.collections[1].get_segments()) == len(SPECIES_PARENT) - 2 - 1  # minus founders, minus 3


def test_count_axes_have_whole_number_ticks(nested_lineage, tmp_path, kept_figures):
    lin = alife.lineage.open(nested_lineage)
    plots.plot_population(lin, tmp_path)
    (fig,) = kept_figures
    fig.canvas.draw()
    for ax in fig.axes[:2]:  # population, species present
        lo, hi = ax.get_ylim()
        ticks = [t for t in ax.get_yticks() if lo <= t <= hi]
        assert len(ticks) >= 2
        assert all(float(t).is_integer() for t in ticks), ticks


def test_lineage_numbers_print_no_negative_zero(nested_lineage, monkeypatch, capsys):
    from alife.lineage import analysis

    # a distance that rounds to zero from below (as floating-point sums can give) prints as 0.0
    monkeypatch.setattr(analysis, "mean_pairwise_distance", lambda lin, unit_branches=False: -1e-12)
    monkeypatch.setattr(analysis, "phylogenetic_diversity", lambda lin, unit_branches=False: -0.0)
    main(["lineage", str(nested_lineage), "summary"])
    out = capsys.readouterr().out.replace(str(nested_lineage), "FILE")  # the path may hold "pytest-0"
    assert "mean pairwise distance: 0.0 steps" in out and "diversity of the living: 0 steps" in out
    assert "-0" not in out
