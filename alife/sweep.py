"""Experiments over seeds: worlds x seeds x overrides, each an ``alife run`` into its own run folder
under one sweep folder, in local processes or on Ray, gathered into one table of means with 95%
intervals.

Layout of a sweep folder::

    SWEEP/sweep.json          the plan (runs, steps, arguments); a resumed sweep must match it
    SWEEP/runs/<name>/        one run folder per (world, overrides, seed): alife run's own
    SWEEP/runs.csv            one row per finished run: its labels and gathered fields
    SWEEP/table.csv|.md|.png  per (world, overrides): mean, 95% t-interval and n of each field

A run is **finished** when its folder holds ``summary.json`` and no ``failed.json``; a resumed
sweep skips finished runs and deletes the folder of any other before running it again (a run is
seeded, so it gives the same result). Each run is a separate ``python -m alife run`` process
(``--jobs N`` of them at a time); with Ray each is a Ray task that starts that same process on a
worker, so the cluster's workers must see the sweep folder (a local cluster does; a remote one
needs a shared filesystem). The table depends only on the runs' ``summary.json`` (timings are
left out), so a sweep gives the same table locally and on Ray.

With ``assay`` each finished run is also assayed (``alife assay RUN``: evolved vs ancestral) into
``RUN/assay/``, and the evolved pool's relative fitness and energy gain rate join the fields.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from alife.assay import mean_interval
from alife.errors import UserError

#: summary.json fields gathered by default (dotted paths into the JSON); any other can be asked for
DEFAULT_FIELDS = ("population.final", "population.min", "population.max", "species.final", "species.ever",
                  "births", "deaths", "deaths_by_cause.starved", "deaths_by_cause.eaten",
                  "deaths_by_cause.old_age", "extinct", "mating.pairs_proposed", "mating.pairs_refused",
                  "mating.two_parent_share")
ASSAY_FIELDS = ("assay.relative_fitness", "assay.gain_rate", "assay.final_share")
#: fields that measure the machine, not the world: never in the table
TIMING = ("wall_time_s", "steps_per_s")


@dataclass
class RunSpec:
    """One run of a sweep."""

    name: str
    world: str
    seed: int
    steps: int
    overrides: list[str] = field(default_factory=list)
    group: str = ""
    args: list[str] = field(default_factory=list)


def _tag(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", text).strip("_")[:60]


def plan(worlds: Sequence[str], seeds: Sequence[int], steps: int, overrides: Sequence[str] = (),
         vary: Sequence[str] = (), args: Sequence[str] = ()) -> list[RunSpec]:
    """Every (world, combination of ``vary`` values, seed). ``overrides`` (``KEY=VALUE``) apply to
    all runs; each ``vary`` item is ``KEY=V1,V2,...``, one axis of the grid; ``args`` are passed
    to every ``alife run`` (``-p NAME``, ``--plugins-dir DIR``, ...)."""
    axes: list[list[str]] = []
    for v in vary:
        key, eq, values = v.partition("=")
        if not eq or not key or not values:
            raise UserError(f"--vary {v!r}: expected KEY=V1,V2,...")
        axes.append([f"{key}={x}" for x in values.split(",")])
    stems = [Path(w).stem if w.endswith(".toml") else w for w in worlds]
    out = []
    for i, (world, stem) in enumerate(zip(worlds, stems, strict=True)):
        if stems.count(stem) > 1:
            stem = f"{stem}{i}"
        for combo in itertools.product(*axes) if axes else [()]:
            group = stem + "".join(f"[{c}]" for c in combo)
            tag = _tag(stem + "".join(f"-{c}" for c in combo))
            for s in seeds:
                out.append(RunSpec(f"{tag}-s{s}", world, int(s), int(steps), [*overrides, *combo], group, list(args)))
    names = [r.name for r in out]
    if len(set(names)) != len(names):
        raise UserError("two runs of the sweep would share a folder name; give worlds with different names")
    return out


def finished(run_dir: Path) -> bool:
    return (run_dir / "summary.json").is_file() and not (run_dir / "failed.json").exists()


def command(spec: RunSpec, run_dir: Path) -> list[str]:
    cmd = [sys.executable, "-m", "alife", "run", spec.world, "--seed", str(spec.seed), "--steps", str(spec.steps),
           "--out", str(run_dir), "--no-progress"]
    for o in spec.overrides:
        cmd += ["--set", o]
    return cmd + list(spec.args)


def assay_command(run_dir: Path, assay_args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "alife", "assay", str(run_dir), "--quiet", "-o", str(run_dir / "assay"),
            *assay_args]


#: the ``alife run``/``alife assay`` processes this process started and has not yet seen end
_CHILDREN: set[subprocess.Popen] = set()
_LOCK = threading.Lock()
#: set when a local sweep is interrupted: no new process starts
_STOP = threading.Event()


def _call(cmd: list[str]) -> subprocess.CompletedProcess:
    """Run ``cmd`` to its end, registered in ``_CHILDREN`` so an interrupted sweep can stop it."""
    with _LOCK:
        if _STOP.is_set():
            return subprocess.CompletedProcess(cmd, 130, "", "the sweep was interrupted")
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        _CHILDREN.add(p)
    try:
        out, err = p.communicate()
    finally:
        with _LOCK:
            _CHILDREN.discard(p)
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def stop_children(timeout: float = 60.0) -> None:
    """No new run starts; the running ones get SIGTERM (``alife run`` stops after its step, saves a
    checkpoint and exits 143, leaving an unfinished folder that a resume runs again) and are
    waited for, so nothing writes into the sweep folder once this returns."""
    with _LOCK:
        _STOP.set()
        running = list(_CHILDREN)
    for p in running:
        if p.poll() is None:
            p.terminate()
    for p in running:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def execute(spec: dict[str, Any], sweep_dir: str, assay_args: list[str] | None = None) -> dict[str, Any]:
    """Run one spec (a :class:`RunSpec` as a dict) into ``sweep_dir/runs/<name>`` unless it is
    finished; then its assay when asked and not yet done. Returns ``{"name", "ran", "ok",
    "seconds", "error"}``. This is what a worker process or a Ray task calls."""
    s = RunSpec(**spec)
    run_dir = Path(sweep_dir) / "runs" / s.name
    t0 = time.perf_counter()
    ran = False
    if not finished(run_dir):
        if run_dir.exists():
            shutil.rmtree(run_dir)
        ran = True
        p = _call(command(s, run_dir))
        (Path(sweep_dir) / "logs").mkdir(exist_ok=True)
        (Path(sweep_dir) / "logs" / f"{s.name}.log").write_text(p.stdout + p.stderr)
        if p.returncode != 0 or not finished(run_dir):
            return {"name": s.name, "ran": ran, "ok": False, "seconds": time.perf_counter() - t0,
                    "error": (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]}
    if assay_args is not None and not (run_dir / "assay" / "assay.json").is_file():
        p = _call(assay_command(run_dir, assay_args))
        if p.returncode != 0:
            return {"name": s.name, "ran": ran, "ok": False, "seconds": time.perf_counter() - t0,
                    "error": "assay: " + (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]}
    return {"name": s.name, "ran": ran, "ok": True, "seconds": time.perf_counter() - t0, "error": None}


def _env() -> dict[str, str]:
    """The child's environment: this one, with this alife importable (a Ray worker or a sweep run
    from a checkout need it on the path)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# ---------------------------------------------------------------------------------------- running
def write_plan(sweep_dir: Path, runs: list[RunSpec], extra: dict[str, Any]) -> None:
    """``sweep.json``; a sweep folder holding another plan is refused (a resume must match)."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path = sweep_dir / "sweep.json"
    record = {"runs": [asdict(r) for r in runs], **extra}
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: unreadable ({e}); give another --out") from None
        if old.get("runs") != record["runs"]:
            raise UserError(f"{sweep_dir} holds another sweep (its sweep.json plans other runs); "
                            "give another --out, or the same worlds, seeds, steps and overrides to resume it")
        if old.get("assay") and not record.get("assay"):
            record["assay"] = old["assay"]
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(path)


def run_local(runs: list[RunSpec], sweep_dir: Path, jobs: int, assay_args: list[str] | None,
              report: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    """Each run in its own process, ``jobs`` at a time (threads wait on the processes)."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    results = []
    _STOP.clear()
    ex = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futs = [ex.submit(execute, asdict(r), str(sweep_dir), assay_args) for r in runs]
        for f in as_completed(futs):
            r = f.result()
            report(r)
            results.append(r)
    except BaseException:  # Ctrl-C, SIGTERM: queued runs never start, running ones stop
        ex.shutdown(wait=False, cancel_futures=True)
        stop_children()
        raise
    finally:
        ex.shutdown(wait=True)
    return results


def run_ray(runs: list[RunSpec], sweep_dir: Path, address: str | None, assay_args: list[str] | None,
            report: Callable[[dict[str, Any]], None], num_cpus: int = 2) -> list[dict[str, Any]]:
    """Each run a Ray task (one CPU each) on a local cluster (``address`` None: ``ray.init(
    num_cpus=num_cpus)``) or the cluster at ``address``."""
    try:
        import ray
    except ModuleNotFoundError:
        raise UserError("--ray needs Ray: pip install 'alife[distributed]'") from None
    started = not ray.is_initialized()
    if started:
        root = str(Path(__file__).resolve().parent.parent)
        env = {"env_vars": {"PYTHONPATH": root}}
        if address is None:
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="ERROR", runtime_env=env)
        else:
            ray.init(address=address, logging_level="ERROR", runtime_env=env)
    try:
        task = ray.remote(num_cpus=1)(execute)
        pending = {task.remote(asdict(r), str(sweep_dir), assay_args): r.name for r in runs}
        results = []
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                pending.pop(ref)
                r = ray.get(ref)
                report(r)
                results.append(r)
        return results
    finally:
        if started:
            ray.shutdown()


# ---------------------------------------------------------------------------------------- gathering
def _get(d: Any, path: str) -> float | None:
    for part in path.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    if isinstance(d, bool):
        return float(d)
    if isinstance(d, int | float):
        return float(d)
    return None


def _assay_values(run_dir: Path) -> dict[str, float | None]:
    path = run_dir / "assay" / "assay.json"
    out: dict[str, float | None] = dict.fromkeys(ASSAY_FIELDS)
    if not path.is_file():
        return out
    data = json.loads(path.read_text())
    rows = [r for r in data.get("table", []) if not r.get("reference")]
    if rows:
        r = rows[-1]
        for key, name in (("relative_fitness", "assay.relative_fitness"), ("gain_rate", "assay.gain_rate"),
                          ("final_share", "assay.final_share")):
            v = r.get(key, {}).get("mean")
            out[name] = float(v) if isinstance(v, int | float) and math.isfinite(v) else None
    return out


def gather(sweep_dir: Path, fields: Sequence[str] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(runs, table)``: one row per finished run (its group, seed and fields) and one row per
    group with, for each field, its mean, 95% t-interval and n over the seeds."""
    record = json.loads((sweep_dir / "sweep.json").read_text())
    fields = list(fields or DEFAULT_FIELDS)
    if record.get("assay"):
        fields += [f for f in ASSAY_FIELDS if f not in fields]
    bad = [f for f in fields if f.split(".")[0] in TIMING]
    if bad:
        raise UserError(f"fields {bad} measure the machine, not the world; they are left out of sweep tables")
    runs = []
    for spec in record["runs"]:
        d = sweep_dir / "runs" / spec["name"]
        if not finished(d):
            continue
        summary = json.loads((d / "summary.json").read_text())
        row = {"group": spec["group"], "world": spec["world"], "seed": spec["seed"], "name": spec["name"]}
        extra = _assay_values(d) if record.get("assay") else {}
        for f in fields:
            row[f] = extra[f] if f in extra else _get(summary, f)
        runs.append(row)
    table = []
    groups = list(dict.fromkeys(s["group"] for s in record["runs"]))
    for g in groups:
        rows = [r for r in runs if r["group"] == g]
        entry: dict[str, Any] = {"group": g, "runs": len(rows)}
        for f in fields:
            entry[f] = mean_interval(r[f] for r in rows if r[f] is not None)
        table.append(entry)
    return runs, table


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "-"
    return f"{x:.4g}"


def write_tables(sweep_dir: Path, runs: list[dict[str, Any]], table: list[dict[str, Any]],
                 fields: Sequence[str]) -> dict[str, Path]:
    """``runs.csv``, ``table.csv``, ``table.md`` and ``table.png`` in the sweep folder."""
    fields = [f for f in (table[0].keys() if table else []) if f not in ("group", "runs")] or list(fields)
    paths = {"runs": sweep_dir / "runs.csv", "csv": sweep_dir / "table.csv", "md": sweep_dir / "table.md",
             "png": sweep_dir / "table.png"}
    with paths["runs"].open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["group", "seed", "name", *fields])
        for r in sorted(runs, key=lambda r: (r["group"], r["seed"])):
            w.writerow([r["group"], r["seed"], r["name"], *("" if r[f] is None else repr(r[f]) for f in fields)])
    with paths["csv"].open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["group", "runs", *itertools.chain.from_iterable((f"{f}", f"{f}.lo", f"{f}.hi", f"{f}.n")
                                                                    for f in fields)])
        for e in table:
            w.writerow([e["group"], e["runs"], *itertools.chain.from_iterable(
                (_fmt(e[f]["mean"]), _fmt(e[f]["lo"]), _fmt(e[f]["hi"]), e[f]["n"]) for f in fields)])
    lines = ["| field | " + " | ".join(f"{e['group']} (n={e['runs']})" for e in table) + " |",
             "| --- |" + " --- |" * len(table)]
    for f in fields:
        cells = []
        for e in table:
            m = e[f]
            cells.append("-" if not m["n"] else _fmt(m["mean"]) if not math.isfinite(m["lo"])
                         else f"{_fmt(m['mean'])} [{_fmt(m['lo'])}, {_fmt(m['hi'])}]")
        lines.append(f"| {f} | " + " | ".join(cells) + " |")
    paths["md"].write_text("Means over seeds with 95% t-intervals.\n\n" + "\n".join(lines) + "\n")
    _plot(paths["png"], table, fields)
    return paths


def _plot(path: Path, table: list[dict[str, Any]], fields: Sequence[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def informative(f: str) -> bool:  # a field that is 0 in every run draws nothing
        return any(e[f]["n"] and (e[f]["mean"] != 0 or (math.isfinite(e[f]["sd"]) and e[f]["sd"] > 0))
                   for e in table)

    shown = [f for f in fields if informative(f)][:16]
    cols = min(4, max(1, len(shown)))
    rows = max(1, math.ceil(len(shown) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), constrained_layout=True, squeeze=False)
    colours = matplotlib.colormaps["tab10"].colors
    for ax, f in zip(axes.flat, shown, strict=False):
        for i, e in enumerate(table):
            m = e[f]
            if not m["n"]:
                continue
            err = [[m["mean"] - m["lo"]], [m["hi"] - m["mean"]]] if math.isfinite(m["lo"]) else None
            ax.bar([i], [m["mean"]], color=colours[i % 10], alpha=0.8)
            if err is not None:
                ax.errorbar([i], [m["mean"]], yerr=err, color="k", capsize=3)
        ax.set_title(f, fontsize=8)
        ax.set_xticks(range(len(table)), [e["group"] for e in table], rotation=20, fontsize=7, ha="right")
    for ax in list(axes.flat)[len(shown):]:
        ax.axis("off")
    fig.suptitle("sweep: means over seeds, 95% t-intervals (fields 0 in every run left out)", fontsize=9)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def sweep(worlds: Sequence[str], seeds: Sequence[int], steps: int, out: str | Path, *,
          overrides: Sequence[str] = (), vary: Sequence[str] = (), run_args: Sequence[str] = (),
          jobs: int = 1, ray: bool = False, ray_address: str | None = None, ray_cpus: int = 2,
          assay_args: list[str] | None = None, fields: Sequence[str] | None = None,
          report: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Plan, run what is not finished, gather and write the tables. Returns the plan's size, the
    results of the runs made now, the failures and the written paths."""
    sweep_dir = Path(out)
    runs = plan(worlds, seeds, steps, overrides, vary, run_args)
    write_plan(sweep_dir, runs, {"steps": steps, "assay": assay_args})
    record = json.loads((sweep_dir / "sweep.json").read_text())
    assay_args = record.get("assay")
    todo = [r for r in runs if not finished(sweep_dir / "runs" / r.name)
            or (assay_args is not None and not (sweep_dir / "runs" / r.name / "assay" / "assay.json").is_file())]
    rep = report or (lambda r: None)
    if todo:
        if ray:
            results = run_ray(todo, sweep_dir, ray_address, assay_args, rep, ray_cpus)
        else:
            results = run_local(todo, sweep_dir, jobs, assay_args, rep)
    else:
        results = []
    got, table = gather(sweep_dir, fields)
    paths = write_tables(sweep_dir, got, table, fields or DEFAULT_FIELDS)
    failed = [r for r in results if not r["ok"]]
    return {"planned": len(runs), "skipped": len(runs) - len(todo), "results": results, "failed": failed,
            "paths": paths, "table": table}


def seeds_of(n: int, start: int = 0) -> list[int]:
    return list(range(start, start + n))

