"""Generational runs on gymnasium tasks: every reproduction strategy the project has, over seeds,
next to EvoTorch's SNES and PGPE on the same episodes. Writes its table into ``docs/results.md``.

    python benchmarks/tasks.py                      # CartPole, Acrobot, Pendulum; 5 seeds
    python benchmarks/tasks.py --tasks lunar_lander --seeds 3
    python benchmarks/tasks.py --tasks taxi --seeds 3 --peers snes   # with the random-action floor
    python benchmarks/tasks.py --no-peers --out -   # print the table only

For each task (a shipped world file) and method, over ``--seeds`` seeds: the environment steps,
CPU seconds and wall seconds until the threshold rule holds (the best genome by training fitness
reaches the task's threshold, confirmed on ``task.confirm_episodes`` training episodes; confirmation
episodes counted), and the held-out score (mean return of that genome on 100 held-out seeded
episodes, seeds disjoint from training). Medians of steps and times come with a 95% bootstrap
interval; held-out means with a 95% t-interval over seeds. Runs that never reach the threshold
within the budget count as "not reached" (an infinite time: a median over them is shown as ">").
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers  # noqa: E402  (sits beside this script)

from alife import config as config_mod  # noqa: E402

#: task -> (world file, step budget for the peers: about what the world's generations spend)
TASKS: dict[str, tuple[str, int]] = {
    "cartpole": ("worlds/cartpole.toml", 300_000),
    "acrobot": ("worlds/acrobot.toml", 1_000_000),
    "pendulum": ("worlds/pendulum.toml", 10_000_000),
    "lunar_lander": ("worlds/lunar_lander.toml", 20_000_000),
    "taxi": ("worlds/taxi.toml", 2_000_000),
}

def _nes(cfg: Any, budget: int) -> dict[str, Any]:
    """Separable NES on a task, set up as the SNES peer is (``benchmarks/peers.py``): one search
    distribution (no species split) over the ``d`` policy weights alone (as the peer's), SNES's
    population ``4 + floor(3 ln d)``, its initial spread (``stdev_init``) and spread rate, centre
    learning rate 1, every child a sample (no elites), one update per generation, and the peer's
    step budget (``max_env_steps``). The first generation is a sample of the distribution around
    the founders' mean, told like the rest (``first_generation = "sample"``, the default; the
    peer's is a sample around one initial genome), and the noise is not mirrored, as the peer's
    is not: the policy is a tanh network, and tanh is odd, so negating all its weights and biases
    gives the same network but for the sign of the output bias; around a centre near zero the
    mirrored twin ``-z`` of a sample is nearly the same policy, and mirroring halves the early
    generations' distinct samples (docs/results.md, "Where we lose")."""
    from alife.generational.episodes import EpisodePool
    from alife.generational.policy import task_layout

    pool = EpisodePool(cfg.task.env_id, cfg.task.max_episode_steps, cfg.source)
    lo, hi = task_layout(pool.spec, cfg.brain, cfg.task.hidden).segment_range("policy")
    pool.close()
    n = 4 + int(3 * math.log(hi - lo))
    return {"strategies.reproduction": "crossover-mutate", "strategies.mutation": "nes",
            "task.population": n, "task.elite": 0, "task.parents": n, "task.crossover": 0.0,
            "plugin.nes.window": n, "plugin.nes.sigma_init": peers.SETTINGS["snes"]["stdev_init"],
            "plugin.nes.lr_mean": 1.0, "plugin.nes.search": "policy", "plugin.nes.mirrored": False,
            "mutation.species_threshold": 1e6,
            "task.generations": 1 << 30, "task.max_env_steps": budget}


#: reproduction strategies the project has: name -> world overrides (a function of the world's
#: configuration and the peers' step budget). The Gaussian control and learned variation run the
#: world as shipped (its population, episodes, generations, elites); NES runs as the SNES peer does.
STRATEGIES: dict[str, Any] = {
    "gaussian": lambda cfg, budget: {"strategies.reproduction": "crossover-mutate", "strategies.mutation": "gaussian"},
    "nes": _nes,
    # learned variation (as worlds/cartpole_learned.toml); the gaussian row is its matched control
    "learned": lambda cfg, budget: {"strategies.reproduction": "learned-crossover", "strategies.mutation": "learned",
                            "strategies.speciation": "compatibility-groups"},
}

BEGIN, END = "<!-- benchmarks/tasks.py:begin -->", "<!-- benchmarks/tasks.py:end -->"


def run_ours(world: str, strategy: str, seed: int, budget: int) -> dict[str, Any]:
    from alife.generational import TaskRun

    ov = dict(STRATEGIES[strategy](config_mod.load(ROOT / world), budget))
    ov["task.stop_at_threshold"] = True
    s = TaskRun(str(ROOT / world), seed=seed, overrides=ov).run()
    return {"method": f"alife-{strategy}", "seed": seed, "generations": s["generations"],
            "env_steps": s["env_steps"], "reached": s["reached_threshold"],
            "env_steps_to_threshold": s["env_steps_to_threshold"],
            "cpu_to_threshold_s": s["cpu_to_threshold_s"], "wall_to_threshold_s": s["wall_to_threshold_s"],
            "heldout_mean": s["heldout_mean"], "heldout_std": s["heldout_std"], "threshold": s["threshold"]}


# ---------------------------------------------------------------------- statistics
def median_ci(values: list[float | None], rng: np.random.Generator, n_boot: int = 4000) -> tuple[float, float, float]:
    """Median and 95% percentile-bootstrap interval; ``None`` (not reached) counts as infinity."""
    x = np.array([math.inf if v is None else v for v in values], dtype=float)
    boots = np.median(rng.choice(x, size=(n_boot, x.size), replace=True), axis=1)
    # "nearest", not interpolated: between a finite median and an infinite one (runs that never
    # reached the threshold) interpolation gives NaN
    lo, hi = np.percentile(boots, [2.5, 97.5], method="nearest")
    med = np.median(x) if np.isfinite(x).all() else np.percentile(x, 50, method="nearest")
    return float(med), float(lo), float(hi)


#: two-sided 95% Student-t quantiles by degrees of freedom (1.96 past the table)
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042}


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of a 95% Student-t interval over seeds."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return float(x.mean()), math.nan
    df = x.size - 1
    t = T975.get(df) or T975[max(k for k in T975 if k <= df)] if df <= 30 else 1.96
    return float(x.mean()), t * float(x.std(ddof=1)) / math.sqrt(x.size)


def ratio_ci(ours: list[float | None], peer: list[float | None], rng: np.random.Generator,
             n_boot: int = 4000) -> tuple[float, float, float, float]:
    """Median steps of ``ours`` over the peer's, with a 95% percentile-bootstrap interval (each side
    resampled on its own; not reached counts as infinity), and the probability that a run of ours
    needs fewer steps than a run of the peer (ties count a half: the Mann-Whitney effect size)."""
    a = np.array([math.inf if v is None else v for v in ours], dtype=float)
    b = np.array([math.inf if v is None else v for v in peer], dtype=float)

    def med(x: np.ndarray, axis: int | None = None) -> np.ndarray:
        return np.percentile(x, 50, axis=axis, method="nearest")

    with np.errstate(invalid="ignore", divide="ignore"):
        r = med(rng.choice(a, (n_boot, a.size)), 1) / med(rng.choice(b, (n_boot, b.size)), 1)
        point = float(med(a) / med(b))
    r = np.where(np.isnan(r), 1.0, r)  # both medians not reached: no difference
    lo, hi = np.percentile(r, [2.5, 97.5], method="nearest")
    p_less = float(((a[:, None] < b[None, :]) + 0.5 * (a[:, None] == b[None, :])).mean())
    return (1.0 if math.isnan(point) else point), float(lo), float(hi), p_less


def against(results: dict[str, list[dict[str, Any]]], peer: str, seed: int = 1) -> str:
    """Rows: each of our methods' steps to threshold against ``peer``'s on the same task."""
    rng = np.random.default_rng(seed)
    rows = [f"| task | method | median steps / {peer}'s, [95% CI] | P(fewer steps than {peer}) |",
            "| --- | --- | --- | --- |"]
    for task, runs in results.items():
        theirs = [r["env_steps_to_threshold"] for r in runs if r["method"] == peer]
        if not theirs:
            continue
        for method in dict.fromkeys(r["method"] for r in runs if r["method"].startswith("alife-")):
            ours = [r["env_steps_to_threshold"] for r in runs if r["method"] == method]
            m, lo, hi, p = ratio_ci(ours, theirs, rng)
            rows.append(f"| {task} | {method} | {m:.2f} [{lo:.2f}, {hi:.2f}] | {p:.2f} |")
    return "\n".join(rows) if len(rows) > 2 else ""


def _fmt(m: float, lo: float, hi: float, scale: float = 1.0, digits: int = 0) -> str:
    def f(v: float) -> str:
        return ">budget" if math.isinf(v) else f"{v / scale:,.{digits}f}"
    if math.isinf(m) and not (math.isfinite(lo) or math.isfinite(hi)):  # no run reached it
        return ">budget"
    return f"{f(m)} [{f(lo)}, {f(hi)}]"


def table(results: dict[str, list[dict[str, Any]]], thresholds: dict[str, float], seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    rows = ["| task | method | reached | env steps to threshold, median [95% CI] | CPU s to threshold | "
            "wall s to threshold | held-out mean ± 95% CI (over seeds) | held-out per seed | held-out >= threshold |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for task, runs in results.items():
        thr = thresholds[task]
        for method in dict.fromkeys(r["method"] for r in runs):
            rs = [r for r in runs if r["method"] == method]
            hm, hci = mean_ci([r["heldout_mean"] for r in rs])
            ok = sum(r["heldout_mean"] >= thr for r in rs)
            per_seed = ", ".join(f"{r['heldout_mean']:.1f}" for r in rs)
            if rs[0].get("trained", True):
                steps = _fmt(*median_ci([r["env_steps_to_threshold"] for r in rs], rng))
                cpu = _fmt(*median_ci([r["cpu_to_threshold_s"] for r in rs], rng), digits=2)
                wall = _fmt(*median_ci([r["wall_to_threshold_s"] for r in rs], rng), digits=2)
                reached = f"{sum(r['reached'] for r in rs)}/{len(rs)}"
            else:  # the random-action floor: nothing trained, no threshold rule
                steps = cpu = wall = reached = "n/a"
            rows.append(f"| {task} ({thr:g}) | {method} | {reached} | {steps} | {cpu} | {wall} | "
                        f"{hm:.1f} ± {hci:.1f} | {per_seed} | {ok}/{len(rs)} |")
    return "\n".join(rows)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; Python "
            f"{platform.python_version()}, torch {torch.__version__} (CPU, {torch.get_num_threads()} threads)")


def write_results(path: Path, body: str) -> None:
    block = f"{BEGIN}\n{body}\n{END}"
    text = path.read_text() if path.exists() else "# Results\n"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=["cartpole", "acrobot", "pendulum"], choices=sorted(TASKS))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0, help="seeds run: first-seed .. first-seed + seeds - 1")
    p.add_argument("--strategies", nargs="*", default=sorted(STRATEGIES), choices=sorted(STRATEGIES),
                   help="our rows (none: the peers alone)")
    p.add_argument("--budget", type=int, default=None, metavar="STEPS",
                   help="env-step budget of the peers and NES (default: each task's, in TASKS)")
    p.add_argument("--no-peers", action="store_true", help="skip EvoTorch SNES/PGPE")
    p.add_argument("--peers", nargs="+", default=["snes", "pgpe"], choices=["snes", "pgpe"])
    p.add_argument("--random-floor", nargs="*", default=["taxi"], choices=sorted(TASKS),
                   help="tasks that also get a uniformly-random-action row (default: taxi)")
    p.add_argument("--out", default=str(ROOT / "docs" / "results.md"), help="markdown file, or - for stdout")
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "tasks_results.json"), help="raw per-run results")
    args = p.parse_args(argv)
    import torch

    use_peers = not args.no_peers and peers.available()
    if use_peers:
        import evotorch  # noqa: F401  (importing it sets its loggers to INFO; quieten them after)

        logging.getLogger("evotorch").setLevel(logging.WARNING)

    # both sides single-threaded: TaskRun.run() already is; tiny batched networks gain nothing
    # from intra-op threads, which only spin (see alife/generational/runner.py)
    torch.set_num_threads(1)
    results: dict[str, list[dict[str, Any]]] = {}
    thresholds: dict[str, float] = {}
    t0 = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for task in args.tasks:
        world, budget = TASKS[task]
        budget = args.budget or budget
        runs = results.setdefault(task, [])
        for strategy in args.strategies:
            for seed in seeds:
                r = run_ours(world, strategy, seed, budget)
                thresholds[task] = r["threshold"]
                runs.append(r)
                print(f"{task} {r['method']} seed {seed}: steps {r['env_steps_to_threshold']} "
                      f"held-out {r['heldout_mean']:.1f}", flush=True)
        if task in args.random_floor:
            for seed in seeds:
                r = peers.run_random(str(ROOT / world), seed)
                runs.append(r)
                print(f"{task} {r['method']} seed {seed}: held-out {r['heldout_mean']:.1f}", flush=True)
        if use_peers:
            for algo in args.peers:
                for seed in seeds:
                    r = peers.run_peer(algo, str(ROOT / world), seed, budget)
                    thresholds.setdefault(task, r["threshold"])  # a run of the peers alone
                    runs.append(r)
                    print(f"{task} {r['method']} seed {seed}: steps {r['env_steps_to_threshold']} "
                          f"held-out {r['heldout_mean']:.1f}", flush=True)
    if args.json:  # the runs first: nothing below may lose them
        Path(args.json).write_text(json.dumps({"machine": machine(), "results": results}, indent=1) + "\n")
    confirm_note = ", ".join(f"{t} {config_mod.load(ROOT / TASKS[t][0]).task.confirm_episodes}" for t in args.tasks)
    body = "\n".join([
        "## Generational runs on gymnasium tasks (`benchmarks/tasks.py`)",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}; {args.seeds} seeds per row"
        + (f" ({seeds.start}-{seeds.stop - 1})" if args.first_seed else "") + "; "
        f"{time.perf_counter() - t0:.0f} s in all; 1-minute load average at the end "
        f"{os.getloadavg()[0]:.1f}"
        + (" (above the core count: other jobs shared the CPUs and wall times are inflated; CPU seconds "
           "are not)" if os.getloadavg()[0] > (os.cpu_count() or 1) else "")
        + ". Command: `python benchmarks/tasks.py "
        f"{' '.join(sys.argv[1:] if argv is None else argv)}`.",
        "",
        "Threshold rule, the same for every method: the best genome of a generation by training "
        "fitness reaches the threshold, confirmed on the world's `task.confirm_episodes` training "
        f"episodes ({confirm_note}; those episodes count in the steps). Held-out: that genome's mean return on 100 held-out seeded episodes (seeds disjoint "
        "from training), never the max over noisy training means. Steps and times are medians with "
        "95% bootstrap intervals (`>budget`: not reached); CPU seconds are this process's. "
        "`random-actions`: uniformly random actions (the action space's seeded `sample`) on the same "
        "held-out episodes, a floor. "
        "EvoTorch rows optimise the same policy network on the same episodes "
        + ("(SNES, PGPE with ClipUp; settings in `benchmarks/peers.py`)." if use_peers else
           "(not installed in this run: `pip install evotorch`)."),
        "",
        table(results, thresholds),
    ])
    side = against(results, "evotorch-snes")
    if side:
        body += ("\n\nSample efficiency beside SNES, from the same runs: the ratio of median env steps to "
                 "the threshold (below 1: ours needs fewer; 95% bootstrap interval, each side resampled "
                 "on its own) and the probability that one of our runs needs fewer steps than one of "
                 "SNES's (0.5: no difference).\n\n" + side)
    if args.out == "-":
        print(body)
    else:
        write_results(Path(args.out), body)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
