"""Throughput of the coevolution worlds beside the default meadow, measured side by side in one run.

    python benchmarks/coevolution_step.py --agents 10000 --json

Every world gets the same size (the meadow's ``world_step.world_overrides``: a square holding about
``--agents`` at the meadow's density, started with that many agents, capacity 4x), runs on its own
brains for ``--warmup`` steps (the boom and crash of the first lifetime), then the worlds take
turns of ``--block`` steps until each has run ``--steps`` timed steps, so all see the same load.
Agent-steps/s counts every living agent once per step (sensing, policy, physics, the rule's hooks,
reproduction: the whole step). Ratios are against the meadow measured in the same run.

Worlds: ``meadow`` (the default), ``predator-prey`` (``worlds/predator_prey.toml`` at that size),
``predator-prey+senses`` (the same with ``sense_roles = true``: two more grid searches a step and 5
more policy inputs), ``host-parasite`` (``worlds/host_parasite.toml``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from machine import cpu_model, load_average  # noqa: E402
from world_step import world_overrides  # noqa: E402

import alife  # noqa: E402

ROOT = HERE.parent
WORLDS = {
    "meadow": (None, {}),
    "predator-prey": (ROOT / "worlds" / "predator_prey.toml", {}),
    "predator-prey+senses": (ROOT / "worlds" / "predator_prey.toml", {"plugin.predator-prey.sense_roles": True}),
    "host-parasite": (ROOT / "worlds" / "host_parasite.toml", {}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=10000)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--block", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--worlds", nargs="*", default=list(WORLDS), choices=list(WORLDS))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    load0 = load_average()
    sims = {}
    for name in args.worlds:
        path, extra = WORLDS[name]
        ov = {**world_overrides(args.agents), **extra}
        sim = alife.Simulation(path, seed=args.seed, device="cpu", overrides=ov) if path else \
            alife.Simulation(seed=args.seed, device="cpu", overrides=ov)
        t0 = time.perf_counter()
        sim.run(args.warmup)
        print(f"{name}: warm-up {args.warmup} steps in {time.perf_counter() - t0:.0f} s, {sim.population} agents",
              flush=True)
        sims[name] = sim
    agent_steps = dict.fromkeys(sims, 0)
    secs = dict.fromkeys(sims, 0.0)
    done = 0
    while done < args.steps:
        k = min(args.block, args.steps - done)
        for name, sim in sims.items():
            t0 = time.perf_counter()
            for _ in range(k):
                agent_steps[name] += sim.population
                sim.step()
            secs[name] += time.perf_counter() - t0
        done += k
    machine = (f"{cpu_model()}, {__import__('os').cpu_count()} cores, torch {torch.__version__} (1 thread), CPU; "
               f"load average {load0:.1f} at start, {load_average():.1f} at the end")
    side = world_overrides(args.agents)["world.width"]
    print(f"\n{machine}\n{side} x {side} cells, {args.agents} initial agents, {args.warmup} warm-up steps, "
          f"{args.steps} timed steps in turns of {args.block}\n")
    print("| world | mean agents | steps/s | agent-steps/s | vs meadow |")
    print("| --- | --- | --- | --- | --- |")
    rows = []
    base = agent_steps.get("meadow", 0) / secs["meadow"] if "meadow" in secs else None
    for name in sims:
        rate = agent_steps[name] / secs[name]
        row = {"world": name, "mean_agents": agent_steps[name] / args.steps, "steps_per_s": args.steps / secs[name],
               "agent_steps_per_s": rate, "vs_meadow": rate / base if base else None}
        rows.append(row)
        vs = f"{row['vs_meadow']:.2f}" if base else "-"
        print(f"| {name} | {row['mean_agents']:.0f} | {row['steps_per_s']:.1f} | {rate:,.0f} | {vs} |")
    for sim in sims.values():
        sim.close()
    if args.json:
        print(json.dumps({"machine": machine, "agents": args.agents, "side": side, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
