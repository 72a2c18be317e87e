"""Novelty search against selection on return on a deceptive task: how far the behaviours spread.

    python benchmarks/novelty_spread.py                    # MountainCar-v0, seeds 0-9, three rules
    python benchmarks/novelty_spread.py --seeds 3 --generations 20

``worlds/mountain_car.toml`` (population 30, 40 generations, one training episode a genome) under
``tournament`` (on return), ``novelty`` (behaviour: the policy's outputs on probes, the default) and
``novelty`` with ``behaviour = "final-observation"``. Every rule is measured the same way, on where
each evaluated genome's training episode ended (its last observation: car position and velocity;
the runner keeps it for every rule), whatever the rule selects on:

- **spread**: mean pairwise distance of the final generation's end points, each coordinate scaled
  by its range in the task (position -1.2..0.6, velocity -0.07..0.07);
- **coverage**: the cells of a 20 x 20 grid over that scaled plane that some evaluated genome's
  episode ended in, over the whole run;
- **flag**: whether some training episode reached the flag (position >= 0.5);
- **archive**: behaviours in novelty's archive at the end (``filled``; ``added`` ever added).

Spread and coverage are compared over seeds: medians per rule, and the per-seed difference
against ``tournament`` (the same seed: the same first population) with an exact two-sided sign
test (ties left out). Prints a Markdown table and the machine.
"""

from __future__ import annotations

import argparse
import logging
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alife.plugins import hookimpl  # noqa: E402

LOW = np.array([-1.2, -0.07])
HIGH = np.array([0.6, 0.07])
GRID = 20

RULES: dict[str, dict[str, Any]] = {
    "tournament": {"strategies.selection": "tournament"},
    "novelty (probes)": {"strategies.selection": "novelty"},
    "novelty (final-observation)": {"strategies.selection": "novelty", "plugin.novelty.behaviour": "final-observation"},
}


class EndPoints:
    """Keeps each generation's end points (``sim.final_obs``, set when the training episodes are
    played; a spy only, it changes nothing)."""

    def __init__(self) -> None:
        self.gens: list[np.ndarray] = []

    @hookimpl
    def alife_step_end(self, sim: Any, step: int) -> None:
        fin = getattr(sim, "final_obs", None)
        if fin is None:
            raise RuntimeError("no final observations: run with task.workers = 1")
        self.gens.append(fin.cpu().numpy().copy())


def scaled(points: np.ndarray) -> np.ndarray:
    return (points - LOW) / (HIGH - LOW)


def spread(points: np.ndarray) -> float:
    p = scaled(points)
    d = np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(-1))
    n = len(p)
    return float(d.sum() / (n * (n - 1)))


def coverage(gens: list[np.ndarray]) -> int:
    p = np.clip(scaled(np.concatenate(gens)), 0.0, 1.0 - 1e-9)
    cells = (p * GRID).astype(np.int64)
    return len(np.unique(cells, axis=0))


def sign_test(a: np.ndarray, b: np.ndarray) -> float:
    """Exact two-sided sign test of paired samples (ties left out)."""
    wins, losses = int((a > b).sum()), int((a < b).sum())
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def one(rule: str, seed: int, generations: int) -> dict[str, Any]:
    from alife.generational.runner import TaskRun

    spy = EndPoints()
    over = {**RULES[rule], "task.workers": 1, "task.generations": generations}
    run = TaskRun(ROOT / "worlds" / "mountain_car.toml", seed=seed, overrides=over, plugins=[spy])
    nov = run.hooks.get_plugin("novelty") if "novelty" in rule else None
    t0 = time.perf_counter()
    run.run()
    out = {"rule": rule, "seed": seed, "spread": spread(spy.gens[-1]), "coverage": coverage(spy.gens),
           "flag": bool(max(g[:, 0].max() for g in spy.gens) >= 0.5), "wall_s": time.perf_counter() - t0}
    if nov is not None:
        out["archive"] = (int(nov.filled), int(nov.added))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--generations", type=int, default=40)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    rows: list[dict[str, Any]] = []
    for seed in range(args.seeds):
        for rule in RULES:
            r = one(rule, seed, args.generations)
            rows.append(r)
            print(f"  seed {seed} {rule:28s} spread {r['spread']:.3f} coverage {r['coverage']:3d} "
                  f"flag {r['flag']!s:5s} archive {r.get('archive', '-')} ({r['wall_s']:.0f} s)", flush=True)

    def of(rule: str, key: str) -> np.ndarray:
        return np.array([r[key] for r in rows if r["rule"] == rule], dtype=float)

    print(f"\nMountainCar-v0, population 30, {args.generations} generations, seeds 0-{args.seeds - 1}; "
          f"{platform.processor() or platform.machine()}, {platform.python_version()}\n")
    print("| selection | spread, median [min, max] | coverage (of 400 cells), median [min, max] | flag | archive at the end | spread vs tournament, same seed: wins, sign test p | coverage vs tournament: wins, p |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    base_s, base_c = of("tournament", "spread"), of("tournament", "coverage")
    for rule in RULES:
        s, c, f = of(rule, "spread"), of(rule, "coverage"), of(rule, "flag")
        arch = [r["archive"] for r in rows if r["rule"] == rule and "archive" in r]
        arch_txt = (f"{min(a for a, _ in arch)}-{max(a for a, _ in arch)} held, "
                    f"{min(b for _, b in arch)}-{max(b for _, b in arch)} added") if arch else "-"
        if rule == "tournament":
            vs_s = vs_c = "-"
        else:
            vs_s = f"{int((s > base_s).sum())}/{len(s)}, p = {sign_test(s, base_s):.3f}"
            vs_c = f"{int((c > base_c).sum())}/{len(c)}, p = {sign_test(c, base_c):.3f}"
        print(f"| `{rule}` | {np.median(s):.3f} [{s.min():.3f}, {s.max():.3f}] | {np.median(c):.0f} "
              f"[{c.min():.0f}, {c.max():.0f}] | {int(f.sum())}/{len(f)} | {arch_txt} | {vs_s} | {vs_c} |")


if __name__ == "__main__":
    main()
