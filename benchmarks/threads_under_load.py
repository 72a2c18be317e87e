"""Native step throughput beside a busy core: torch's default threads against one thread, side by
side in one run.

    python benchmarks/threads_under_load.py                 # 10,000 agents, a busy loop on one core
    python benchmarks/threads_under_load.py --no-load       # the same, without the busy loop

A Python user's process is rarely alone on the machine. This starts a busy-loop process pinned to
the last core (the load), builds the meadow sized for ``--agents`` (as ``world_step.py`` does),
runs it ``--warmup`` steps, then times ``Simulation.step()`` in blocks of ``--block`` steps,
alternating the caller's thread count between 1 (``torch.set_num_threads(1)``) and torch's default,
``--rounds`` times, so that both see the same world and the same load. It prints agent-steps/s
for each and the ratio default / one thread (the target: at least 0.9).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time

import torch
from machine import cpu_model, load_average
from world_step import world_overrides

import alife


def busy(core: int) -> None:
    """The load: one process spinning on one core."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})
    while True:
        pass


def measure(agents: int, warmup: int, block: int, rounds: int, seed: int) -> dict[str, float]:
    default = torch.get_num_threads()
    torch.set_num_threads(1)  # the warm-up on one thread (its speed is not measured)
    sim = alife.Simulation(seed=seed, device="cpu", overrides=world_overrides(agents))
    sim.run(warmup)
    steps = {1: 0, default: 0}
    agent_steps, elapsed = dict.fromkeys(steps, 0), dict.fromkeys(steps, 0.0)
    for _ in range(rounds):
        for threads in (1, default):
            torch.set_num_threads(threads)
            total, t0 = 0, time.perf_counter()
            for _ in range(block):
                total += sim.population
                sim.step()
            elapsed[threads] += time.perf_counter() - t0
            agent_steps[threads] += total
    torch.set_num_threads(default)
    sim.close()
    one, dflt = agent_steps[1] / elapsed[1], agent_steps[default] / elapsed[default]
    return {"default_threads": default, "one_thread_agent_steps_per_s": round(one),
            "default_threads_agent_steps_per_s": round(dflt), "default_over_one": round(dflt / one, 3),
            "mean_population": round(agent_steps[1] / (rounds * block))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=10000)
    ap.add_argument("--warmup", type=int, default=1000, help="steps the world runs before measuring")
    ap.add_argument("--block", type=int, default=20, help="steps per timed block")
    ap.add_argument("--rounds", type=int, default=5, help="blocks per thread count, interleaved")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-load", action="store_true", help="no busy-loop process")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    cores = os.cpu_count() or 1
    res: dict = {"machine": f"{cpu_model()}, {cores} cores, torch {torch.__version__} "
                            f"({torch.get_num_threads()} threads by default), CPU; "
                            f"load average at start {load_average():.1f}",
                 "alife": os.path.dirname(alife.__file__),
                 "load": "none" if args.no_load else f"a busy-loop process pinned to core {cores - 1}",
                 "world": f"meadow {world_overrides(args.agents)}, warm-up {args.warmup} steps"}
    load = None
    if not args.no_load:
        load = mp.get_context("fork").Process(target=busy, args=(cores - 1,), daemon=True)
        load.start()
    try:
        res.update(measure(args.agents, args.warmup, args.block, args.rounds, args.seed))
    finally:
        if load is not None:
            load.terminate()
            load.join()
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        for k, v in res.items():
            print(f"{k:36s} {v:,}" if isinstance(v, (int, float)) else f"{k:36s} {v}")


if __name__ == "__main__":
    main()
