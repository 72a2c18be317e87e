"""Competition and common-garden assays: did evolution do anything, and is one strategy better?

The instruments of experimental evolution (Lenski et al. 1991, "Long-term experimental evolution
in Escherichia coli. I.", Am. Nat. 138: 1315-1341: competition assays against the ancestor) for
this simulator. A **pool** is a set of genomes (with their species and strategies) taken from a
checkpoint (the living at its step) or from a lineage file's stored genomes (by step, species or
strategy). An assay places pools in fresh replicate worlds, the run's own world or another, and
follows each pool's descent:

* ``mix`` (a competition): all pools share each replicate world, equal numbers at the start;
* ``mono`` (a common garden): each pool alone in a world of the same seed, replicate by replicate;
* ``foraging=True``: nobody reproduces (a selection strategy that proposes nobody), so what differs
  is how fast each pool gathers energy and how long it lives.

Descent is a per-slot plugin array, ``assay.pool`` (int16, inherited from the first parent), so a
child belongs to its reproducing parent's pool; the pool of the initial agents is written in the
simulation's ``before_start`` callback along with their genomes, species and strategies (then
``sim.genomes_changed()``). Replicate ``i`` runs with seed ``seed + i``; genomes are drawn for the
slots by a numpy generator of that seed: nothing global is random.

Results (:class:`AssayResult`): each pool's share of the living (``mix``) or population
(``mono``) every ``every`` steps, per replicate; per pool and replicate, the **relative fitness**
``m = ln(share_T / share_0) - ln(ref_T / ref_0)`` against the reference pool (counts + 0.5, so
that a pool that died out has a finite value; in ``mono``, ``ln((N_T + 0.5) / (ref_T + 0.5))`` of
the final populations), and the **energy gain rate** (energy gained from food and prey per agent-step alive; in a
foraging trial the pools compete for food and prey only) relative to the
reference's, ``ln(rate / ref_rate)``; means over replicates with 95% Student-t intervals.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alife.errors import UserError
from alife.plugins import hookimpl
from alife.strategies.base import Strategy

POOL_ARRAY = "assay.pool"
NO_SELECTION = "assay-none"

# two-sided 95% Student-t quantiles t(0.975, df) for df = 1..30
_T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010,
         2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739,
         2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom: a table to 30, then the
    Cornish-Fisher expansion around the normal quantile (error < 1e-4 beyond 30)."""
    if df < 1:
        return float("nan")
    if df <= 30:
        return _T975[df - 1]
    z = 1.959963984540054
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def mean_interval(values: Iterable[float]) -> dict[str, float]:
    """Mean, standard deviation, n and the 95% t-interval of the finite ``values``."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    n = int(v.size)
    if n == 0:
        return {"mean": float("nan"), "sd": float("nan"), "n": 0, "lo": float("nan"), "hi": float("nan")}
    m = float(v.mean())
    if n == 1:
        return {"mean": m, "sd": float("nan"), "n": 1, "lo": float("nan"), "hi": float("nan")}
    sd = float(v.std(ddof=1))
    h = t_quantile_975(n - 1) * sd / math.sqrt(n)
    return {"mean": m, "sd": sd, "n": n, "lo": m - h, "hi": m + h}


# ---------------------------------------------------------------------------------------- pools
@dataclass
class Pool:
    """Genomes to place: ``genomes [n, G]`` float32, the species each came from (grouping them
    into founding species in the assay world) and its strategy name (``None``: the world's)."""

    name: str
    genomes: np.ndarray
    species: np.ndarray
    strategies: list[str] | None = None
    source: str = ""
    layout: list[Any] | None = None

    def __post_init__(self) -> None:
        self.genomes = np.ascontiguousarray(self.genomes, dtype=np.float32)
        self.species = np.asarray(self.species, dtype=np.int64)
        if self.genomes.ndim != 2 or self.genomes.shape[0] == 0:
            raise UserError(f"pool {self.name!r} ({self.source}): no genomes")
        if self.species.shape != (self.genomes.shape[0],):
            raise ValueError("one species per genome")

    def describe(self) -> str:
        return f"{self.name}: {self.genomes.shape[0]} genomes, {np.unique(self.species).size} species, {self.source}"


def pool_from_checkpoint(path: str | Path, name: str | None = None) -> Pool:
    """The living agents of a checkpoint (arrays only; nothing it names is imported)."""
    from alife.checkpoint import open_checkpoint

    ck = open_checkpoint(path)
    alive = ck.arrays["alive"].astype(bool)
    codes = ck.arrays.get("strategy")
    names = list(ck.meta.get("strategy_names") or [])
    strategies = None
    if codes is not None and names:
        strategies = [names[c] if 0 <= c < len(names) else names[0] for c in codes[alive].astype(np.int64)]
    return Pool(name or f"step {ck.step}", ck.arrays["genomes"][alive], ck.arrays["species"][alive],
                strategies, f"{path} (living at step {ck.step})", ck.meta.get("layout"))


def pool_from_lineage(lin: Any, name: str | None = None, step: int | str = "first",
                      species: Sequence[int] | None = None, strategy: str | None = None) -> Pool:
    """Genomes stored in a lineage file (``genomes/*``): those of one stored ``step`` (an int: the
    stored step nearest to it; ``"first"``, ``"last"``, or ``"all"``), optionally only of the
    given ``species`` or of the agents whose birth row records ``strategy``."""
    import alife.lineage

    if not hasattr(lin, "genomes"):
        lin = alife.lineage.open(lin)
    ids, steps, vec = lin.genomes()
    if ids.size == 0:
        raise UserError(f"{lin.path}: no stored genomes (the run used --lineage-genomes none)")
    stored = np.unique(steps)
    if step == "first":
        at = stored[0]
    elif step == "last":
        at = stored[-1]
    elif step == "all":
        at = None
    else:
        at = stored[int(np.argmin(np.abs(stored - int(step))))]
    keep = np.ones(ids.size, bool) if at is None else steps == at
    rows = lin.rows(ids)
    known = rows >= 0
    sp = np.where(known, lin.species_of[np.maximum(rows, 0)], -1)
    names = lin.strategy_names
    codes = np.where(known, lin.data["births/strategy"][np.maximum(rows, 0)].astype(np.int64), 0)
    strat = [names[c] if c < len(names) else f"#{c}" for c in codes]
    if species is not None:
        keep &= np.isin(sp, np.asarray(list(species), dtype=np.int64))
    if strategy is not None:
        keep &= np.array([s == strategy for s in strat], bool)
    what = ("all stored steps" if at is None else f"step {int(at)}") + \
        (f", species {list(species)}" if species is not None else "") + (f", strategy {strategy}" if strategy else "")
    if not keep.any():
        raise UserError(f"{lin.path}: no stored genomes at {what} (stored steps: "
                        f"{', '.join(map(str, stored[:12].tolist()))}{' ...' if stored.size > 12 else ''})")
    default = "ancestral" if at is not None and at == stored[0] else f"step {int(at) if at is not None else 'all'}"
    return Pool(name or default, vec[keep], sp[keep], [s for s, k in zip(strat, keep, strict=True) if k],
                f"{lin.path} ({what})", lin.attrs.get("genome_layout"))


def parse_pool(spec: str, plugins_note: str = "") -> Pool:
    """``NAME=PATH[@key=value,...]``: PATH a run folder, a checkpoint or a lineage file; keys
    ``step`` (int, ``first``, ``last``, ``all``; default ``last``), ``species`` (ids joined by
    ``+``), ``strategy``. A run folder without keys means its last checkpoint's living (else its
    lineage file's last stored genomes); with keys, its lineage file."""
    name, eq, rest = spec.partition("=")
    if not eq or not name or not rest:
        raise UserError(f"--pool {spec!r}: expected NAME=PATH[@step=...,species=...,strategy=...]")
    path_s, _, sel = rest.partition("@")
    opts: dict[str, str] = {}
    for item in filter(None, sel.split(",")):
        k, e, v = item.partition("=")
        if not e or k not in ("step", "species", "strategy"):
            raise UserError(f"--pool {spec!r}: {item!r} is not step=, species= or strategy=")
        opts[k] = v
    path = Path(path_s)
    if not path.exists():
        raise UserError(f"--pool {spec!r}: {path} does not exist")
    step: int | str = opts.get("step", "last")
    if isinstance(step, str) and step not in ("first", "last", "all"):
        try:
            step = int(step)
        except ValueError:
            raise UserError(f"--pool {spec!r}: step must be an integer, first, last or all") from None
    try:
        species = [int(x) for x in opts["species"].split("+")] if "species" in opts else None
    except ValueError:
        raise UserError(f"--pool {spec!r}: species must be integers joined by '+'") from None
    if path.is_dir():
        from alife.checkpoint import latest_checkpoint

        ck = latest_checkpoint(path)
        if not opts and ck is not None:
            return pool_from_checkpoint(ck, name)
        path = path / "lineage.h5"
    if _is_lineage(path):
        return pool_from_lineage(path, name, step, species, opts.get("strategy"))
    if opts:
        raise UserError(f"--pool {spec!r}: selectors need a lineage file or run folder, not a checkpoint")
    return pool_from_checkpoint(path, name)


def _is_lineage(path: Path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r", locking=False, swmr=True) as f:
            return f.attrs.get("format") in ("alife-lineage", b"alife-lineage")
    except OSError:
        return path.name == "lineage.h5"


def run_pools(run_dir: str | Path) -> list[Pool]:
    """The default pools of ``alife assay RUN``: ``ancestral`` (the lineage file's first stored
    genomes, normally the roots) and ``evolved`` (the living at the run's last checkpoint, else the
    lineage file's last stored genomes)."""
    from alife.checkpoint import latest_checkpoint

    run_dir = Path(run_dir)
    lin_path = run_dir / "lineage.h5"
    if not lin_path.is_file():
        raise UserError(f"{run_dir}: no lineage.h5 to take the ancestral genomes from; give --pool")
    anc = pool_from_lineage(lin_path, "ancestral", "first")
    ck = latest_checkpoint(run_dir)
    evo = pool_from_checkpoint(ck, "evolved") if ck is not None else pool_from_lineage(lin_path, "evolved", "last")
    return [anc, evo]


def run_world(run_dir: str | Path) -> Any:
    """The world configuration of a run folder: its last checkpoint's, else ``world.toml`` with
    ``run.json``'s overrides; the plugin list is dropped (a file is data; the user's ``--world``
    and ``-p`` bring plugins)."""
    from alife import config as config_mod
    from alife.checkpoint import latest_checkpoint, open_checkpoint

    run_dir = Path(run_dir)
    ck = latest_checkpoint(run_dir)
    if ck is not None:
        meta = open_checkpoint(ck).meta
        cfg = config_mod.from_dict(meta["config"], meta.get("world_source", str(ck)), meta.get("world_text", ""), ".")
    else:
        path = run_dir / "world.toml"
        if not path.is_file():
            raise UserError(f"{run_dir}: neither a checkpoint nor world.toml to take the world from; give --world")
        text = path.read_text()
        data = tomllib.loads(text)
        data.pop("plugins", None)
        ov: dict[str, Any] = {}
        rec = run_dir / "run.json"
        if rec.is_file():
            r = json.loads(rec.read_text())
            ov = dict(config_mod.parse_override(str(x), str(rec))
                      for x in (r.get("args") or {}).get("overrides") or [])
            ov["seed"] = r.get("seed", 0)
        cfg = config_mod.from_dict(data, str(path), text, ".", ov)
    cfg.plugins = []
    return cfg


# ---------------------------------------------------------------------------------------- the world side
class NoSelection(Strategy):
    """Selection ``assay-none``: nobody reproduces (foraging trials)."""

    role, name = "selection", NO_SELECTION
    modes = ("world",)

    @hookimpl
    def alife_select_parents(self, sim, slots: torch.Tensor, neighbours: torch.Tensor, ready: torch.Tensor):
        empty = slots[:0]
        return empty, empty


class PoolTracker:
    """Registers ``assay.pool`` and adds up the lifetime energy of each pool's dead."""

    def __init__(self, n_pools: int):
        self.gained = np.zeros(n_pools, np.float64)

    @hookimpl
    def alife_setup(self, sim: Any) -> None:
        sim.arrays.add_slot(POOL_ARRAY, dtype=torch.int16, inherit="first", fill=-1)

    @hookimpl
    def alife_agents_died(self, sim: Any, deaths: Any) -> None:
        if len(deaths):
            slots = torch.as_tensor(deaths.slots, dtype=torch.int64, device=sim.device)
            pool = sim.arrays[POOL_ARRAY][slots].long().cpu().numpy()
            e = sim.world.lifetime_energy[slots].double().cpu().numpy()
            ok = pool >= 0
            np.add.at(self.gained, pool[ok], e[ok])


def _install(sim: Any, pools: list[Pool], which: np.ndarray, rng: np.random.Generator) -> None:
    """Write the pools' genomes into the initial slots ``0..n-1`` (``which[slot]`` = pool), one
    founding species per (pool, source species) with the mean kin tag of its genomes, strategies
    where the world mixes them, and ``assay.pool``."""
    st = sim.world
    n = which.size
    g = st.genomes.shape[1]
    for p in pools:
        if p.genomes.shape[1] != g:
            raise UserError(f"pool {p.name!r} has genomes of size {p.genomes.shape[1]}, the assay world's layout "
                            f"{g}: give the world (and plugins) the pool's run used")
    rows = np.zeros((n, g), np.float32)
    src_species = np.zeros(n, np.int64)
    strat: list[str | None] = [None] * n
    for j, p in enumerate(pools):
        slots = np.flatnonzero(which == j)
        if not slots.size:
            continue
        pick = rng.choice(p.genomes.shape[0], size=slots.size, replace=p.genomes.shape[0] < slots.size)
        rows[slots] = p.genomes[pick]
        src_species[slots] = p.species[pick]
        if p.strategies is not None:
            for s, k in zip(slots.tolist(), pick.tolist(), strict=True):
                strat[s] = p.strategies[k]
    groups, group_of = np.unique(np.stack([which, src_species], axis=1), axis=0, return_inverse=True)
    group_of = group_of.reshape(-1)
    k = int(st.species_origin.shape[0])
    if groups.shape[0] != k:
        raise RuntimeError(f"assay world made {k} founder species, wanted {groups.shape[0]}")
    dev = st.genomes.device
    st.genomes[:n] = torch.from_numpy(rows).to(dev)
    tags = sim.layout.view(st.genomes[:n], "compatibility.tag").cpu().numpy()
    founders = np.zeros((k, tags.shape[1]), np.float32)
    np.add.at(founders, group_of, tags)
    founders /= np.bincount(group_of, minlength=k)[:, None]
    st.species_founder[:k] = torch.from_numpy(founders).to(st.species_founder.device, st.species_founder.dtype)
    st.species[:n] = torch.from_numpy(group_of).to(st.species.device, st.species.dtype)
    names = list(sim.strategy_names)
    if len(names) > 1 and all(s in names for s in strat):  # a [mixture] world: lineages keep theirs
        st.strategy[:n] = torch.tensor([names.index(s) for s in strat], dtype=st.strategy.dtype, device=st.strategy.device)
    sim.arrays[POOL_ARRAY][:n] = torch.from_numpy(which.astype(np.int16)).to(sim.arrays[POOL_ARRAY].device)
    sim.genomes_changed()
    sim.recount_species()


def _groups(pools: list[Pool], which: np.ndarray, rng: np.random.Generator) -> int:
    """Founder species the replicate needs, computed with a copy of the generator (the same draws
    :func:`_install` makes next)."""
    probe = np.random.default_rng()
    probe.bit_generator.state = rng.bit_generator.state
    keys = set()
    for j, p in enumerate(pools):
        m = int((which == j).sum())
        if m:
            pick = probe.choice(p.genomes.shape[0], size=m, replace=p.genomes.shape[0] < m)
            keys.update((j, int(s)) for s in np.unique(p.species[pick]))
    return len(keys)


@dataclass
class Replicate:
    """One world's record: ``counts [samples, pools]`` of the living by pool after the steps in
    ``steps`` (step 0 = the start), the energy each pool gained and its agent-steps alive."""

    seed: int
    pools: list[int]
    steps: list[int]
    counts: np.ndarray
    gained: np.ndarray
    agent_steps: np.ndarray
    births: int
    extinct_at: int | None = None
    #: living agents in the world at each sample (every one of them belongs to a pool)
    population: list[int] = field(default_factory=list)


def run_replicate(pools: list[Pool], world: Any, seed: int, steps: int, every: int,
                  which_pools: Sequence[int], agents: int | None = None, foraging: bool = False,
                  overrides: dict[str, Any] | None = None, plugins: Iterable[Any] = (),
                  modules: Iterable[str] = (), plugins_dirs: Iterable[str | Path] = (),
                  device: str | None = "cpu", blocked: Iterable[str] = (),
                  shares: Sequence[float] | None = None) -> Replicate:
    """One replicate world with seed ``seed`` holding the pools ``which_pools`` in equal numbers
    (or in the proportions ``shares``, one per pool of ``which_pools``, rounded to agents)."""
    from alife import config as config_mod
    from alife.simulation import Simulation

    cfg0 = config_mod.load(world, dict(overrides or {}))
    n = int(agents or cfg0.world.initial_agents)
    rng = np.random.default_rng(seed)
    sub = [pools[j] for j in which_pools]
    if shares is None:
        which = rng.permutation(np.arange(n) % len(sub))
    else:
        w = np.asarray(shares, dtype=np.float64)
        if w.shape != (len(sub),) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"shares must be {len(sub)} non-negative numbers with a positive sum, got {list(shares)}")
        counts = np.floor(w / w.sum() * n).astype(np.int64)
        counts[np.argmax(w)] += n - counts.sum()
        which = rng.permutation(np.repeat(np.arange(len(sub)), counts))
    k = _groups(sub, which, rng)
    ov = dict(overrides or {})
    ov.update({"world.initial_agents": n, "world.initial_species": k, "seed": int(seed)})
    extra: list[Any] = [PoolTracker(len(sub))]
    if foraging:
        ov["strategies.selection"] = NO_SELECTION
        extra.append(NoSelection())
    cfg = config_mod.load(cfg0, ov)
    tracker = extra[0]
    sim = Simulation(cfg, device=device, plugins=[*plugins, *extra], modules=modules, plugins_dirs=plugins_dirs,
                     blocked=blocked, before_start=lambda s: _install(s, sub, which, rng))
    pool_arr = sim.arrays[POOL_ARRAY]
    m = len(sub)

    def count() -> np.ndarray:
        st = sim.world
        p = pool_arr[: st.hw][st.alive[: st.hw]].long().cpu().numpy()
        return np.bincount(p[p >= 0], minlength=m)[:m]

    rows, at, pop = [count()], [0], [sim.population]
    alive_steps = np.zeros(m, np.float64)
    extinct = None
    with sim:
        for t in range(1, steps + 1):
            sim.step()
            c = count()
            alive_steps += c
            if t % every == 0 or t == steps:
                rows.append(c)
                at.append(t)
                pop.append(sim.population)
            if sim.population == 0:
                extinct = t
                if at[-1] != t:
                    rows.append(c)
                    at.append(t)
                    pop.append(0)
                break
        st = sim.world
        live = st.alive[: st.hw]
        p = pool_arr[: st.hw][live].long().cpu().numpy()
        e = st.lifetime_energy[: st.hw][live].double().cpu().numpy()
        gained = tracker.gained.copy()
        np.add.at(gained, p[p >= 0], e[p >= 0])
        births = int(sim.totals["births"])
    return Replicate(int(seed), list(which_pools), at, np.array(rows, np.int64), gained, alive_steps, births, extinct,
                     pop)


# ---------------------------------------------------------------------------------------- the assay
@dataclass
class AssayResult:
    """Replicates of an assay and what they say (see the module docstring)."""

    pools: list[Pool]
    mode: str
    foraging: bool
    steps: int
    every: int
    seed: int
    reference: int
    replicates: list[Replicate] = field(default_factory=list)
    label: str = ""

    # ------------------------------------------------------------------ per replicate numbers
    def shares(self) -> Any:
        """Long table: replicate, step, pool, count, share (of the living in its world)."""
        import pandas as pd

        recs = []
        for i, r in enumerate(self.replicates):
            tot = r.counts.sum(axis=1)
            for a, step in enumerate(r.steps):
                for b, j in enumerate(r.pools):
                    share = r.counts[a, b] / tot[a] if tot[a] else float("nan")
                    recs.append((i, r.seed, step, self.pools[j].name, int(r.counts[a, b]), share))
        return pd.DataFrame(recs, columns=["replicate", "seed", "step", "pool", "count", "share"])

    def _per_pool(self) -> dict[int, dict[str, list[float]]]:
        out: dict[int, dict[str, list[float]]] = {j: {"fitness": [], "gain": [], "final_share": [],
                                                      "final_count": [], "won": []}
                                                  for j in range(len(self.pools))}
        ref = self.reference
        if self.mode == "mix":
            for r in self.replicates:
                b_ref = r.pools.index(ref)
                c0, cT = r.counts[0].astype(float), r.counts[-1].astype(float)
                rate = np.where(r.agent_steps > 0, r.gained / np.maximum(r.agent_steps, 1), np.nan)
                for b, j in enumerate(r.pools):
                    w = math.log((cT[b] + 0.5) / (cT[b_ref] + 0.5)) - math.log(c0[b] / c0[b_ref])
                    out[j]["fitness"].append(w)
                    out[j]["gain"].append(math.log(rate[b] / rate[b_ref]) if rate[b] > 0 and rate[b_ref] > 0 else float("nan"))
                    out[j]["final_share"].append(cT[b] / cT.sum() if cT.sum() else float("nan"))
                    out[j]["final_count"].append(cT[b])
                    out[j]["won"].append(float(cT[b] / max(cT.sum(), 1) > c0[b] / c0.sum()))
        else:  # mono: replicate i of every pool shares the seed; pair them
            by_seed: dict[int, dict[int, Replicate]] = {}
            for r in self.replicates:
                by_seed.setdefault(r.seed, {})[r.pools[0]] = r
            for reps in by_seed.values():
                if ref not in reps:
                    continue
                rr = reps[ref]
                ref_rate = rr.gained[0] / max(rr.agent_steps[0], 1)
                for j, r in reps.items():
                    nT, n0 = float(r.counts[-1, 0]), float(r.counts[0, 0])
                    out[j]["fitness"].append(math.log((nT + 0.5) / (float(rr.counts[-1, 0]) + 0.5)))
                    rate = r.gained[0] / max(r.agent_steps[0], 1)
                    out[j]["gain"].append(math.log(rate / ref_rate) if rate > 0 and ref_rate > 0 else float("nan"))
                    out[j]["final_share"].append(nT / n0 if n0 else float("nan"))
                    out[j]["final_count"].append(nT)
                    out[j]["won"].append(float(nT > float(rr.counts[-1, 0])))
        return out

    def table(self) -> list[dict[str, Any]]:
        """One row per pool: its replicates, final share (``mono``: final / initial population),
        relative fitness and energy gain rate (log ratios against the reference) with 95% intervals,
        and the fraction of replicates in which it grew (``mix``) or outgrew the reference."""
        per = self._per_pool()
        rows = []
        for j, p in enumerate(self.pools):
            d = per[j]
            rows.append({"pool": p.name, "source": p.source, "genomes": int(p.genomes.shape[0]),
                         "reference": j == self.reference, "replicates": len(d["fitness"]),
                         "final_share": mean_interval(d["final_share"]),
                         "final_count": mean_interval(d["final_count"]),
                         "relative_fitness": mean_interval(d["fitness"]),
                         "gain_rate": mean_interval(d["gain"]),
                         "won": float(np.mean(d["won"])) if d["won"] else float("nan"),
                         "per_replicate": {"relative_fitness": d["fitness"], "gain_rate": d["gain"],
                                           "final_share": d["final_share"]}})
        return rows

    def method(self) -> str:
        what = ("ln(share_T/share_0) - ln(ref_T/ref_0), counts + 0.5" if self.mode == "mix"
                else "ln((N_T + 0.5)/(ref N_T + 0.5)) of final populations, paired by seed")
        return (f"{self.mode}{' foraging (no reproduction)' if self.foraging else ''}, {len(self.replicates)} worlds, "
                f"{self.steps} steps, seeds {self.seed}..; relative fitness = {what}; gain = ln(energy gained (food and prey) per "
                f"agent-step / the reference's); mean and 95% t-interval over replicates")

    def to_dict(self) -> dict[str, Any]:
        sh = self.shares()
        return {"label": self.label, "mode": self.mode, "foraging": self.foraging, "steps": self.steps,
                "every": self.every, "seed": self.seed, "reference": self.pools[self.reference].name,
                "method": self.method(),
                "pools": [{"name": p.name, "source": p.source, "genomes": int(p.genomes.shape[0]),
                           "species": int(np.unique(p.species).size)} for p in self.pools],
                "table": self.table(),
                "replicates": [{"seed": r.seed, "pools": [self.pools[j].name for j in r.pools], "steps": r.steps,
                                "counts": r.counts.tolist(), "gained": r.gained.tolist(),
                                "agent_steps": r.agent_steps.tolist(), "births": r.births,
                                "extinct_at": r.extinct_at} for r in self.replicates],
                "share_over_time": sh.groupby(["step", "pool"])["share"].mean().unstack().reset_index()
                .to_dict(orient="list")}

    def markdown(self) -> str:
        def ci(d: dict[str, float], f: str = "+.3f") -> str:
            if not d["n"]:
                return "-"
            if not math.isfinite(d["lo"]):
                return format(d["mean"], f)
            return f"{format(d['mean'], f)} [{format(d['lo'], f)}, {format(d['hi'], f)}]"
        share = "final share" if self.mode == "mix" else "final / initial N"
        lines = [f"| pool | genomes | replicates | {share} | relative fitness (95% CI) | energy gain rate, log ratio (95% CI) | grew |",
                 "| --- | ---: | ---: | --- | --- | --- | ---: |"]
        for r in self.table():
            if r["reference"]:
                fit = gain = "0 (reference)"
                grew = f"{r['won']:.2f}" if self.mode == "mix" else "-"
            else:
                fit, gain, grew = ci(r["relative_fitness"]), ci(r["gain_rate"]), f"{r['won']:.2f}"
            lines.append(f"| {r['pool']} | {r['genomes']} | {r['replicates']} | {ci(r['final_share'], '.3f')} | "
                         f"{fit} | {gain} | {grew} |")
        return "\n".join(lines)

    def plot(self, path: str | Path) -> Path:
        """Shares over time (every replicate thin, the mean thick) and relative fitness with 95%
        intervals and replicate points."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        sh = self.shares()
        colours = matplotlib.colormaps["tab10"].colors
        fig, (a0, a1) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True,
                                     gridspec_kw={"width_ratios": [3, 2]})
        for j, p in enumerate(self.pools):
            d = sh[sh["pool"] == p.name]
            col = colours[j % 10]
            y = "share" if self.mode == "mix" else "count"
            for _, rep in d.groupby("replicate"):
                a0.plot(rep["step"], rep[y], color=col, lw=0.6, alpha=0.35)
            m = d.groupby("step")[y].mean()
            a0.plot(m.index, m.values, color=col, lw=2, label=p.name)
        a0.set_xlabel("step")
        a0.set_ylabel("share of the living" if self.mode == "mix" else "population")
        if self.mode == "mix":
            a0.set_ylim(0, 1)
        a0.legend(frameon=False, loc="best")
        a0.set_title(f"{self.label + ': ' if self.label else ''}{self.mode}"
                     f"{' (foraging)' if self.foraging else ''}, {len(self.replicates)} worlds")
        rows = self.table()
        for j, r in enumerate(rows):
            col = colours[j % 10]
            for k, key in enumerate(("relative_fitness", "gain_rate")):
                x = j + (k - 0.5) * 0.3
                d = r[key]
                pts = [v for v in r["per_replicate"][key] if v is not None and math.isfinite(v)]
                a1.scatter([x] * len(pts), pts, s=10, color=col, alpha=0.5, marker="o" if k == 0 else "s")
                if d["n"] and math.isfinite(d["lo"]):
                    a1.errorbar([x], [d["mean"]], yerr=[[d["mean"] - d["lo"]], [d["hi"] - d["mean"]]],
                                fmt="o" if k == 0 else "s", color="k", capsize=3, ms=4)
        a1.axhline(0, color="0.5", lw=0.8, ls="--")
        a1.set_xticks(range(len(rows)), [r["pool"] for r in rows])
        a1.set_ylabel("log ratio vs " + self.pools[self.reference].name)
        a1.set_title("relative fitness (o) and energy gain rate (s)\nmean, 95% t-interval", fontsize=9)
        path = Path(path)
        fig.savefig(path, dpi=130)
        plt.close(fig)
        return path

    def write(self, out: str | Path, stem: str = "assay") -> dict[str, Path]:
        """``<stem>.json``, ``<stem>.md``, ``<stem>_shares.csv`` and ``<stem>.png`` into ``out``."""
        d = Path(out)
        d.mkdir(parents=True, exist_ok=True)
        paths = {"json": d / f"{stem}.json", "md": d / f"{stem}.md", "csv": d / f"{stem}_shares.csv",
                 "png": d / f"{stem}.png"}
        paths["json"].write_text(json.dumps(self.to_dict(), indent=1, default=_json_default) + "\n")
        paths["md"].write_text(f"{self.method()}\n\n{self.markdown()}\n")
        self.shares().to_csv(paths["csv"], index=False)
        self.plot(paths["png"])
        return paths


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


def assay(pools: Sequence[Pool], world: Any, *, replicates: int = 5, steps: int = 2000, every: int | None = None,
          seed: int = 0, mode: str = "mix", foraging: bool = False, reference: int = 0, agents: int | None = None,
          overrides: dict[str, Any] | None = None, plugins: Iterable[Any] = (), modules: Iterable[str] = (),
          plugins_dirs: Iterable[str | Path] = (), blocked: Iterable[str] = (), device: str | None = "cpu",
          label: str = "",
          progress: Callable[[str], None] | None = None) -> AssayResult:
    """Run an assay of ``pools`` in ``world`` (a path, name, dict or ``WorldConfig``; its plugin
    list and ``modules``/``plugins_dirs`` are the code that runs): ``replicates`` worlds (``mix``)
    or ``replicates`` worlds per pool (``mono``), replicate ``i`` with seed ``seed + i``, ``steps``
    steps each, shares sampled every ``every`` steps (default ``steps // 50``). ``reference``
    indexes the pool the others are measured against."""
    pools = list(pools)
    if mode not in ("mix", "mono"):
        raise ValueError(f"mode must be 'mix' or 'mono', got {mode!r}")
    if not pools or not 0 <= reference < len(pools):
        raise ValueError("need pools and a reference among them")
    if len({p.name for p in pools}) != len(pools):
        raise UserError(f"pool names must differ: {[p.name for p in pools]}")
    if replicates < 1 or steps < 1:
        raise ValueError("replicates and steps must be >= 1")
    every = int(every or max(1, steps // 50))
    plugins = list(plugins)
    res = AssayResult(pools, mode, foraging, steps, every, seed, reference, label=label)
    groups = [list(range(len(pools)))] if mode == "mix" else [[j] for j in range(len(pools))]
    for i in range(replicates):
        for which in groups:
            r = run_replicate(pools, world, seed + i, steps, every, which, agents=agents, foraging=foraging,
                              overrides=overrides, plugins=plugins, modules=modules, plugins_dirs=plugins_dirs,
                              device=device, blocked=list(blocked))
            res.replicates.append(r)
            if progress is not None:
                names = "+".join(pools[j].name for j in which)
                progress(f"replicate {i + 1}/{replicates} ({names}, seed {seed + i}): "
                         f"{dict(zip([pools[j].name for j in which], r.counts[-1].tolist(), strict=True))} "
                         f"at step {r.steps[-1]}")
    return res
