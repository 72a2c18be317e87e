"""Analyses of a lineage file: phylogenetic diversity, pairwise distance, evolutionary activity.

Trees here are the first-parent forest of :class:`alife.lineage.reader.LineageFile` (each agent
hangs from the parent that reproduced), with branch lengths in steps: the edge into an agent is
its birth step minus its parent's. Roots (the initial agents) hang from one virtual root at
``ROOT_STEP`` with length 0, so agents from different roots are still at a finite distance.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from alife.lineage import tree
from alife.lineage.reader import LineageFile


def _edges(lin: LineageFile) -> np.ndarray:
    p = lin.parent
    return np.where(p >= 0, lin.birth_step - lin.birth_step[np.maximum(p, 0)], 0).astype(np.float64)


def phylogenetic_diversity(lin: LineageFile) -> float:
    """Faith's phylogenetic diversity of the living: the total branch length (steps) of the tree
    joining them to the root(s).

    Faith, D. P. (1992). "Conservation evaluation and phylogenetic diversity." Biological
    Conservation 61(1): 1-10.
    """
    counts, _ = lin._living_counts
    return float(_edges(lin)[counts > 0].sum())


def mean_pairwise_distance(lin: LineageFile, unit_branches: bool = False) -> float:
    """Mean pairwise (patristic) distance between the living, in steps (or in edges with
    ``unit_branches``).

    Webb, C. O. (2000). "Exploring the phylogenetic structure of ecological communities: an example
    for rain forest trees." American Naturalist 156(2): 145-155 (MPD); Webb, Ackerly, McPeek &
    Donoghue (2002), Annu. Rev. Ecol. Syst. 33: 475-505. Computed without enumerating pairs: an
    edge with ``m`` of the ``n`` living below it lies on ``m (n - m)`` of the ``n (n - 1) / 2``
    paths, so MPD = sum(len_e m_e (n - m_e)) / (n (n - 1) / 2).
    """
    counts, _ = lin._living_counts
    n = float(lin.living_mask.sum())
    if n < 2:
        return float("nan")
    length = (lin.parent >= 0).astype(np.float64) if unit_branches else _edges(lin)
    return float((length * counts * (n - counts)).sum() / (n * (n - 1) / 2))


def species_counts(lin: LineageFile, every: int | None = None) -> Any:
    """Species present, originated and gone extinct per grid interval (a DataFrame by step)."""
    import pandas as pd

    grid, ab = lin.abundance(every)
    sp = lin.species
    origin = sp["origin_step"].to_numpy()
    ext = sp["extinction_step"].to_numpy(dtype=np.float64, na_value=np.inf)
    edges = np.append(grid, np.inf)
    new = np.histogram(origin, bins=np.concatenate([[-np.inf], edges[1:]]))[0][: grid.size]
    gone = np.histogram(ext[np.isfinite(ext)], bins=np.concatenate([[-np.inf], edges[1:]]))[0][: grid.size]
    return pd.DataFrame({"present": (ab > 0).sum(axis=0), "originated": new, "extinct": gone},
                        index=pd.Index(grid, name="step"))


def component_activity(abundance: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """Evolutionary activity ``a_i(t)`` of each component: its abundance summed over time while it
    exists (Bedau & Packard 1992, "Measurement of evolutionary activity, teleology, and life",
    Artificial Life II, pp. 431-461). ``abundance`` is ``[components, steps]``; ``dt`` the width
    of each grid interval in steps."""
    return np.cumsum(abundance * dt[None, :], axis=1)


def activity_statistics(abundance: np.ndarray, dt: np.ndarray, threshold: float,
                        strip: float | None = None) -> dict[str, np.ndarray]:
    """Diversity ``D(t)``, total cumulative activity ``A_cum(t)``, mean cumulative activity
    ``A_cum / D`` and new activity ``A_new(t)``.

    Bedau, Snyder & Packard (1998), "A classification of long-term evolutionary dynamics",
    Artificial Life VI, pp. 228-237: ``A_cum(t) = sum_i a_i(t)`` over the components present at
    ``t``; ``A_new(t)`` sums the activity of present components whose activity lies in the strip
    ``[a0, a1]`` just above what a neutral model produces (here ``a0 = threshold``, ``a1 = a0 +
    strip``, ``strip`` defaulting to ``threshold``).
    """
    act = component_activity(abundance, dt)
    present = abundance > 0
    a_present = np.where(present, act, 0.0)
    d = present.sum(axis=0)
    cum = a_present.sum(axis=0)
    hi = threshold + (threshold if strip is None else strip)
    in_strip = present & (act >= threshold) & (act <= hi)
    return {"diversity": d, "cumulative": cum, "mean_cumulative": np.where(d > 0, cum / np.maximum(d, 1), 0.0),
            "new": np.where(in_strip, act, 0.0).sum(axis=0)}


def neutral_shadow(lin: LineageFile, grid: np.ndarray, abundance: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """A neutral shadow of the run: the same births, deaths and new species per interval, but who
    reproduces and who dies is chosen at random, so no component can be favoured by selection.

    Bedau, Snyder, Brown & Packard (1997), "A comparison of evolutionary activity in artificial
    evolving systems and in the biosphere", ECAL 97, pp. 125-134 (the "shadow" model); Bedau et
    al. (1998). In each grid interval, first the births: they copy uniformly chosen parents of the
    standing shadow population (multinomial) and each real new species founds a new shadow
    component of one agent; then the deaths remove a uniform random sample of the population,
    newborns included (multivariate hypergeometric). Births come first because an interval's
    deaths include agents born within it: with deaths first, an interval with more deaths than
    standing agents would empty the shadow while the real population holds. So the shadow's
    population equals the real one at every grid step (see ``abundance``). Returns
    ``[components, steps]``.
    """
    t = grid.size
    bstep, dstep = lin.birth_step, lin.death_step
    born = np.bincount(np.searchsorted(grid, bstep[bstep > lin.attrs.get("root_step", -1)]), minlength=t + 1)[:t]
    died = np.bincount(np.searchsorted(grid, dstep[dstep >= 0]), minlength=t + 1)[:t]
    sp_origin = lin.data["species/origin_step"]
    founders = lin.data["species/parent"] < 0
    new_sp = np.bincount(np.searchsorted(grid, sp_origin[~founders]), minlength=t + 1)[:t]
    roots = lin.parent_ids[:, 0] < 0
    n_founders = int(founders.sum())
    n_comp = n_founders + int(new_sp.sum())
    counts = np.zeros(n_comp, dtype=np.int64)
    counts[:n_founders] = np.bincount(lin.species_of[roots], minlength=n_founders)[:n_founders]
    used = n_founders
    out = np.zeros((n_comp, t), dtype=np.int64)
    for k in range(t):  # one iteration per grid interval (a few hundred), never per agent
        live = counts[:used]
        total = int(live.sum())
        nb = int(born[k]) - int(new_sp[k])
        if nb > 0 and total > 0:
            live += rng.multinomial(nb, live / total)
        if new_sp[k]:
            counts[used:used + int(new_sp[k])] = 1
            used += int(new_sp[k])
        live = counts[:used]
        d = min(int(died[k]), int(live.sum()))
        if d:
            live -= rng.multivariate_hypergeometric(live, d)
        out[:used, k] = live
    return out


def evolutionary_activity(lin: LineageFile, rng: np.random.Generator, every: int | None = None,
                          quantile: float = 0.95) -> dict[str, Any]:
    """Species-level evolutionary activity of the run and of its neutral shadow.

    The threshold ``a0`` is the ``quantile`` of the shadow components' final activities: activity
    above it is more than neutral drift would give (Bedau et al. 1998). Returns ``grid``, ``dt``,
    ``activity`` (``[species, steps]``), ``shadow_activity``, ``shadow_abundance``, ``threshold``,
    the statistics of :func:`activity_statistics` for the run (``real``) and the shadow
    (``shadow``), and ``summary``: :func:`activity_summary`.
    """
    grid, ab = lin.abundance(every)
    dt = np.diff(np.concatenate([[grid[0] - 1], grid])).astype(np.float64)
    shadow = neutral_shadow(lin, grid, ab, rng)
    sh_act = component_activity(shadow, dt)
    final = sh_act[:, -1] if sh_act.size else np.zeros(1)
    threshold = float(np.quantile(final, quantile)) if final.size else 0.0
    act = component_activity(ab, dt)
    out = {"grid": grid, "dt": dt, "abundance": ab, "activity": act, "shadow_abundance": shadow,
           "shadow_activity": sh_act, "threshold": threshold, "quantile": quantile,
           "real": activity_statistics(ab, dt, threshold), "shadow": activity_statistics(shadow, dt, threshold)}
    out["summary"] = activity_summary(out)
    return out


def activity_summary(r: dict[str, Any]) -> dict[str, float]:
    """Numbers of an :func:`evolutionary_activity` result: the fraction of components whose final
    activity exceeds the threshold (the shadow's is ``1 - quantile`` by construction, so a run
    near it shows neutral drift), the final total cumulative activity of run and shadow, the
    mean new activity of each over the run, and the populations (run, shadow) at the end."""
    act, sh = r["activity"], r["shadow_activity"]
    a0 = r["threshold"]
    frac = float((act[:, -1] > a0).mean()) if act.size else 0.0
    sh_frac = float((sh[:, -1] > a0).mean()) if sh.size else 0.0
    real, shadow = r["real"], r["shadow"]
    return {"threshold": a0, "fraction_above": frac, "shadow_fraction_above": sh_frac,
            "excess": frac / sh_frac if sh_frac > 0 else float("nan"),
            "cumulative_final": float(real["cumulative"][-1]) if real["cumulative"].size else 0.0,
            "shadow_cumulative_final": float(shadow["cumulative"][-1]) if shadow["cumulative"].size else 0.0,
            "new_mean": float(real["new"].mean()) if real["new"].size else 0.0,
            "shadow_new_mean": float(shadow["new"].mean()) if shadow["new"].size else 0.0,
            "population_final": int(r["abundance"][:, -1].sum()) if r["abundance"].size else 0,
            "shadow_population_final": int(r["shadow_abundance"][:, -1].sum()) if r["shadow_abundance"].size else 0}


def modes(lin: LineageFile, every: int | None = None, persistence: int | None = None) -> Any:
    """Three of the MODES measures of open-endedness (Dolson, Vostinar, Wiser & Ofria 2019, "The
    MODES toolbox: measurements of open-ended dynamics in evolving systems", Artificial Life 25(1):
    50-73) on species, per grid step ``t`` (a DataFrame by step):

    * a species passes the **persistence filter** at ``t`` when it is present at ``t`` and it or a
      daughter species (at any depth) is present ``persistence`` steps later (default: a tenth
      of the run, at least one grid interval); rows past ``last - persistence`` are left out,
      since the future they need is not in the file;
    * ``change``: persistent species at ``t`` that were not persistent at the previous grid step;
    * ``novelty``: persistent species at ``t`` that were never persistent before;
    * ``ecology``: the Shannon entropy (bits) of the abundances of the persistent species;
    * ``persistent``: how many there are.

    The fourth measure, complexity (the most complex persistent taxon, with complexity measured as
    the number of genome sites whose knockout changes fitness), is not computed: it needs
    knockout assays of stored genomes in the world (``alife assay`` territory), not the file.
    """
    import pandas as pd

    grid, ab = lin.abundance(every)
    parent = lin.data["species/parent"]
    ns = ab.shape[0]
    last = int(grid[-1])
    step = int(grid[1] - grid[0]) if grid.size > 1 else 1
    lag = int(persistence) if persistence is not None else max(step, (last + 1) // 10)
    present = ab > 0
    # last grid index at which a species or one of its descendant species is present
    idx = np.arange(grid.size)
    last_here = np.where(present.any(axis=1), np.where(present, idx[None, :], -1).max(axis=1), -1) \
        if ns else np.zeros(0, np.int64)
    last_desc = last_here.copy()
    if ns:
        # a parent precedes its daughter (ids in origin order); any other link is cut
        sp_parent = np.full(ns, -1, dtype=np.int64)
        m = min(ns, parent.size)
        sp_parent[:m] = np.where((parent[:m] >= 0) & (parent[:m] < np.arange(m)), parent[:m], -1)
        depth = tree.depths(sp_parent)
        for level in range(int(depth.max()), 0, -1):  # one pass per tree level, deepest first
            nodes = np.flatnonzero(depth == level)
            np.maximum.at(last_desc, sp_parent[nodes], last_desc[nodes])
    rows = []
    ever = np.zeros(ns, bool)
    prev = np.zeros(ns, bool)
    for k in range(grid.size):  # one iteration per grid step
        ahead = np.searchsorted(grid, grid[k] + lag, side="left")
        if ahead >= grid.size:
            break
        p = present[:, k] & (last_desc >= ahead)
        n = ab[p, k].astype(np.float64)
        q = n / n.sum() if n.sum() > 0 else n
        ent = float(-(q[q > 0] * np.log2(q[q > 0])).sum())
        rows.append((int(grid[k]), int(p.sum()), int((p & ~prev).sum()), int((p & ~ever).sum()), ent))
        ever |= p
        prev = p
    df = pd.DataFrame(rows, columns=["step", "persistent", "change", "novelty", "ecology"]).set_index("step")
    df.attrs["persistence"] = lag
    return df


def strategy_population(lin: LineageFile, every: int = 100) -> Any:
    """Living agents per strategy after steps ``0, every, 2 every, ...`` up to the file's last
    step (a DataFrame by step, one column per strategy name), from each agent's birth and death
    steps and the strategy its birth row records (in a world with a ``[mixture]``, its lineage's).
    An agent born in step ``b`` and dead in step ``d`` is alive after steps ``b .. d - 1`` (roots,
    born at -1, from the start), as ``Simulation.population_by_strategy()`` counts it."""
    import pandas as pd

    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    last = max(int(lin.last_step), 0)
    grid = np.arange(0, last + 1, every, dtype=np.int64)
    codes = lin.data["births/strategy"].astype(np.int64)
    names = lin.strategy_names
    born = np.maximum(lin.birth_step, 0)
    died = np.where(lin.death_step >= 0, lin.death_step, np.iinfo(np.int64).max)
    # counts at grid[j]: born <= grid[j] < died, by cumulative sums over sample indices
    first = np.searchsorted(grid, born, side="left")   # first sample at or after birth
    stop = np.searchsorted(grid, died, side="left")    # first sample at or after death
    m = max(len(names), int(codes.max()) + 1 if codes.size else 0)
    delta = np.zeros((m, grid.size + 1), np.int64)
    np.add.at(delta, (codes, first), 1)
    np.add.at(delta, (codes, stop), -1)
    counts = np.cumsum(delta, axis=1)[:, : grid.size]
    cols = {names[i] if i < len(names) else f"#{i}": counts[i] for i in range(m)}
    return pd.DataFrame(cols, index=pd.Index(grid, name="step"))


def cross_correlation_lag(prey: np.ndarray, predators: np.ndarray, max_lag: int) -> dict[str, Any]:
    """The lag (in samples) of the cross-correlation between ``prey`` and ``predators``: Pearson
    correlation of the two series shifted against each other, ``r(k) = corr(prey[t], predators[t + k])``
    for ``k`` in ``[-max_lag, max_lag]`` (each over the samples the shift leaves); the lag is the
    positive peak of ``r(k)`` nearest ``k = 0`` (a cycle correlates again one period later, so the
    highest peak may be a period away). A positive lag means the predator counts follow the prey
    counts, as in Lotka-Volterra cycles (the predator peak comes a quarter period after the prey's).

    Returns ``lag`` and ``r`` at that peak, ``r_zero`` (lag 0), and ``threshold``, the 95% level
    of ``|r|`` for two independent white-noise series of that length (1.96 / sqrt(n)); ``significant``
    says whether the peak's ``r`` exceeds it. Autocorrelated series (any population count) exceed it
    more easily than white noise, so read the lag with the cycle it describes, not as a test."""
    x = np.asarray(prey, dtype=np.float64)
    y = np.asarray(predators, dtype=np.float64)
    n = x.size
    max_lag = int(max(0, min(max_lag, n - 3)))
    ks = np.arange(-max_lag, max_lag + 1)
    r = np.full(ks.size, np.nan)
    for i, k in enumerate(ks):
        a, b = (x[: n - k], y[k:]) if k >= 0 else (x[-k:], y[: n + k])
        if a.std() > 0 and b.std() > 0:
            r[i] = np.corrcoef(a, b)[0, 1]
    thr = 1.96 / np.sqrt(n)
    out = {"lag": 0, "r": float("nan"), "r_zero": float(r[max_lag]), "threshold": float(thr),
           "significant": False, "samples": n}
    if np.isnan(r).all():
        return out
    # a cycle correlates again a period later: of the positive peaks of r(k), the one nearest
    # lag 0 (the positive lag on a tie) is the lag of the cycle
    rr = np.nan_to_num(r, nan=-np.inf)
    left = np.concatenate([[-np.inf], rr[:-1]])
    right = np.concatenate([rr[1:], [-np.inf]])
    peaks = np.flatnonzero((rr >= left) & (rr >= right) & (rr > 0))
    if peaks.size == 0:
        peaks = np.array([int(np.argmax(rr))])
    i = peaks[np.lexsort((-ks[peaks], np.abs(ks[peaks])))[0]]
    out.update(lag=int(ks[i]), r=float(r[i]), significant=bool(r[i] > thr))
    return out


#: series name suffixes of the two-role rules, (the fed-upon role, the feeding role)
ROLE_PAIRS = ((".prey", ".predators"), (".hosts", ".parasites"))


def role_cycles(lin: LineageFile, max_lag_fraction: float = 0.25) -> dict[str, Any] | None:
    """Consumer-resource cycles of a run with roles: the cross-correlation lag
    (:func:`cross_correlation_lag`) between the plugin series ``<plugin>.prey`` and
    ``<plugin>.predators`` (``alife.strategies.predator_prey`` records them; or ``.hosts`` and
    ``.parasites``, ``alife.strategies.host_parasite``), over the samples where both roles are
    alive, the lag converted to steps (positive: the consumer's count follows the other's). None
    for a file without such a pair of series, or with fewer than 20 samples in which both live."""
    ps = lin.plugin_series
    for col in ps.columns:
        for low, high in ROLE_PAIRS:
            if not col.endswith(low):
                continue
            other = col[: -len(low)] + high
            if other not in ps.columns:
                continue
            both = ps[[col, other]].dropna()
            both = both[(both[col] > 0) & (both[other] > 0)]
            if len(both) < 20:
                return None
            steps = both.index.to_numpy()
            dt = float(np.median(np.diff(steps)))
            out = cross_correlation_lag(both[col].to_numpy(), both[other].to_numpy(),
                                        max(1, int(len(both) * max_lag_fraction)))
            out.update(lag_steps=out["lag"] * dt, sample_every=dt, series=(col, other),
                       both_alive_until=int(steps[-1]))
            return out
    return None
