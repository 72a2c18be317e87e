"""World-step throughput: native batched path, PettingZoo path, one-module-call-per-agent loop,
and (when installed) MAgent2's C++ engine through the same PettingZoo API, measured side by side
in one run.

    python benchmarks/world_step.py --agents 10000 --json

Agent-steps/s counts every living agent once per step, policy inference included (native and
loop). The PettingZoo path and MAgent2 go through one harness (``bench_parallel_envs``): each
agent's action drawn once from ``env.action_space(a).sample()`` and cached (outside the timing),
the same dict comprehension ``{a: cache[a] for a in env.agents}`` passed to ``env.step`` (timed
with it), the same two untimed warm-up steps and the same number of timed steps (``--steps``),
taken in turns of 10 steps so that both see the same load. Neither side's actions are converted
(ours are float32 rows, MAgent2's numpy integers), as a user's policy would hand them over.
``--baseline-env OLD/alife/env.py`` adds a third column: the env module of another commit over
this engine, on the same world and actions (a before/after of the env alone).

The world is the default meadow, sized so that its own carrying capacity is about ``--agents``
(meadow holds about one agent per 35 cells), started with that many agents and run on its own
brains for ``--warmup`` steps first: the initial boom and crash (to twice the population and
back) leaves slots scattered up to the old high-water mark for about one lifetime (600 steps), and
a measurement inside that transient says nothing about the settled world.

Beside MAgent2 (whose battle keeps its 512, 968 or 1,800 agents alive through a short measurement) the
PettingZoo path runs at matched sizes from a fresh world of that many agents (``--pz-warmup``,
default 0: no scattered slots yet), since random actions starve a settled meadow's agents and the
population would drift below the size being compared. It drifts all the same: under random actions
a fresh meadow of 512 agents averages about 350 over 120 steps, while MAgent2's battle holds its
512. ``--match-population`` therefore adds a second comparison at a matched *mean* population:
our initial count is scaled (two untimed calibration runs of the same length and seed) until the
mean number of agents over the timed steps is MAgent2's, and that size runs beside MAgent2 in the
same harness. Both comparisons are printed (by initial count, by mean population).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import time
from typing import Any

import torch
from machine import cpu_model, load_average

import alife

#: agents per cell that the meadow holds on its own (measured: 176 x 176 cells hold ~890 agents)
MEADOW_DENSITY = 0.0287


def world_overrides(agents: int) -> dict:
    side = max(32, round(math.sqrt(agents / MEADOW_DENSITY)))
    return {"world.width": side, "world.height": side, "world.initial_agents": agents,
            "world.capacity": max(4 * agents, 64)}


def bench_native(agents: int, steps: int, seed: int, warmup: int) -> tuple[float, float, alife.Simulation]:
    sim = alife.Simulation(seed=seed, device="cpu", overrides=world_overrides(agents))
    sim.run(warmup)
    total, t0 = 0, time.perf_counter()
    for _ in range(steps):
        total += sim.population
        sim.step()
    dt = time.perf_counter() - t0
    return total / dt, total / steps, sim


def bench_parallel_envs(envs: dict[str, Any], steps: int, seed: int, block: int = 10,
                        warmup_steps: int = 2) -> dict[str, tuple[float, float]]:
    """Agent-steps/s of PettingZoo ``ParallelEnv``s (ours, MAgent2's), all driven alike and
    measured in turns of ``block`` steps, so that each sees the same load.

    Each agent's action is drawn once from ``env.action_space(a).sample()`` when the agent first
    appears and cached (drawing it is the caller's policy, so it is outside the timing: our
    newborns would otherwise be charged for it, MAgent2's battle has none); every step then
    passes ``{a: cache[a] for a in env.agents}`` (the same comprehension, timed with the step).
    ``warmup_steps`` untimed steps first, then ``steps`` timed ones. Returns, per env, agent-steps
    per second and the mean number of agents."""
    caches: dict[str, dict] = {k: {} for k in envs}
    total, elapsed = dict.fromkeys(envs, 0), dict.fromkeys(envs, 0.0)

    def draw_new(env: Any, cache: dict) -> None:
        for a in env.agents:
            if a not in cache:
                cache[a] = env.action_space(a).sample()

    for k, env in envs.items():
        env.action_space(env.agents[0]).seed(seed)
        for _ in range(warmup_steps):
            draw_new(env, caches[k])
            env.step({a: caches[k][a] for a in env.agents})
    done = 0
    while done < steps:
        n = min(block, steps - done)
        for k, env in envs.items():
            cache = caches[k]
            for _ in range(n):
                draw_new(env, cache)
                total[k] += len(env.agents)
                t0 = time.perf_counter()
                env.step({a: cache[a] for a in env.agents})
                elapsed[k] += time.perf_counter() - t0
        done += n
    return {k: (total[k] / elapsed[k], total[k] / steps) for k in envs}


def pettingzoo_env(agents: int, seed: int, warmup: int, env_module: Any = None) -> Any:
    """Our env at ``agents`` (``env_module``: another copy of ``alife/env.py``, for a baseline)."""
    make = alife.make_env if env_module is None else env_module.make_env
    env = make(seed=seed, overrides=world_overrides(agents), device="cpu")
    env.reset(seed=seed, options={"warmup_steps": warmup})
    return env


def magent2_env(map_size: int, seed: int) -> Any:
    try:
        from magent2.environments import battle_v4
    except ImportError:
        return None
    env = battle_v4.parallel_env(map_size=map_size, max_cycles=10**6)
    env.reset(seed=seed)
    return env


def load_env_module(path: str) -> Any:
    """A copy of ``alife/env.py`` from elsewhere (an older commit), over this alife's engine."""
    spec = importlib.util.spec_from_file_location("alife_env_baseline", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def bench_pettingzoo(agents: int, steps: int, seed: int, warmup: int) -> tuple[float, float]:
    env = pettingzoo_env(agents, seed, warmup)
    out = bench_parallel_envs({"alife": env}, steps, seed)["alife"]
    env.close()
    return out


def bench_loop(sim: alife.Simulation, steps: int) -> tuple[float, float]:
    """The same (warmed) world, but the policy runs as one ``nn.Module`` call per agent."""
    lay, h = sim.layout, sim.config.brain.hidden
    net = torch.nn.Sequential(torch.nn.Linear(sim.n_obs, h), torch.nn.Tanh(),
                              torch.nn.Linear(h, sim.n_act), torch.nn.Tanh())
    total, t0 = 0, time.perf_counter()
    with torch.no_grad():
        for _ in range(steps):
            st = sim.world
            obs = sim.sense()
            act = torch.zeros(st.hw, sim.n_act)
            for s in st.alive_slots().tolist():  # the per-agent loop this benchmark measures
                g = st.genomes[s:s + 1]
                net[0].weight.copy_(lay.view(g, "policy.w1")[0])
                net[0].bias.copy_(lay.view(g, "policy.b1")[0])
                net[2].weight.copy_(lay.view(g, "policy.w2")[0])
                net[2].bias.copy_(lay.view(g, "policy.b2")[0])
                act[s] = net(obs[s])
            total += sim.population
            sim.step(act)
    dt = time.perf_counter() - t0
    return total / dt, total / steps


def machine() -> str:
    return (f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), CPU; load average at start {load_average():.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=10000)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--pz-agents", type=int, nargs="*", default=[512, 1000, 1800],
                    help="extra PettingZoo-path sizes, matching MAgent2's (default 512 1000 1800)")
    ap.add_argument("--loop-steps", type=int, default=3)
    ap.add_argument("--magent-map", type=int, nargs="*", default=[80, 112, 150],
                    help="MAgent2 battle_v4 map sizes (80: 512 agents, 112: 968, 150: 1,800)")
    ap.add_argument("--warmup", type=int, default=1000, help="steps the world runs before measuring")
    ap.add_argument("--pz-warmup", type=int, default=0, help="warm-up of the matched-size PettingZoo runs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--pz-only", action="store_true",
                    help="only the matched-size PettingZoo runs and MAgent2 (no 10,000-agent world)")
    ap.add_argument("--baseline-env", default=None, metavar="FILE",
                    help="also drive the env of another alife/env.py (an older commit's) over this "
                         "engine, in turns with ours, at the matched sizes")
    ap.add_argument("--match-population", action="store_true",
                    help="also compare at a matched mean population (our initial count scaled until the "
                         "mean over the timed steps is MAgent2's)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    res: dict = {"machine": machine(), "agents": args.agents}
    if not args.pz_only:
        res["world"] = f"meadow {world_overrides(args.agents)}, warm-up {args.warmup} steps"
        res["native_agent_steps_per_s"], res["native_mean_population"], sim = bench_native(
            args.agents, args.steps, args.seed, args.warmup)
        res["native_slots_per_agent"] = sim.world.hw / max(1, sim.population)
        res["pettingzoo_agent_steps_per_s"], res["pettingzoo_mean_population"] = bench_pettingzoo(
            args.agents, max(10, args.steps // 3), args.seed, args.warmup)
    baseline = load_env_module(args.baseline_env) if args.baseline_env else None
    if baseline is not None:
        res["baseline_env"] = args.baseline_env
    for m, mm in zip(args.pz_agents, args.magent_map + [None] * len(args.pz_agents), strict=False):
        # each size beside its MAgent2 map (and the baseline env), in turns of 10 steps
        envs = {"alife": pettingzoo_env(m, args.seed, args.pz_warmup)}
        if baseline is not None:
            envs["baseline"] = pettingzoo_env(m, args.seed, args.pz_warmup, baseline)
        mag = magent2_env(mm, args.seed) if mm is not None else None
        if mag is not None:
            envs["magent2"] = mag
        out = bench_parallel_envs(envs, args.steps, args.seed)
        for env in envs.values():
            env.close()
        res[f"pettingzoo_{m}_agent_steps_per_s"], res[f"pettingzoo_{m}_mean_population"] = out["alife"]
        if "baseline" in out:
            res[f"baseline_pettingzoo_{m}_agent_steps_per_s"] = out["baseline"][0]
            res[f"pettingzoo_{m}_over_baseline"] = out["alife"][0] / out["baseline"][0]
        if "magent2" in out:
            k = f"magent2_battle_v4_map{mm}"
            res[f"{k}_agent_steps_per_s"], res[f"{k}_mean_population"] = out["magent2"]
            res[f"pettingzoo_{m}_over_magent2_map{mm}"] = out["alife"][0] / out["magent2"][0]
            if "baseline" in out:
                res[f"baseline_pettingzoo_{m}_over_magent2_map{mm}"] = out["baseline"][0] / out["magent2"][0]
        if args.match_population and "magent2" in out:
            target, m2 = out["magent2"][1], m
            for _ in range(2):  # calibrate: the mean population of a fresh world of m2 over the same steps
                env = pettingzoo_env(m2, args.seed, args.pz_warmup)
                got = bench_parallel_envs({"alife": env}, args.steps, args.seed)["alife"][1]
                env.close()
                m2 = max(8, round(m2 * target / got))
            envs = {"alife": pettingzoo_env(m2, args.seed, args.pz_warmup), "magent2": magent2_env(mm, args.seed)}
            out2 = bench_parallel_envs(envs, args.steps, args.seed)
            for env in envs.values():
                env.close()
            k = f"matched_map{mm}"
            res[f"{k}_alife_initial_agents"] = m2
            res[f"{k}_alife_mean_population"] = out2["alife"][1]
            res[f"{k}_magent2_mean_population"] = out2["magent2"][1]
            res[f"{k}_alife_agent_steps_per_s"] = out2["alife"][0]
            res[f"{k}_magent2_agent_steps_per_s"] = out2["magent2"][0]
            res[f"{k}_alife_over_magent2"] = out2["alife"][0] / out2["magent2"][0]
    for mm in args.magent_map[len(args.pz_agents):]:
        env = magent2_env(mm, args.seed)
        if env is not None:
            k = f"magent2_battle_v4_map{mm}"
            res[f"{k}_agent_steps_per_s"], res[f"{k}_mean_population"] = bench_parallel_envs(
                {"magent2": env}, args.steps, args.seed)["magent2"]
            env.close()
    if not args.pz_only:
        res["loop_agent_steps_per_s"], res["loop_mean_population"] = bench_loop(sim, args.loop_steps)
        res["native_over_loop"] = res["native_agent_steps_per_s"] / res["loop_agent_steps_per_s"]
    res = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in res.items()}
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        for k, v in res.items():
            print(f"{k:48s} {v:,}" if isinstance(v, (int, float)) else f"{k:48s} {v}")


if __name__ == "__main__":
    main()
