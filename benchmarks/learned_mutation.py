"""Learned mutation: its speed, and an ablation against a matched Gaussian and a frozen mutator.

    python benchmarks/learned_mutation.py speed                 # 1,000 children, crossover included
    python benchmarks/learned_mutation.py world-speed           # the world at 10,000 agents, built-in vs learned
    python benchmarks/learned_mutation.py ablation --seeds 8    # writes benchmarks/learned_mutation.json
    python benchmarks/learned_mutation.py table                 # its Markdown table (for docs/results.md)

**speed**: 1,000 children made from 1,000 parent pairs of the default world's layout: learned
crossover (gates of the first parent's mutator) then learned mutation (every parameter through
the parent's mutator network), one batched pass each; the median of ``--reps`` repetitions, wall
and process CPU time, with the load average before and after (the machine is shared).

**ablation**: three arms with paired seeds (seed ``s`` is the same world and the same initial
genomes in every arm, except the two tensors the learned mutator adds):

- ``learned``: mutation ``learned`` (its network, per-segment heritable rates, the escape);
- ``gaussian``: the built-in self-adaptive ``gaussian`` with ``[mutation] sigma_init`` set to the
  learned mutator's measured RMS change per policy weight (measured on each setting's initial
  population: every genome mutated once by its own mutator, the escape included);
- ``frozen``: mutation ``learned`` with ``rate_scale_mutator = 0`` (the mutator never changes).

Settings: CartPole-v1 and Acrobot-v1 in generational mode (``TaskRun``; a fixed number of
generations, no stop at the threshold: env steps until the threshold rule first held, and the
held-out score of the best genome by training fitness on 100 held-out seeded episodes), and the
default world (meadow) for ``--world-steps`` steps: energy intake, the energy gathered per
agent-step of life by the agents that died in the second half of the run (sum of lifetime energy
over sum of age). Plus a competition: ``worlds/learned_mixture.toml`` (half the founders learned,
half Gaussian; the learned policy rate scaled so that its measured step matches the Gaussian's
initial 0.05) for ``--world-steps`` steps, the learned share of the population at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alife.plugins import hookimpl  # noqa: E402

OUT = ROOT / "benchmarks" / "learned_mutation.json"
TASKS = {"cartpole": ("worlds/cartpole.toml", 15), "acrobot": ("worlds/acrobot.toml", 12)}
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 19: 2.093, 24: 2.064}


def load() -> float:
    return os.getloadavg()[0]


# ---------------------------------------------------------------------- speed
def speed(reps: int = 21, k: int = 1000, threads: int = 1) -> dict[str, Any]:
    from alife import Simulation
    from alife.strategies.learned import LayoutConsts, learned_crossover, learned_mutate

    torch.set_num_threads(threads)
    ov = {"strategies.mutation": "learned", "strategies.reproduction": "learned-crossover", "world.initial_agents": k}
    with Simulation(None, seed=0, overrides=ov, device="cpu") as sim:
        lay, gen = sim.layout, sim.generator
        c = LayoutConsts(lay, sim.device)
        g = sim.world.genomes[:k].clone()
        partners = torch.randperm(k, generator=gen)
        scale = torch.ones(3)
        m = sim.config.mutation

        def once() -> torch.Tensor:
            child = learned_crossover(g, g[partners], g, c, gen)
            return learned_mutate(child, g, c, scale, m.sigma_min, m.sigma_max, gen)

        once()
        l0 = load()
        wall, cpu = [], []
        for _ in range(reps):
            t0, c0 = time.perf_counter(), time.process_time()
            once()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        return {"children": k, "genome_size": lay.size, "threads": threads, "reps": reps,
                "wall_ms_median": 1e3 * float(np.median(wall)), "wall_ms_min": 1e3 * float(np.min(wall)),
                "cpu_ms_median": 1e3 * float(np.median(cpu)), "load_before": l0, "load_after": load(),
                "cpus": os.cpu_count(), "torch": torch.__version__, "machine": platform.processor() or platform.machine()}


def world_speed(agents: int = 10_000, steps: int = 30, warm: int = 10, rounds: int = 3) -> dict[str, Any]:
    """Agent-steps per second of the meadow sized for ``agents`` (as ``benchmarks/world_step.py``
    sizes it) with the built-in strategies and with learned mutation (learned crossover,
    compatibility groups), the two alternated ``rounds`` times so that both see the same load."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from world_step import world_overrides

    from alife import Simulation

    torch.set_num_threads(1)
    arms = {"built-in": {}, "learned": {"strategies.mutation": "learned"},
            "learned + crossover + groups": {"strategies.mutation": "learned", "strategies.reproduction": "learned-crossover",
                                             "strategies.speciation": "compatibility-groups"}}
    sims = {a: Simulation(None, seed=0, device="cpu", overrides={**world_overrides(agents), **ov}) for a, ov in arms.items()}
    for s in sims.values():
        s.run(warm)
    rate: dict[str, list[float]] = {a: [] for a in arms}
    births: dict[str, int] = {a: 0 for a in arms}
    for _ in range(rounds):
        for a, s in sims.items():
            n0, b0, t0 = 0, s.totals["births"], time.perf_counter()
            for _ in range(steps):
                n0 += s.population
                s.step()
            rate[a].append(n0 / (time.perf_counter() - t0))
            births[a] += s.totals["births"] - b0
    for s in sims.values():
        s.close()
    out = {a: {"agent_steps_per_s": float(np.median(r)), "births_per_step": births[a] / (rounds * steps)} for a, r in rate.items()}
    base = out["built-in"]["agent_steps_per_s"]
    for a in out:
        out[a]["ratio_to_builtin"] = out[a]["agent_steps_per_s"] / base
    return {"agents": agents, "steps": steps, "rounds": rounds, "load": load(), "arms": out}


# ---------------------------------------------------------------------- matching
def measured_step(genomes: torch.Tensor, lay: Any, sigma: Any, generator: torch.Generator) -> float:
    """RMS change per policy weight when every genome is mutated once by its own learned mutator."""
    from alife.strategies.learned import LayoutConsts, learned_mutate

    c = LayoutConsts(lay, genomes.device)
    child = learned_mutate(genomes.clone(), genomes, c, torch.ones(3), sigma.sigma_min, sigma.sigma_max, generator)
    a, b = lay.segment_range("policy")
    return float((child[:, a:b] - genomes[:, a:b]).pow(2).mean().sqrt())


def task_step(world: str, seed: int) -> float:
    from alife.generational import TaskRun

    run = TaskRun(str(ROOT / world), seed=seed, overrides={"strategies.mutation": "learned"})
    try:
        g = run.world.genomes[run.world.alive_slots()]
        return measured_step(g, run.layout, run.config.mutation, torch.Generator().manual_seed(seed + 7))
    finally:
        run.close()


def world_step_size(seed: int) -> float:
    from alife import Simulation

    with Simulation(None, seed=seed, overrides={"strategies.mutation": "learned"}, device="cpu") as sim:
        g = sim.world.genomes[sim.world.alive_slots()]
        return measured_step(g, sim.layout, sim.config.mutation, torch.Generator().manual_seed(seed + 7))


def arm_overrides(arm: str, sigma: float) -> dict[str, Any]:
    if arm == "learned":
        return {"strategies.mutation": "learned"}
    if arm == "frozen":
        return {"strategies.mutation": "learned", "plugin.learned.rate_scale_mutator": 0.0}
    return {"strategies.mutation": "gaussian", "mutation.sigma_init": sigma}


# ---------------------------------------------------------------------- runs
def run_task(task: str, arm: str, seed: int, sigma: float) -> dict[str, Any]:
    from alife.generational import TaskRun

    world, gens = TASKS[task]
    ov = arm_overrides(arm, sigma)
    ov.update({"task.generations": gens, "task.stop_at_threshold": False, "task.heldout_every": 0})
    c0 = time.process_time()
    s = TaskRun(str(ROOT / world), seed=seed, overrides=ov).run()
    return {"setting": task, "arm": arm, "seed": seed, "env_steps": s["env_steps"],
            "env_steps_to_threshold": s["env_steps_to_threshold"], "heldout_mean": s["heldout_mean"],
            "cpu_s": round(time.process_time() - c0, 2)}


class Intake:
    """Energy gathered per agent-step of life by the agents that die from step ``start`` on."""

    def __init__(self, start: int):
        self.start, self.energy, self.age = start, 0.0, 0.0

    @hookimpl
    def alife_fitness(self, sim: Any, fitness: Any) -> None:
        if sim.world.step < self.start or fitness.mode != "world":
            return
        slots = torch.as_tensor(fitness.slots)
        self.energy += float(np.sum(fitness.values))
        self.age += float(sim.world.age[slots].sum())


def run_world(arm: str, seed: int, sigma: float, steps: int) -> dict[str, Any]:
    from alife import Simulation

    intake = Intake(steps // 2)
    c0 = time.process_time()
    with Simulation(None, seed=seed, overrides=arm_overrides(arm, sigma), device="cpu", plugins=[intake]) as sim:
        sim.run(steps)
        pop = sim.population
    return {"setting": "meadow", "arm": arm, "seed": seed, "steps": steps, "population": pop,
            "intake": intake.energy / intake.age if intake.age else None, "cpu_s": round(time.process_time() - c0, 2)}


def run_mixture(seed: int, steps: int, learned_step: float) -> dict[str, Any]:
    """The learned share in ``worlds/learned_mixture.toml``, its policy step matched to the
    Gaussian's (``rate_scale_policy`` = Gaussian sigma / the learned mutator's measured step)."""
    from alife import Simulation

    c0 = time.process_time()
    sigma = 0.05  # the meadow's [mutation] sigma_init, the Gaussian lineages' initial step
    ov = {"plugin.learned.rate_scale_policy": sigma / learned_step}
    with Simulation(str(ROOT / "worlds" / "learned_mixture.toml"), seed=seed, device="cpu", overrides=ov) as sim:
        sim.run(steps)
        by = sim.population_by_strategy()
        series = [list(r) for r in sim.strategy_series]
    tot = sum(by.values())
    return {"setting": "mixture", "arm": "learned share", "seed": seed, "steps": steps, "population": tot,
            "share": by.get("learned", 0) / tot if tot else None, "by_strategy": by, "series": series,
            "names": list(by), "cpu_s": round(time.process_time() - c0, 2)}


def ablation(seeds: int, world_steps: int, parts: list[str], out: Path = OUT) -> None:
    torch.set_num_threads(1)
    res: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    res.setdefault("runs", [])
    done = {(r["setting"], r["arm"], r["seed"]) for r in res["runs"]}
    res.setdefault("sigma", {})
    res["machine"] = {"cpus": os.cpu_count(), "torch": torch.__version__, "load_at_start": load()}
    res["config"] = {"seeds": seeds, "world_steps": world_steps, "parts": parts,
                     "tasks": {t: {"world": w, "generations": g} for t, (w, g) in TASKS.items()}}

    def save() -> None:
        out.write_text(json.dumps(res, indent=1))

    for part in parts:
        for seed in range(seeds):
            if part in TASKS:
                key = f"{part}/{seed}"
                if key not in res["sigma"]:
                    res["sigma"][key] = task_step(TASKS[part][0], seed)
                for arm in ("learned", "gaussian", "frozen"):
                    if (part, arm, seed) not in done:
                        res["runs"].append(run_task(part, arm, seed, res["sigma"][key]))
                        print(res["runs"][-1], flush=True)
                        save()
            elif part == "meadow":
                key = f"meadow/{seed}"
                if key not in res["sigma"]:
                    res["sigma"][key] = world_step_size(seed)
                for arm in ("learned", "gaussian", "frozen"):
                    if (part, arm, seed) not in done:
                        res["runs"].append(run_world(arm, seed, res["sigma"][key], world_steps))
                        print(res["runs"][-1], flush=True)
                        save()
            elif part == "mixture" and ("mixture", "learned share", seed) not in done:
                key = f"meadow/{seed}"
                if key not in res["sigma"]:
                    res["sigma"][key] = world_step_size(seed)
                res["runs"].append(run_mixture(seed, world_steps, res["sigma"][key]))
                print({k: v for k, v in res["runs"][-1].items() if k != "series"}, flush=True)
                save()
    res["machine"]["load_at_end"] = load()
    save()


# ---------------------------------------------------------------------- table
def mean_ci(x: list[float]) -> tuple[float, float]:
    a = np.asarray(x, dtype=float)
    if a.size < 2:
        return float(a.mean()) if a.size else math.nan, math.nan
    t = T975.get(a.size - 1, 1.96)
    return float(a.mean()), float(t * a.std(ddof=1) / math.sqrt(a.size))


def fmt(m: float, h: float, d: int = 2) -> str:
    return f"{m:.{d}f} ± {h:.{d}f}" if not math.isnan(h) else f"{m:.{d}f}"


def table(paths: list[Path]) -> str:
    res: dict[str, Any] = {"runs": [], "sigma": {}}
    for p in paths:
        got = json.loads(Path(p).read_text())
        res["runs"] += got["runs"]
        res["sigma"].update(got.get("sigma", {}))
    runs = res["runs"]
    rows = ["| setting | measure | learned | gaussian (matched) | frozen mutator | learned − gaussian (paired) | learned − frozen (paired) |",
            "| --- | --- | --- | --- | --- | --- | --- |"]

    def by(setting: str, arm: str, key: str) -> dict[int, Any]:
        return {r["seed"]: r.get(key) for r in runs if r["setting"] == setting and r["arm"] == arm}

    def line(setting: str, label: str, key: str, tf: Any = float, d: int = 2) -> None:
        arms = {a: by(setting, a, key) for a in ("learned", "gaussian", "frozen")}
        cells = []
        for a in ("learned", "gaussian", "frozen"):
            v = [tf(x) for x in arms[a].values() if x is not None]
            cells.append(fmt(*mean_ci(v), d) + f" (n={len(v)})")
        for other in ("gaussian", "frozen"):
            seeds = [s for s in arms["learned"] if arms["learned"][s] is not None and arms[other].get(s) is not None]
            diff = [tf(arms["learned"][s]) - tf(arms[other][s]) for s in seeds]
            cells.append(fmt(*mean_ci(diff), d) + f" (n={len(diff)})")
        rows.append(f"| {setting} | {label} | " + " | ".join(cells) + " |")

    for task in TASKS:
        if not any(r["setting"] == task for r in runs):
            continue
        line(task, "held-out score (100 seeded episodes)", "heldout_mean", d=1)
        line(task, "log10 env steps to threshold (runs that reached it)", "env_steps_to_threshold", math.log10)
        reached = {a: by(task, a, "env_steps_to_threshold") for a in ("learned", "gaussian", "frozen")}
        rows.append(f"| {task} | reached the threshold | " + " | ".join(
            f"{sum(v is not None for v in reached[a].values())}/{len(reached[a])}" for a in ("learned", "gaussian", "frozen")) + " | | |")
    if any(r["setting"] == "meadow" for r in runs):
        line("meadow", "energy intake per agent-step (2nd half)", "intake", d=4)
        line("meadow", "population at the end", "population", d=0)
    mix = [r["share"] for r in runs if r["setting"] == "mixture" and r["share"] is not None]
    if mix:
        rows.append(f"| mixture | learned share of the population at the end (from 0.5) | {fmt(*mean_ci(mix), 3)} (n={len(mix)}) | | | | |")
    sig = {k: v for k, v in res.get("sigma", {}).items()}
    if sig:
        per = {}
        for k, v in sig.items():
            per.setdefault(k.split("/")[0], []).append(v)
        rows.append("")
        rows.append("Matched Gaussian step (the learned mutator's RMS change per policy weight on the initial "
                    "population, mean over seeds): " + ", ".join(f"{k} {np.mean(v):.4f}" for k, v in per.items()) + ".")
    return "\n".join(rows)


def plot_mixture(paths: list[Path], out: Path) -> Path:
    """The learned share of the population over time in each mixture run, and their mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for p in paths for r in json.loads(Path(p).read_text())["runs"] if r["setting"] == "mixture"]
    fig, ax = plt.subplots(figsize=(7, 4))
    shares = []
    for r in runs:
        sr = np.asarray(r["series"], dtype=float)
        if sr.size == 0:
            continue
        col = 1 + r["names"].index("learned")
        share = sr[:, col] / np.maximum(sr[:, 1:].sum(1), 1)
        ax.plot(sr[:, 0], share, color="tab:blue", alpha=0.35, lw=1)
        shares.append((sr[:, 0], share))
    if shares:
        n = min(len(x) for x, _ in shares)
        ax.plot(shares[0][0][:n], np.mean([y[:n] for _, y in shares], axis=0), color="black", lw=2,
                label=f"mean of {len(shares)} seeds")
    ax.axhline(0.5, color="grey", ls=":")
    ax.set_ylim(0, 1)
    ax.set_xlabel("step")
    ax.set_ylabel("learned share of the population")
    ax.set_title("worlds/learned_mixture.toml: learned vs Gaussian lineages (matched step)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("speed")
    sp.add_argument("--reps", type=int, default=21)
    sp.add_argument("--threads", type=int, default=1)
    ws = sub.add_parser("world-speed")
    ws.add_argument("--agents", type=int, default=10_000)
    ws.add_argument("--steps", type=int, default=30)
    ab = sub.add_parser("ablation")
    ab.add_argument("--seeds", type=int, default=8)
    ab.add_argument("--world-steps", type=int, default=1500)
    ab.add_argument("--parts", default="cartpole,acrobot,meadow,mixture")
    ab.add_argument("--out", type=Path, default=OUT, help="results file (runs already in it are skipped)")
    pm = sub.add_parser("plot-mixture")
    pm.add_argument("results", nargs="+", type=Path)
    pm.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "learned_mixture_share.png")
    tb = sub.add_parser("table")
    tb.add_argument("results", nargs="*", type=Path, default=[OUT])
    a = ap.parse_args()
    if a.cmd == "speed":
        print(json.dumps(speed(a.reps, threads=a.threads), indent=1))
    elif a.cmd == "plot-mixture":
        print(plot_mixture(a.results, a.out))
    elif a.cmd == "world-speed":
        print(json.dumps(world_speed(a.agents, a.steps), indent=1))
    elif a.cmd == "ablation":
        ablation(a.seeds, a.world_steps, a.parts.split(","), a.out)
    else:
        print(table(a.results))


if __name__ == "__main__":
    main()
