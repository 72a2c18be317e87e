"""What NES costs in the world: a reproduction phase's NES work for 1,000 births, and the world's
throughput at 10,000 agents with NES against the built-in strategies, side by side in one run.

    python benchmarks/nes_throughput.py

1. **1,000 births through NES**, on the settled meadow at ``--agents``: the NES strategy's own
   work for one phase of 1,000 children (``alife_mutate``: mirrored noise, sampling from each
   child's species distribution; ``alife_agents_born``: the children's noise into their slots),
   and for 1,000 completed lives (``alife_fitness``: the tell, and the grouped update of every
   species whose window filled), median over ``--repeats``; then a cProfile of those calls.
2. **World throughput**: agent-steps/s of the meadow at ``--agents`` with the built-in strategies
   (fused on the CPU) and with ``worlds/nes.toml``'s NES, in subprocesses, alternating, ``--rounds``
   times; the ratio NES / built-ins per round.

One torch thread (as ``alife run`` on the CPU).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from machine import cpu_model, load_average

ROOT = Path(__file__).resolve().parents[1]


def overrides(agents: int) -> dict:
    side = max(32, round(math.sqrt(agents / 0.0287)))
    return {"world.width": side, "world.height": side, "world.initial_agents": agents,
            "world.capacity": max(4 * agents, 64)}


_WORLD = r"""
import json, sys, time, math, torch
torch.set_num_threads(1)
import alife
which, agents, steps, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
side = max(32, round(math.sqrt(agents / 0.0287)))
over = {"world.width": side, "world.height": side, "world.initial_agents": agents, "world.capacity": max(4 * agents, 64)}
world = None if which == "builtin" else sys.argv[5]
sim = alife.Simulation(world, seed=0, device="cpu", overrides=over)
sim.run(warmup)
total, t0 = 0, time.perf_counter()
for _ in range(steps):
    total += sim.population
    sim.step()
print(json.dumps({"rate": total / (time.perf_counter() - t0), "pop": total / steps}))
"""


def births_cost(agents: int, warmup: int, repeats: int) -> dict:
    import alife
    from alife.events import Births, Fitness

    torch.set_num_threads(1)
    sim = alife.Simulation(ROOT / "worlds" / "nes.toml", seed=0, device="cpu", overrides=overrides(agents))
    sim.run(warmup)
    nes = sim.hooks.get_plugin("nes")
    st = sim.world
    live = st.alive_slots()
    k = 1000
    g = torch.Generator().manual_seed(1)
    parents = live[torch.randint(live.numel(), (k,), generator=g)]
    slots = live[:k]  # stand-in slots for the children's noise (the phase writes them once each)

    def phase() -> None:
        child = nes.alife_mutate(sim, st.genomes[parents].clone(), parents)
        assert child.shape == (k, sim.layout.size)
        births = Births(0, np.arange(k), slots.numpy(), np.full((k, 2), -1), st.species[slots].numpy(),
                        "crossover-mutate", parent_slots=np.stack([parents.numpy(), np.full(k, -1)], 1))
        nes.alife_agents_born(sim, births)

    def tell() -> None:
        sim.arrays["nes.told"][slots] = False
        sim.arrays["nes.born"][slots] = True
        nes.alife_fitness(sim, Fitness(0, st.ids[slots].numpy(), slots.numpy(),
                                       st.lifetime_energy[slots].double().numpy(), st.children[slots].numpy(), "world"))

    out = {}
    for name, fn in (("mutate_and_birth_ms", phase), ("tell_ms", tell)):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(1000 * (time.perf_counter() - t0))
        out[name] = statistics.median(times)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(5):
        phase()
        tell()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(12)
    out["profile"] = buf.getvalue()
    out["species"] = sim.arrays.n_species
    out["genome_size"] = sim.layout.size
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=10000)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    res: dict = {"machine": f"{cpu_model()}, {os.cpu_count()} cores, 1 torch thread, CPU; "
                            f"load average at start {load_average():.1f}"}
    print(res["machine"])
    b = births_cost(args.agents, args.warmup, args.repeats)
    print(f"1,000 births through NES (genome size {b['genome_size']}, {b['species']} species): "
          f"mutate + births {b['mutate_and_birth_ms']:.2f} ms; 1,000 tells {b['tell_ms']:.2f} ms (medians)")
    print(b.pop("profile"))
    res["births"] = b
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rates: dict[str, list[float]] = {"builtin": [], "nes": []}
    for _ in range(args.rounds):
        for which in rates:
            out = subprocess.run([sys.executable, "-c", _WORLD, which, str(args.agents), str(args.steps),
                                  str(args.warmup), str(ROOT / "worlds" / "nes.toml")],
                                 env=env, capture_output=True, text=True, cwd=str(ROOT), timeout=3600)
            if out.returncode:
                raise RuntimeError(out.stderr[-2000:])
            rates[which].append(json.loads(out.stdout.strip().splitlines()[-1])["rate"])
    ratios = [n / b_ for n, b_ in zip(rates["nes"], rates["builtin"], strict=True)]
    res["world"] = {k: statistics.median(v) for k, v in rates.items()}
    res["world"]["ratio_median"] = statistics.median(ratios)
    res["world"]["ratio_range"] = [min(ratios), max(ratios)]
    print(f"world at {args.agents} agents: built-ins {res['world']['builtin']:,.0f}, NES {res['world']['nes']:,.0f} "
          f"agent-steps/s; NES / built-ins {res['world']['ratio_median']:.2f} "
          f"(range {min(ratios):.2f}-{max(ratios):.2f}, {args.rounds} rounds)")
    print(f"load average at the end {load_average():.1f}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
