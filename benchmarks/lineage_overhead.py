"""What recording lineage costs: agent-steps/s with and without the lineage writer, side by side.

    python benchmarks/lineage_overhead.py                    # 10,000 agents, 100 steps
    python benchmarks/lineage_overhead.py --agents 2000 --steps 50

Two copies of the same world are built from the same seed, one without and one with
:class:`alife.recording.lineage.LineageRecorder` at `alife run`'s default settings (commit every
100 steps, observables every 10, genomes of the living every 10,000 steps and at the end). The
writer does not touch the simulation's random generator, so both copies live the same history and
do the same work; they are stepped in lockstep, alternating which goes first, and each step is
timed on its own in process CPU time (all threads), so other processes competing for the CPUs
(a shared machine) inflate neither side. The writer's time includes
its final commit and snapshot at close. The world is sized and fed so the population stays near
``--agents`` over the run (plentiful grass, full initial energy, light predation, capacity 1.2x).
The overhead is ``1 - rate_with / rate_without``. The file size per million births splits the
event tables (births, deaths, species) from the genome vectors, which depend on the cadence.
The target is an overhead of at most 10%.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import h5py
import torch

import alife
from alife.recording.lineage import LineageRecorder


def world(agents: int) -> dict[str, object]:
    side = int((agents / 0.06) ** 0.5)
    return {"world.width": side, "world.height": side, "world.initial_agents": agents,
            "world.capacity": int(1.2 * agents), "resource.initial": 1.0,
            "agent.initial_energy": 6.0, "agent.attack_damage": 0.2}


def lockstep(agents: int, steps: int, seed: int, path: Path) -> dict[str, float]:
    """Step a plain and a recording copy of one world alternately; per-side time and counts."""
    plain = alife.Simulation(overrides=world(agents), seed=seed, device="cpu")
    rec = alife.Simulation(overrides=world(agents), seed=seed, device="cpu", plugins=[LineageRecorder(path)])
    wall = {"without": 0.0, "with": 0.0}
    agent_steps, pops = 0, []
    for i in range(steps):
        agent_steps += plain.population
        pops.append(plain.population)
        for side, sim in ((("without", plain), ("with", rec)) if i % 2 == 0 else (("with", rec), ("without", plain))):
            t0 = time.process_time()
            sim.step()
            wall[side] += time.process_time() - t0
    if plain.totals != rec.totals:
        raise RuntimeError("the two copies diverged; the writer must not change the run")
    t0 = time.process_time()
    rec.close()
    close = time.process_time() - t0
    plain.close()
    return {"agent_steps": agent_steps, **wall, "close": close, "births": rec.totals["births"],
            "pop_min": min(pops), "pop_max": max(pops)}


def storage(path: Path) -> dict[str, int]:
    out = {"events": 0, "genomes": 0, "other": 0}
    with h5py.File(path, "r") as f:
        def visit(name: str, obj: object) -> None:
            if isinstance(obj, h5py.Dataset):
                key = ("events" if name.split("/")[0] in ("births", "deaths", "species", "extinctions")
                       else "genomes" if name.startswith("genomes") else "other")
                out[key] += obj.id.get_storage_size()
        f.visititems(visit)
    out["file"] = path.stat().st_size
    return out


def machine() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (f"{platform.node()} {platform.machine()} {platform.processor() or ''} "
            f"{os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}").replace("  ", " ")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    print(f"world: {world(args.agents)}, {args.steps} steps, CPU")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lineage.h5"
        r = lockstep(args.agents, args.steps, args.seed, path)
        size = storage(path)
    n = r["births"] + args.agents
    print(f"population {r['pop_min']:,}..{r['pop_max']:,} over the run; {r['agent_steps']:,} agent-steps; "
          f"{r['births']:,} births")
    rate = {k: r["agent_steps"] / r[k] for k in ("without", "with")}
    print(f"without writer: {rate['without']:>10,.0f} agent-steps/CPU-s ({r['without']:.1f} CPU-s)")
    print(f"with writer:    {rate['with']:>10,.0f} agent-steps/CPU-s ({r['with']:.1f} CPU-s)")
    print(f"overhead: {100 * (1 - rate['with'] / rate['without']):.1f}% per step (target <= 10%); the writer's "
          f"close (last commit, genome snapshot of the living) took {r['close']:.2f} CPU-s more, "
          f"{100 * r['close'] / r['without']:.1f}% of this run")
    mib = 1e6 / n / 2**20
    print(f"file size per million births (roots included, {n:,} here): event tables {size['events'] * mib:.1f} MiB, "
          f"genome snapshots {size['genomes'] * mib:.1f} MiB (two snapshots in so short a run), "
          f"whole file {size['file'] * mib:.1f} MiB")


if __name__ == "__main__":
    main()
