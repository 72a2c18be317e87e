"""What recording lineage costs: agent-steps/s with and without the lineage writer, side by side.

    python benchmarks/lineage_overhead.py                    # 10,000 agents, 100 steps, 3 pairs
    python benchmarks/lineage_overhead.py --agents 2000 --steps 50 --pairs 2

Each pair builds the same world twice from the same seed, once without and once with
:class:`alife.recording.lineage.LineageRecorder` at `alife run`'s default settings (commit every
100 steps, observables every 10, genomes of the living every 10,000 steps), and times the step
loop of each; the order inside a pair alternates so drift in machine load does not favour either
side. The overhead is ``1 - rate_with / rate_without`` from the summed agent-steps and times. The
file size per million births splits the event tables (births, deaths, species) from the genome
vectors, which depend on the chosen cadence. The target is an overhead of at most 10%.
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
    side = int((agents / 0.3) ** 0.5)  # about the density the default world settles at
    return {"world.width": side, "world.height": side, "world.initial_agents": agents,
            "world.capacity": max(2 * agents, 1024)}


def timed_run(agents: int, steps: int, seed: int, path: Path | None) -> dict[str, float]:
    plugins = [LineageRecorder(path)] if path is not None else []
    sim = alife.Simulation(overrides=world(agents), seed=seed, device="cpu", plugins=plugins)
    agent_steps = 0
    t0 = time.perf_counter()
    for _ in range(steps):
        agent_steps += sim.population
        sim.step()
    wall = time.perf_counter() - t0
    t1 = time.perf_counter()
    sim.close()
    return {"agent_steps": agent_steps, "wall": wall, "close": time.perf_counter() - t1,
            "births": sim.totals["births"], "final": sim.population}


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
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    print(f"world: {world(args.agents)}, {args.steps} steps, {args.pairs} pairs, CPU")
    totals = {"without": [0.0, 0.0], "with": [0.0, 0.0]}
    sizes: list[tuple[dict[str, int], int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.pairs):
            order = ("without", "with") if i % 2 == 0 else ("with", "without")
            for side in order:
                path = Path(tmp) / f"lineage{i}.h5" if side == "with" else None
                r = timed_run(args.agents, args.steps, args.seed + i, path)
                totals[side][0] += r["agent_steps"]
                totals[side][1] += r["wall"]
                print(f"pair {i} {side:>7}: {r['agent_steps'] / r['wall']:>10,.0f} agent-steps/s "
                      f"({r['agent_steps']:,} agent-steps in {r['wall']:.1f} s; close {r['close']:.2f} s; "
                      f"{r['births']:,} births, {r['final']:,} alive at the end)")
                if path is not None:
                    sizes.append((storage(path), r["births"] + args.agents))
    rate = {k: v[0] / v[1] for k, v in totals.items()}
    print(f"\nagent-steps/s  without writer: {rate['without']:,.0f}   with writer: {rate['with']:,.0f}   "
          f"overhead: {100 * (1 - rate['with'] / rate['without']):.1f}% (target <= 10%)")
    ev = sum(s["events"] for s, _ in sizes)
    ge = sum(s["genomes"] for s, _ in sizes)
    fi = sum(s["file"] for s, _ in sizes)
    n = sum(b for _, b in sizes)
    print(f"file size per million births (roots included, {n:,} in all): event tables {ev / n * 1e6 / 2**20:.1f} MiB, "
          f"genome snapshots {ge / n * 1e6 / 2**20:.1f} MiB, whole file {fi / n * 1e6 / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
