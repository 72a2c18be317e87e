"""Plots of a lineage file, as PNG (matplotlib, Agg backend): what a paper would print.

* ``population.png``: population, species present and genetic diversity over time.
* ``muller.png``: a Muller plot of species frequencies; each daughter species emerges from inside
  its parent's band (Muller 1932, "Some genetic aspects of sex", Am. Nat. 66: 118-138; the nested
  layout of Farahpour et al. 2018, "Trade-off shapes diversity in eco-evolutionary dynamics",
  eLife 7: e36273, and the ``ggmuller`` R package).
* ``phylogeny.png``: the species phylogeny of the survivors, on a time axis.
* ``activity.png``: Bedau-Packard activity waves of species, the run's and the neutral shadow's
  populations, and the cumulative and new activity of both (see :mod:`alife.lineage.analysis`).

Long runs: the Muller plot draws at most ``max_species`` bands and both stacked and wave plots are
single matplotlib collections, so a 30,000-step run plots in seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from alife.lineage import analysis, tree
from alife.lineage.reader import LineageFile


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 150, "font.size": 9, "axes.spines.top": False,
                         "axes.spines.right": False, "axes.titlesize": 10})
    return plt


def species_colours(parent: np.ndarray) -> np.ndarray:
    """An RGB colour per species: one hue per founding lineage (tab10), lightness varied by
    species id so sister species differ."""
    import matplotlib

    root = tree.roots_of(parent)
    founders = np.unique(root)
    base = matplotlib.colormaps["tab10"](np.searchsorted(founders, root) % 10)[:, :3]
    shade = (np.arange(parent.size) * 0.6180339887) % 1.0  # golden-ratio spread
    shade = np.where(parent < 0, 0.5, shade)
    light = 0.55 + 0.7 * (shade - 0.5)
    return np.clip(np.where(light[:, None] < 1, base * light[:, None] * 1.3,
                            base + (1 - base) * (light[:, None] - 1)), 0, 1)


def muller_order(parent: np.ndarray) -> list[tuple[int, float]]:
    """Bands bottom to top as ``(species, share of its abundance)``: a species with daughters is
    split in two halves around them, so each daughter appears inside its parent."""
    kids, start = tree.children_index(parent)
    out: list[tuple[int, float]] = []
    stack: list[tuple[int, bool]] = [(int(r), False) for r in np.flatnonzero(parent < 0)[::-1]]
    while stack:  # one iteration per species band
        s, closing = stack.pop()
        ch = kids[start[s]:start[s + 1]]
        if closing:
            out.append((s, 0.5))
        elif ch.size:
            out.append((s, 0.5))
            stack.append((s, True))
            stack.extend((int(c), False) for c in ch[::-1])
        else:
            out.append((s, 1.0))
    return out


def plot_population(lin: LineageFile, out: Path) -> Path:
    plt = _plt()
    s = lin.series
    fig, axes = plt.subplots(3, 1, figsize=(6.5, 5.5), sharex=True, constrained_layout=True)
    from matplotlib.ticker import MaxNLocator

    axes[0].plot(s.index, s["population"], color="#1b4f72", lw=1)
    axes[0].set_ylabel("population")
    axes[1].plot(s.index, s["species_count"], color="#7d3c98", lw=1)
    axes[1].set_ylabel("species present")
    for ax in axes[:2]:  # counts: ticks on whole numbers only
        ax.yaxis.set_major_locator(MaxNLocator(nbins="auto", integer=True))
    axes[2].plot(s.index, s["diversity"], color="#117a65", lw=1)
    axes[2].set_ylabel("genetic diversity\n(mean per-locus s.d.)")
    axes[2].set_xlabel("step")
    axes[0].set_title(f"{lin.attrs.get('world_name', '')}, seed {lin.attrs.get('seed', '')}")
    path = out / "population.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def stack_bands(ax: Any, x: np.ndarray, bands: np.ndarray, colours: list[Any]) -> None:
    """A stack plot as one ``PolyCollection`` (one polygon per band): matplotlib's ``stackplot``
    adds a ``fill_between`` per band and rescales the axes after each, quadratic in the bands."""
    from matplotlib.collections import PolyCollection

    k, n = bands.shape
    if not k:
        return
    top = np.cumsum(bands, axis=0)
    verts = np.empty((k, 2 * n, 2))
    verts[:, :n, 0] = x
    verts[:, n:, 0] = x[::-1]
    verts[:, :n, 1] = top - bands
    verts[:, n:, 1] = top[:, ::-1]
    ax.add_collection(PolyCollection(verts, facecolors=colours, linewidths=0))


def plot_muller(lin: LineageFile, out: Path, max_species: int = 150) -> Path:
    """The Muller plot of at most ``max_species`` species (the founders and those of the highest
    peak frequency, ever above 1/1000); every other species is folded into its nearest drawn
    ancestor."""
    plt = _plt()

    grid, ab = lin.abundance()
    parent = lin.data["species/parent"]
    total = ab.sum(axis=0).astype(np.float64)
    freq = ab / np.maximum(total, 1)[None, :]
    # a species never above 1/1000 of the population would be under a pixel thick: fold it into
    # its nearest visible ancestor, which keeps the picture and spares drawing thousands of slivers;
    # past max_species, the species of the lowest peak frequency are folded the same way
    peak = freq.max(axis=1, initial=0)
    visible = (peak >= 1e-3) & (parent >= 0)
    n_visible = int(visible.sum() + (parent < 0).sum())
    room = max(0, max_species - int((parent < 0).sum()))
    if visible.sum() > room:
        cut = np.sort(peak[visible])[::-1][room - 1] if room else np.inf
        visible &= peak >= cut
    keep = visible | (parent < 0)
    target = np.arange(parent.size)
    while True:  # pointer jumping up to the nearest kept ancestor
        up = np.where(keep[target], target, parent[target])
        if np.array_equal(up, target):
            break
        target = up
    kept = np.flatnonzero(keep)
    new_id = np.full(parent.size, -1)
    new_id[kept] = np.arange(kept.size)
    folded = np.zeros((kept.size, grid.size))
    np.add.at(folded, new_id[target], freq)
    freq = folded
    kp = parent[kept]
    parent_k = np.where(kp >= 0, new_id[target[np.maximum(kp, 0)]], -1)
    order = [(int(kept[s]), share) for s, share in muller_order(parent_k)]
    freq_of = dict(zip(kept.tolist(), freq, strict=True))
    # the phylogeny plot's colours: one hue per founding lineage, a shade per species
    colours = species_colours(parent)
    fig, ax = plt.subplots(figsize=(7, 3.8), constrained_layout=True)
    bands = np.array([freq_of[s] * share for s, share in order]) if order else np.zeros((0, grid.size))
    stack_bands(ax, grid.astype(np.float64), bands, [colours[s] for s, _ in order])
    ax.set_xlim(grid[0], max(grid[-1], grid[0] + 1))
    ax.set_ylim(0, 1)
    ax.set_xlabel("step")
    ax.set_ylabel("frequency")
    drawn = f"{kept.size} drawn" if kept.size < n_visible else "all drawn"
    ax.set_title(f"Muller plot of species ({len(parent)} species, {n_visible} ever above 0.1%, {drawn})\n"
                 "daughters drawn inside their parents (the rest folded into them); one hue per founding lineage",
                 fontsize=9)
    path = out / "muller.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_phylogeny(lin: LineageFile, out: Path) -> Path:
    plt = _plt()
    sp = lin.species
    parent = sp["parent"].to_numpy()
    origin = sp["origin_step"].to_numpy().astype(np.float64)
    ext = sp["extinction_step"].to_numpy(dtype=np.float64, na_value=np.nan)
    extant = np.isnan(ext)
    end = np.where(extant, lin.last_step, ext)
    keep = tree.ancestors_mask(parent, np.flatnonzero(extant))
    # y: a row per extant species in depth-first order, a parent above its daughters (so an
    # extant parent and its extant daughter never share a row, nor their labels); an extinct inner
    # species sits at the mean of its kept children
    sub_parent = np.where(keep & (parent >= 0) & keep[np.maximum(parent, 0)], parent, -1)
    sub_parent[~keep] = -2
    order = list(dict.fromkeys(s for s, _ in muller_order(np.where(sub_parent == -2, -1, sub_parent))
                               if keep[s] and extant[s]))
    y = np.full(parent.size, np.nan)
    y[order] = np.arange(len(order))
    depth = tree.depths(np.maximum(sub_parent, -1))
    for level in sorted(set(depth[keep].tolist()), reverse=True):  # one pass per tree level
        nodes = np.flatnonzero(keep & (depth == level) & (sub_parent >= 0))
        sums = np.bincount(sub_parent[nodes], weights=y[nodes], minlength=parent.size)
        cnt = np.bincount(sub_parent[nodes], minlength=parent.size)
        inner = (cnt > 0) & np.isnan(y)
        y[inner] = sums[inner] / cnt[inner]
    colours = species_colours(parent)
    fig, ax = plt.subplots(figsize=(7, max(2.5, min(9, 0.18 * len(order) + 1.5))), constrained_layout=True)
    kept = np.flatnonzero(keep)
    ax.hlines(y[kept], origin[kept], end[kept], colors=colours[kept], lw=1.6)
    child = kept[sub_parent[kept] >= 0]
    ax.vlines(origin[child], y[sub_parent[child]], y[child], colors="0.55", lw=0.7)
    tips = kept[extant[kept]]
    ax.scatter(end[tips], y[tips], s=8, color=colours[tips], zorder=3)
    if tips.size <= 40:
        for s in tips:
            ax.annotate(f"#{s}", (end[s], y[s]), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.set_xlabel("step")
    ax.set_title(f"Phylogeny of the surviving species ({tips.size} extant, {kept.size} on their lines)")
    path = out / "phylogeny.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_activity(lin: LineageFile, out: Path, rng: np.random.Generator) -> Path:
    """Activity waves of the species (one ``LineCollection``), the run's and the shadow's
    populations, and the total cumulative and new activity of both."""
    from matplotlib.collections import LineCollection

    plt = _plt()
    r = analysis.evolutionary_activity(lin, rng)
    grid, act, ab = r["grid"], r["activity"], r["abundance"]
    summ = r["summary"]
    fig, axes = plt.subplots(4, 1, figsize=(6.5, 8.5), sharex=True, constrained_layout=True)
    colours = species_colours(lin.data["species/parent"])
    alive = ab > 0
    lines = [np.column_stack([grid[alive[s]], act[s, alive[s]]]) for s in np.flatnonzero(alive.any(axis=1))]
    if lines:  # one artist for every species' wave (thousands of species on a long run)
        axes[0].add_collection(LineCollection(lines, colors=colours[alive.any(axis=1)], linewidths=0.6))
        pos = act[alive]
        axes[0].set_ylim(max(pos.min(), 1e-1) * 0.8, pos.max() * 1.25)
    axes[0].axhline(r["threshold"], color="k", ls="--", lw=0.8, label=f"neutral threshold a0 = {r['threshold']:.3g}")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("species activity a_i(t)")
    axes[0].legend(frameon=False, loc="upper left")
    axes[0].set_title("Evolutionary activity (Bedau & Packard) against a neutral shadow\n"
                      f"species above a0: {summ['fraction_above']:.1%} (shadow {summ['shadow_fraction_above']:.1%})",
                      fontsize=9)
    axes[1].plot(grid, ab.sum(axis=0), color="#c0392b", lw=1.6, label="run")
    axes[1].plot(grid, r["shadow_abundance"].sum(axis=0), color="0.2", lw=0.8, ls="--", label="neutral shadow")
    axes[1].set_ylabel("population")
    axes[1].set_ylim(bottom=0)
    axes[1].legend(frameon=False, loc="lower right")
    for key, label, ax in (("cumulative", "total cumulative activity", axes[2]),
                           ("new", "new activity A_new(t)", axes[3])):
        ax.plot(grid, r["real"][key], color="#c0392b", lw=1, label="run")
        ax.plot(grid, r["shadow"][key], color="0.45", lw=1, label="neutral shadow")
        ax.set_ylabel(label)
        ax.legend(frameon=False, loc="upper left")
    axes[3].set_xlabel("step")
    axes[3].set_xlim(grid[0], max(grid[-1], grid[0] + 1))
    path = out / "activity.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_all(lin: LineageFile, out: str | Path, rng: np.random.Generator) -> list[Path]:
    """Write every plot into ``out``; returns their paths."""
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    return [plot_population(lin, d), plot_muller(lin, d), plot_phylogeny(lin, d), plot_activity(lin, d, rng)]
