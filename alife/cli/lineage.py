"""``alife lineage FILE summary | ancestry ID | species | export | plot``: read a lineage file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from alife.errors import UserError


def register(sub: Any) -> None:
    p = sub.add_parser("lineage", help="summarise, query, export and plot a lineage.h5 file",
                       description="Read a lineage file written by `alife run` (<run>/lineage.h5).")
    p.add_argument("file", help="a lineage.h5 file (or a run folder holding one)")
    acts = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sm = acts.add_parser("summary", help="counts, the MRCA of the living, diversity, evolutionary activity")
    sm.add_argument("--seed", type=int, default=0, help="seed of the neutral shadow (default 0)")
    a = acts.add_parser("ancestry", help="the line of descent of an agent, back to its root")
    a.add_argument("id", type=int, help="agent id")
    a.add_argument("--all-parents", action="store_true", help="every ancestor through either parent")
    acts.add_parser("species", help="the species table: parent, origin, extinction, births")
    e = acts.add_parser("export", help="write a phylogeny file other tools read")
    e.add_argument("--format", choices=("alife-csv", "newick"), default="alife-csv")
    e.add_argument("--level", choices=("agent", "species"), default="agent")
    e.add_argument("--living", action="store_true", help="only the living and their ancestors")
    e.add_argument("--first-parent", action="store_true",
                   help="keep only the parent that reproduced (a tree even when agents mate)")
    e.add_argument("-o", "--out", required=True, help="output file")
    pl = acts.add_parser("plot", help="PNG plots: population and species, Muller, survivors' phylogeny, activity")
    pl.add_argument("-o", "--out", required=True, help="output folder")
    pl.add_argument("--seed", type=int, default=0, help="seed of the neutral shadow (default 0)")
    p.set_defaults(func=lineage_command)


def _path(arg: str) -> Path:
    p = Path(arg)
    return p / "lineage.h5" if p.is_dir() else p


def lineage_command(args: argparse.Namespace) -> int:
    import alife.lineage

    lin = alife.lineage.open(_path(args.file))
    try:
        return {"summary": _summary, "ancestry": _ancestry, "species": _species, "export": _export,
                "plot": _plot}[args.action](lin, args)
    except ModuleNotFoundError as e:
        if e.name in ("pandas", "matplotlib", "phylotrackpy"):
            raise UserError(f"alife lineage {args.action} needs {e.name}: "
                            f"pip install 'alife[analysis]' (or bash scripts/setup.sh all)") from None
        raise


def _num(value: float, spec: str) -> str:
    """``format(value, spec)``, never a negative zero ("-0.0" for a value that rounds to zero)."""
    text = format(value, spec)
    return format(0.0, spec) if text.startswith("-") and float(text) == 0 else text


def _no_negative_zero(df: Any) -> Any:
    """``df`` with -0.0 in its float columns made 0.0 (a table prints them as "-0.0")."""
    floats = df.select_dtypes(include="float").columns
    if len(floats):
        df = df.copy()
        df[floats] = df[floats] + 0.0  # -0.0 + 0.0 == +0.0
    return df


def _summary(lin: Any, args: argparse.Namespace) -> int:
    from alife.lineage import analysis

    a = lin.attrs
    n_roots = int((lin.parent_ids[:, 0] < 0).sum())
    births = len(lin.ids) - n_roots
    sp = lin.species
    print(f"{lin.path}: world {a.get('world_name')}  seed {a.get('seed')}  schema {a.get('schema_version')}"
          f"  committed through step {lin.last_step}")
    print(f"agents: {len(lin.ids)} ({n_roots} roots at step {a.get('root_step')}, {births} births), "
          f"{len(lin.deaths)} deaths, {int(lin.living_mask.sum())} living")
    causes = lin.deaths["cause"].value_counts()
    print("deaths by cause: " + ", ".join(f"{k} {v}" for k, v in causes.items() if v))
    print(f"species: {len(sp)} ever, {int(sp['extinction_step'].isna().sum())} extant")
    m = lin.mrca()
    if m is None:
        print("MRCA of the living: none (they descend from different roots)")
    else:
        print(f"MRCA of the living: agent {m['id']} born at step {m['step']}, {m['depth']} generations "
              f"below its root, {_num(m['generations_to_living'], '.1f')} generations above the living")
    if lin.living_mask.any():
        pd_, mpd = analysis.phylogenetic_diversity(lin), analysis.mean_pairwise_distance(lin)
        print(f"phylogenetic diversity of the living: {_num(pd_, '.0f')} steps; "
              f"mean pairwise distance: {_num(mpd, '.1f')} steps")
    if lin.last_step >= 0 and len(sp):
        import numpy as np

        r = analysis.evolutionary_activity(lin, np.random.default_rng(args.seed))
        st = r["summary"]
        verdict = ("above" if st["fraction_above"] > 2 * st["shadow_fraction_above"] else
                   "below" if st["fraction_above"] < 0.5 * st["shadow_fraction_above"] else "near")
        print(f"evolutionary activity (species, against a neutral shadow of the same births and deaths, seed "
              f"{args.seed}): {st['fraction_above']:.1%} of species above the shadow's "
              f"{r['quantile']:.0%} threshold a0 = {st['threshold']:.3g} (shadow: {st['shadow_fraction_above']:.1%}): "
              f"{verdict} neutral; total cumulative activity at the end {st['cumulative_final']:.3g} "
              f"(shadow {st['shadow_cumulative_final']:.3g}), mean new activity {st['new_mean']:.3g} "
              f"(shadow {st['shadow_new_mean']:.3g}); shadow population at the end {st['shadow_population_final']} "
              f"(run {st['population_final']})")
        m = analysis.modes(lin)
        if len(m):
            print(f"MODES (species, persistence filter {m.attrs['persistence']} steps, over {len(m)} samples to "
                  f"step {int(m.index[-1])}): persistent species {m['persistent'].mean():.1f} on average; "
                  f"change {int(m['change'].sum())}, novelty {int(m['novelty'].sum())} in all; "
                  f"ecology {m['ecology'].mean():.2f} bits on average (complexity not computed)")
    ps = lin.plugin_series
    if ps.shape[1]:
        last = ps.ffill().iloc[-1]
        print(f"plugin series ({len(ps)} samples): " + ", ".join(f"{k} {_num(v, '.4g')}" for k, v in last.items())
              + " (last values)")
    cyc = analysis.role_cycles(lin)
    if cyc is not None:
        hi, lo = (c.rpartition(".")[2] for c in (cyc["series"][1], cyc["series"][0]))
        print(f"{lo}-{hi} cycles ({cyc['series'][1]} against {cyc['series'][0]}, {cyc['samples']} samples while "
              f"both live, to step {cyc['both_alive_until']}): {hi} lag {lo} by {cyc['lag_steps']:.0f} steps "
              f"(cross-correlation {cyc['r']:.2f} there, {cyc['r_zero']:.2f} at lag 0; white-noise 95% level "
              f"{cyc['threshold']:.2f})")
    lod = lin.line_of_descent()
    if len(lod):
        print(f"line of descent of the most abundant living lineage: {len(lod)} agents, "
              f"root {int(lod['id'].iloc[0])} -> living {int(lod['id'].iloc[-1])}")
    checks = lin.check()
    summary = lin.path.parent / "summary.json"
    if summary.is_file():  # the run folder's own count, written by `alife run` at the end
        import json

        s = json.loads(summary.read_text())
        if isinstance(s, dict) and s.get("steps") == lin.last_step + 1:
            checks["births equal summary.json's"] = s.get("births") == births
            checks["deaths equal summary.json's"] = s.get("deaths") == len(lin.deaths)
    bad = [k for k, ok in checks.items() if not ok]
    bad = [f"{k} ({lin.check_notes[k]})" if k in lin.check_notes else k for k in bad]
    print("checks: " + ("all pass (" + "; ".join(checks) + ")" if not bad else "FAILED: " + "; ".join(bad)))
    return 0 if not bad else 1


def _ancestry(lin: Any, args: argparse.Namespace) -> int:
    try:
        df = lin.ancestry(args.id, all_parents=args.all_parents)
    except KeyError:
        raise UserError(f"{lin.path}: no agent with id {args.id}") from None
    print(_no_negative_zero(df).to_string(index=False))
    return 0


def _species(lin: Any, args: argparse.Namespace) -> int:
    import numpy as np

    sp = lin.species.copy()
    sp["births"] = np.bincount(lin.species_of, minlength=len(sp))[: len(sp)]
    sp["living"] = np.bincount(lin.species_of[lin.living_mask], minlength=len(sp))[: len(sp)]
    print(_no_negative_zero(sp).to_string(index=False))
    return 0


def _export(lin: Any, args: argparse.Namespace) -> int:
    from alife.lineage import export

    write = export.write_alife_csv if args.format == "alife-csv" else export.write_newick
    n = write(lin, args.out, level=args.level, living_only=args.living, first_parent=args.first_parent)
    print(f"wrote {n} taxa to {args.out}")
    return 0


def _plot(lin: Any, args: argparse.Namespace) -> int:
    import numpy as np

    from alife.lineage import plots

    for path in plots.plot_all(lin, args.out, rng=np.random.default_rng(args.seed)):
        print(path)
    return 0
