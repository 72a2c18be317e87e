"""A long `alife run` (default 1,000,000 steps at about 1,000 agents): resident memory over the run
and throughput, read from outside the process.

    python benchmarks/long_run.py --steps 1000000 --out /tmp/longrun

It starts `alife run` (lineage recording on, replay off, a checkpoint every ``--checkpoint-every``
steps) in a subprocess, samples the child's resident set size (``VmRSS`` in /proc) every
``--sample`` seconds, and times the checkpoints as they appear. It prints one JSON line per sample
and, at the end, a JSON summary with RSS at start and end, steps/s per checkpoint interval, the
run's own summary figures and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from machine import cpu_model, load_average


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def machine() -> str:
    return f"{cpu_model()}, {os.cpu_count()} cores, load average at start {load_average():.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--side", type=int, default=176, help="world width = height (176 holds ~900 agents)")
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint-every", type=int, default=50_000)
    ap.add_argument("--sample", type=float, default=30.0, help="seconds between RSS samples")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    cmd = [sys.executable, "-m", "alife", "run", "--steps", str(args.steps), "--seed", str(args.seed),
           "--out", str(args.out), "--no-record", "replay", "--no-progress",
           "--checkpoint-every", str(args.checkpoint_every), "--keep-checkpoints", "0",
           "--set", f"world.width={args.side}", "--set", f"world.height={args.side}",
           "--set", f"world.initial_agents={args.agents}"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    info = {"machine": machine(), "command": " ".join(cmd[1:])}
    t0 = time.time()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    samples, seen = [], {}
    ckdir = args.out / "checkpoints"
    while proc.poll() is None:
        try:  # sample after each wait, so the first sample is taken once the run is under way
            proc.wait(timeout=args.sample)
        except subprocess.TimeoutExpired:
            pass
        r = rss_mb(proc.pid)
        if r is not None:
            samples.append((round(time.time() - t0, 1), round(r, 1)))
            print(json.dumps({"t": samples[-1][0], "rss_mb": samples[-1][1]}), flush=True)
        if ckdir.exists():
            for p in sorted(ckdir.iterdir()):
                if p.name not in seen:
                    seen[p.name] = p.stat().st_mtime - t0
    out = proc.stdout.read() if proc.stdout else ""
    wall = time.time() - t0
    summary = {}
    sp = args.out / "summary.json"
    if sp.exists():
        summary = json.loads(sp.read_text())
    if ckdir.exists():
        for p in sorted(ckdir.iterdir()):
            seen.setdefault(p.name, p.stat().st_mtime - t0)
    marks = sorted(seen.values())
    rates = [round(args.checkpoint_every / (b - a), 1) for a, b in zip(marks, marks[1:], strict=False) if b > a]
    res = {**info, "returncode": proc.returncode, "wall_s": round(wall, 1),
           "steps": summary.get("steps"), "steps_per_s": round((summary.get("steps") or 0) / wall, 1),
           "rss_mb_first_sample": samples[0][1] if samples else None,
           "rss_mb_last_sample": samples[-1][1] if samples else None,
           "rss_mb_max": max((s[1] for s in samples), default=None),
           "steps_per_s_per_checkpoint_interval": rates,
           "population": summary.get("population"), "births": summary.get("births"),
           "lineage_mb": round((args.out / "lineage.h5").stat().st_size / 2**20, 1)
           if (args.out / "lineage.h5").exists() else None,
           "tail": out[-600:]}
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
