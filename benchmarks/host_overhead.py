"""What the strategy host costs: the world step before and after it, and a plugin strategy's
general path beside the fused built-ins.

    python benchmarks/host_overhead.py --before /tmp/before   # a checkout of the older commit

1. **Before/after, side by side.** The same measurements (native step at ``--agents`` settled
   agents; the PettingZoo path at 512, 1,000 and 1,800 agents with cached random actions; and,
   when installed, MAgent2's battle at matched sizes through the same PettingZoo loop) run in
   subprocesses alternating between the two source trees (``PYTHONPATH``), ``--rounds`` times each,
   so that machine noise falls on both alike. Printed: each side's median and the ratio
   after / before per round (median and range).
2. **Fused vs general path** (this tree only). Milliseconds per step of the default meadow at 500
   and 10,000 agents with (a) the built-in strategies fused on the CPU, (b) the same built-ins
   called through their hooks (the general path every plugin strategy takes), and (c) the 1/5
   success rule example (docs/examples/one_fifth.py), a plugin strategy with state, arrays,
   a genome tensor and the fitness event; interleaved, ``--rounds`` times.

One torch thread in every measurement (as ``alife run`` uses on the CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import cpu_model, load_average

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# one measurement, run in a subprocess against a given source tree
_PROBE = r"""
import json, math, sys, time
import numpy as np, torch
torch.set_num_threads(1)
import alife
kind, agents, steps, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
side = max(32, round(math.sqrt(agents / 0.0287)))
over = {"world.width": side, "world.height": side, "world.initial_agents": agents,
        "world.capacity": max(4 * agents, 64)}
if kind == "native":
    sim = alife.Simulation(seed=0, device="cpu", overrides=over)
    sim.run(warmup)
    total, t0 = 0, time.perf_counter()
    for _ in range(steps):
        total += sim.population
        sim.step()
    print(json.dumps({"rate": total / (time.perf_counter() - t0), "pop": total / steps, "alife": alife.__file__}))
elif kind == "pettingzoo":
    env = alife.make_env(seed=0, overrides=over, device="cpu")
    env.reset(seed=0)
    cache = [row for row in np.random.default_rng(0).uniform(-1, 1, (4096, 5)).astype(np.float32)]
    for _ in range(2):
        env.step({a: cache[i % 4096] for i, a in enumerate(env.agents)})
    total, t0 = 0, time.perf_counter()
    for _ in range(steps):
        total += len(env.agents)
        env.step({a: cache[i % 4096] for i, a in enumerate(env.agents)})
    print(json.dumps({"rate": total / (time.perf_counter() - t0), "pop": total / steps, "alife": alife.__file__}))
"""

# MAgent2's battle through the same PettingZoo loop: per-agent actions cached as Python ints from
# action_space(a).sample(), one dict comprehension per step, as the alife side caches its rows
_MAGENT = r"""
import json, sys, time
from magent2.environments import battle_v4
size, steps = int(sys.argv[1]), int(sys.argv[2])
env = battle_v4.parallel_env(map_size=size, max_cycles=10**6)
env.reset(seed=0)
for a in env.agents:
    env.action_space(a).seed(0)
cache = {a: int(env.action_space(a).sample()) for a in env.agents}
for _ in range(2):
    env.step({a: cache[a] for a in env.agents})
total, t0 = 0, time.perf_counter()
for _ in range(steps):
    total += len(env.agents)
    env.step({a: cache[a] for a in env.agents})
print(json.dumps({"rate": total / (time.perf_counter() - t0), "pop": total / steps}))
"""

_PATHS = r"""
import json, math, sys, time
import torch
torch.set_num_threads(1)
import alife
agents, steps, which = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
side = max(32, round(math.sqrt(agents / 0.0287)))
over = {"world.width": side, "world.height": side, "world.initial_agents": agents,
        "world.capacity": max(4 * agents, 64)}
world = None
if which == "one-fifth":
    world = {"plugins": [sys.argv[4]], "strategies": {"mutation": "one-fifth"}}
sim = alife.Simulation(world, seed=0, device="cpu", overrides=over)
if which != "fused":
    sim._fuse = False
sim.run(200)
t0 = time.perf_counter()
n = 0
for _ in range(steps):
    n += sim.population
    sim.step()
dt = time.perf_counter() - t0
print(json.dumps({"ms_per_step": 1000 * dt / steps, "pop": n / steps, "fused": sim._builtin_reproduction() and sim._fuse}))
"""


def _run(code: str, args: list[str], tree: Path | None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                         cwd=str(tree or ROOT), timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if tree is not None and "alife" in res and not res["alife"].startswith(str(tree.resolve())):
        raise RuntimeError(f"the measurement meant for {tree} imported {res['alife']}")
    return res


def _summary(before: list[float], after: list[float]) -> dict:
    ratios = [a / b for a, b in zip(after, before, strict=True)]
    return {"before_median": statistics.median(before), "after_median": statistics.median(after),
            "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="a checkout of the older source tree")
    ap.add_argument("--agents", type=int, default=10000)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=600)
    ap.add_argument("--pz-agents", type=int, nargs="*", default=[512, 1000, 1800])
    ap.add_argument("--pz-steps", type=int, default=100)
    ap.add_argument("--magent-map", type=int, nargs="*", default=[80, 112, 150],
                    help="battle_v4 map sizes giving about 512, 968 and 1,800 agents")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--path-agents", type=int, nargs="*", default=[500, 10000])
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    after_tree = ROOT
    res: dict = {"machine": f"{cpu_model()}, {os.cpu_count()} cores, 1 torch thread, CPU; "
                            f"load average at start {load_average():.1f}",
                 "before": str(args.before), "after": str(after_tree)}
    print(res["machine"])
    try:
        import magent2  # noqa: F401
        have_magent = True
    except ImportError:
        have_magent = False

    cases = [("native", args.agents, args.steps, args.warmup)] + [
        ("pettingzoo", n, args.pz_steps, 0) for n in args.pz_agents]
    for kind, n, steps, warm in cases:
        b, a = [], []
        for _ in range(args.rounds):
            b.append(_run(_PROBE, [kind, str(n), str(steps), str(warm)], args.before)["rate"])
            a.append(_run(_PROBE, [kind, str(n), str(steps), str(warm)], after_tree)["rate"])
        s = _summary(b, a)
        res[f"{kind}_{n}"] = s
        print(f"{kind:10s} {n:6d} agents: before {s['before_median']:>11,.0f}  after {s['after_median']:>11,.0f} "
              f"agent-steps/s   after/before {s['ratio_median']:.3f} (range {s['ratio_min']:.3f}-{s['ratio_max']:.3f})")
    if have_magent:
        for size, n in zip(args.magent_map, args.pz_agents, strict=False):
            m = [_run(_MAGENT, [str(size), str(args.pz_steps)], None) for _ in range(args.rounds)]
            rate = statistics.median(r["rate"] for r in m)
            res[f"magent2_map{size}"] = {"rate_median": rate, "agents": m[0]["pop"]}
            ours = res[f"pettingzoo_{n}"]["after_median"]
            print(f"MAgent2 battle map {size} ({m[0]['pop']:.0f} agents): {rate:,.0f} agent-steps/s; "
                  f"alife PettingZoo at {n} / MAgent2 = {ours / rate:.2f}")
    else:
        print("MAgent2 not installed (pip install 'alife[bench]'): its column is left out")

    one_fifth = str(ROOT / "docs" / "examples" / "one_fifth.py")
    for n in args.path_agents:
        rows: dict[str, list[float]] = {"fused": [], "hooks": [], "one-fifth": []}
        steps = 200 if n <= 1000 else 40
        for _ in range(args.rounds):
            for which in rows:
                rows[which].append(_run(_PATHS, [str(n), str(steps), which, one_fifth], after_tree)["ms_per_step"])
        med = {k: statistics.median(v) for k, v in rows.items()}
        res[f"paths_{n}"] = med
        print(f"{n:6d} agents, ms/step: fused built-ins {med['fused']:.3f}; built-ins through their hooks "
              f"{med['hooks']:.3f} ({med['hooks'] / med['fused']:.2f}x); one-fifth plugin {med['one-fifth']:.3f} "
              f"({med['one-fifth'] / med['fused']:.2f}x)")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    print(f"load average at the end {load_average():.1f}; {time.strftime('%Y-%m-%d %H:%M')}")


if __name__ == "__main__":
    main()
