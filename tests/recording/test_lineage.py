"""The lineage writer: records match the simulation, commits bound what a reader sees, the resume
rollback, and a real `alife run` killed with SIGKILL leaves a readable file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

import alife
from alife.errors import UserError
from alife.lineage import schema
from alife.plugins.manager import PluginError
from alife.recording.lineage import LineageRecorder, parse_genome_cadence

SMALL = {"world.width": 32, "world.height": 32, "world.initial_agents": 120, "world.capacity": 1024}


def test_a_reader_sees_only_committed_steps_while_the_writer_runs(tmp_path):
    path = tmp_path / "lineage.h5"
    births_after: dict[int, int] = {}
    with alife.Simulation(overrides=SMALL, seed=5, plugins=[LineageRecorder(path, commit_every=10)]) as sim:
        for _ in range(25):
            sim.step()
            births_after[sim.step_count - 1] = sim.totals["births"]
        lin = alife.lineage.open(path)  # SWMR read of a file still open for writing
        assert lin.last_step == 19
        assert len(lin.ids) == 120 + births_after[19]
        assert lin.birth_step.max() <= 19
    lin = alife.lineage.open(path)
    assert lin.last_step == 24 and len(lin.ids) == 120 + births_after[24]


def test_recording_does_not_change_the_run(tmp_path):
    with alife.Simulation(overrides=SMALL, seed=6) as a:
        a.run(30)
        plain = (dict(a.totals), a.world.ids[a.world.alive].tolist())
    with alife.Simulation(overrides=SMALL, seed=6, plugins=[LineageRecorder(tmp_path / "l.h5")]) as b:
        b.run(30)
        recorded = (dict(b.totals), b.world.ids[b.world.alive].tolist())
    assert plain == recorded


def test_an_existing_file_is_not_overwritten(tmp_path):
    path = tmp_path / "lineage.h5"
    path.write_bytes(b"precious")
    with pytest.raises((UserError, PluginError), match="already exists"):
        alife.Simulation(overrides=SMALL, seed=1, plugins=[LineageRecorder(path)])
    assert path.read_bytes() == b"precious"


def _read_all(path: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out


def test_compaction_keeps_every_record_and_the_file_tight(tmp_path, monkeypatch):
    """Commits rewrite partly filled chunks; SWMR never reuses the abandoned space, so the writer
    compacts. A compacted file holds exactly what an uncompacted one does, and ends near its
    live data size."""
    import alife.recording.lineage as writer

    def run(path, min_bytes):
        monkeypatch.setattr(writer, "COMPACT_MIN_BYTES", min_bytes)
        rec = LineageRecorder(path, commit_every=1, genomes="births")
        with alife.Simulation(overrides=SMALL, seed=9, plugins=[rec]) as sim:
            sim.run(150)
        return rec

    loose = run(tmp_path / "loose.h5", 1 << 40)
    tight = run(tmp_path / "tight.h5", 64 << 10)
    assert loose.compactions == 1 and tight.compactions > 2  # the final one, and during the run
    a, b = _read_all(tmp_path / "loose.h5"), _read_all(tmp_path / "tight.h5")
    assert a.keys() == b.keys()
    for k in a:
        if k != "commits":  # the compacted run took the same commits; compare their steps
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    np.testing.assert_array_equal(a["commits"][:, 0], b["commits"][:, 0])
    live = 0
    with h5py.File(tmp_path / "tight.h5", "r") as f:
        for k in a:
            live += f[k].id.get_storage_size()
    assert (tmp_path / "tight.h5").stat().st_size < 1.25 * live + (256 << 10)
    assert not (tmp_path / "tight.h5.tmp").exists()
    assert len(alife.lineage.open(tmp_path / "tight.h5").ids) == len(a["births/id"])


KILL_BEFORE_SWMR = """
import os, sys, h5py
import alife
import alife.recording.lineage as writer
from alife.recording.lineage import LineageRecorder
writer.COMPACT_MIN_BYTES = 16 << 10
opened = []
real = h5py.File.__init__
def init(self, name, mode="r", *a, **k):
    real(self, name, mode, *a, **k)
    if mode == "r+" and k.get("locking") is False:  # the writer opening a version for appending
        opened.append(name)
        if len(opened) == int(sys.argv[2]):  # killed between opening for write and SWMR mode
            os._exit(9)
h5py.File.__init__ = init
with alife.Simulation(overrides=eval(sys.argv[3]), seed=9,
                      plugins=[LineageRecorder(sys.argv[1], commit_every=1, genomes="births")]) as sim:
    sim.run(150)
"""


@pytest.mark.parametrize("nth", [1, 3])
def test_a_kill_while_the_file_is_reopened_for_appending_leaves_it_readable(tmp_path, nth):
    """HDF5 marks a file "open for write" from its opening until SWMR mode is switched on; no
    reader can open a file killed in that state. The writer reopens the new version under its
    temporary name, so ``lineage.h5`` is never in it: a kill there leaves the previous version
    (the first creation: no file at all)."""
    path = tmp_path / "lineage.h5"
    proc = subprocess.run([sys.executable, "-c", KILL_BEFORE_SWMR, str(path), str(nth), repr(SMALL)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 9, proc.stderr[-2000:]
    if nth == 1:  # killed while the file was first created
        assert not path.exists()
        return
    lin = alife.lineage.open(path)  # the version before the compaction that was cut short
    assert lin.ids[:SMALL["world.initial_agents"]].tolist() == list(range(SMALL["world.initial_agents"]))
    assert lin.last_step > 0


@pytest.mark.parametrize("spec, expect", [("none", ("none", 0)), ("births", ("births", 1)),
                                          ("births:5", ("births", 5)), ("survivors:100", ("survivors", 100))])
def test_genome_cadence(spec, expect):
    assert parse_genome_cadence(spec) == expect


@pytest.mark.parametrize("spec", ["all", "births:0", "survivors:x", "none:3"])
def test_bad_genome_cadence(spec):
    with pytest.raises(UserError, match="lineage-genomes"):
        parse_genome_cadence(spec)


# ---------------------------------------------------------------------- resume rollback
def synthetic_file(path: Path, version: int = schema.SCHEMA_VERSION) -> None:
    """Agents 0..9 are roots at step -1; agent 10 + k is born at step k (k = 0..99) to parent k;
    agent j dies at step j + 50 for j < 40. One species per 25 steps. Then rows of a step-200
    record are appended after the last commit, as a killed writer would leave them."""
    k = np.arange(100)
    ids = np.arange(110)
    steps = np.concatenate([np.full(10, -1), k])
    parents = np.stack([np.concatenate([np.full(10, -1), k]), np.full(110, -1)], axis=1)
    dead = np.arange(40)
    data = {
        "births/id": ids, "births/parents": parents, "births/step": steps, "births/species": np.maximum(steps, 0) // 25,
        "births/strategy": (steps >= 0).astype(int), "births/digest": ids.astype(np.uint64),
        "deaths/id": dead, "deaths/step": dead + 50, "deaths/cause": np.zeros(40), "deaths/offspring": np.ones(40),
        "deaths/lifetime_energy": np.ones(40),
        "species/id": np.arange(4), "species/parent": np.array([-1, 0, 1, 2]),
        "species/origin_step": np.array([0, 25, 50, 75]),
        "extinctions/species": np.array([0]), "extinctions/step": np.array([70]),
        "genomes/id": ids[::10], "genomes/step": steps[::10], "genomes/vector": np.ones((11, 4)),
        "strategy_names": np.array([b"initial", b"test"]),
        "observables/population/step": k, "observables/population/value": k * 1.0,
    }
    if version >= schema.PLUGIN_SERIES_SINCE:  # two series, sampled every 10 steps
        data.update({"plugin_series/step": np.repeat(k[::10], 2), "plugin_series/key": np.tile([0, 1], 10),
                     "plugin_series/value": np.arange(20) * 0.5,
                     "plugin_series_names": np.array([b"p.a", b"p.b"])})
    schema.write_file(path, {"world_name": "synthetic", "seed": 7, "causes": ["starved"]}, 4, data, 99, version)
    with h5py.File(path, "r+", libver="latest") as f:
        for name in ("births/id", "births/step", "deaths/step"):
            d = f[name]
            d.resize((d.shape[0] + 3,))
            d[-3:] = 200


@pytest.mark.parametrize("version", [1, 2])
def test_resume_rolls_back_every_record_from_the_resume_step(tmp_path, version):
    """Schema 2 and a schema-1 file (which reads with empty plugin series and is rewritten as 2)."""
    path = tmp_path / "lineage.h5"
    synthetic_file(path, version)
    before = alife.lineage.open(path)
    assert before.last_step == 99 and len(before.ids) == 110  # the uncommitted rows are not read
    assert before.attrs["schema_version"] == version
    assert before.plugin_series.shape == ((10, 2) if version == 2 else (0, 0))
    rec = LineageRecorder(path)
    rec.alife_sim_start(SimpleNamespace(resume_step=60, layout=SimpleNamespace(size=4),
                                        hooks=SimpleNamespace(has_impls=lambda hook: False)))
    rec._put("deaths/id", np.array([41]))  # the resumed run goes on appending
    for name, value in (("deaths/step", 60), ("deaths/cause", 0), ("deaths/offspring", 0), ("deaths/lifetime_energy", 0)):
        rec._put(name, np.array([value]).astype(schema.columns(4)[[c.path for c in schema.columns(4)].index(name)].dtype))
    rec.commit(60)
    rec._f.close()
    lin = alife.lineage.open(path)
    assert lin.last_step == 60
    assert lin.ids.tolist() == list(range(70))  # roots and births of steps 0..59
    assert lin.data["deaths/id"].tolist() == [*range(10), 41]  # deaths of steps 50..59, then the new one
    assert lin.species["id"].tolist() == [0, 1, 2]  # species 3 originated at step 75
    assert lin.species["extinction_step"].isna().all()  # the extinction at step 70 is gone
    assert lin.genomes()[0].tolist() == [0, 10, 20, 30, 40, 50, 60]
    assert lin.series.index.tolist() == list(range(60))
    assert lin.strategy_names == ["initial", "test"]
    assert lin.attrs["resumes"] == [{"step": 60, "last_commit": 99}]
    assert lin.attrs["schema_version"] == schema.SCHEMA_VERSION
    if version == 2:  # the series samples of steps 0..50 kept, names and codes as they were
        assert lin.plugin_series.index.tolist() == [0, 10, 20, 30, 40, 50]
        assert lin.plugin_series.columns.tolist() == ["p.a", "p.b"]
        assert lin.plugin_series["p.b"].tolist() == [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]
    else:
        assert lin.plugin_series.empty
    assert lin.attrs["seed"] == 7
    assert not (tmp_path / "lineage.h5.tmp").exists()


def test_resume_of_a_real_file_keeps_exactly_the_earlier_records(tmp_path):
    path = tmp_path / "lineage.h5"
    with alife.Simulation(overrides=SMALL, seed=8, plugins=[LineageRecorder(path, commit_every=10)]) as sim:
        sim.run(40)
    full = alife.lineage.open(path)
    rec = LineageRecorder(path)
    rec.alife_sim_start(SimpleNamespace(resume_step=25, layout=SimpleNamespace(size=int(full.attrs["genome_size"])),
                                        hooks=SimpleNamespace(has_impls=lambda hook: False)))
    rec._f.close()
    cut = alife.lineage.open(path)
    assert cut.last_step == 24
    for c in schema.columns(int(full.attrs["genome_size"])):
        if c.step_col is None:
            continue
        keep = full.data[c.step_col] < 25
        assert np.array_equal(cut.data[c.path], full.data[c.path][keep]), c.path


# ---------------------------------------------------------------------- SIGKILL
def kill_once(tmp_path: Path, rng: np.random.Generator, seed: int) -> str:
    out = tmp_path / f"run{seed}"
    cmd = [sys.executable, "-m", "alife.cli.main", "run", "--steps", "1000000", "--seed", str(seed),
           "--no-progress", "--out", str(out), "--no-record", "replay", "--lineage-commit-every", "3",
           "--lineage-genomes", "births:2", *[f"--set={k}={v}" for k, v in SMALL.items()]]
    # every other run compacts its file every few commits, so kills also land inside compactions
    env = dict(os.environ, ALIFE_LINEAGE_COMPACT_MIN_BYTES=str(32 << 10 if seed % 2 else 4 << 20))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    path, tmp = out / "lineage.h5", out / "lineage.h5.tmp"
    early = rng.random() < 0.25  # a quarter of the kills land while the file is being created
    delay = rng.uniform(0.0, 3.0)
    deadline = time.monotonic() + 300
    while not (path.exists() or (early and tmp.exists())):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"alife run did not start: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.005)
    if not early:
        time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    if not path.exists():
        assert early
        return "killed before the file existed"
    lin = alife.lineage.open(path)
    n_roots = SMALL["world.initial_agents"]
    assert len(lin.ids) >= n_roots and lin.ids[:n_roots].tolist() == list(range(n_roots))
    assert np.all(np.diff(lin.ids) > 0)
    assert lin.reaches_root(lin.ids).all()
    assert np.isin(lin.data["deaths/id"], lin.ids).all() and len(np.unique(lin.data["deaths/id"])) == len(lin.deaths)
    dead = lin.rows(lin.data["deaths/id"])
    assert np.all(lin.data["deaths/step"] >= lin.birth_step[dead])
    assert lin.birth_step.max() <= lin.last_step and lin.data["deaths/step"].max(initial=-1) <= lin.last_step
    assert lin.species["id"].tolist() == list(range(len(lin.species)))
    assert lin.species_of.max() < len(lin.species)
    assert np.isin(lin.genomes()[0], lin.ids).all()
    return f"last commit at step {lin.last_step}, {len(lin.ids)} agents"


@pytest.mark.parametrize("i", range(2))
def test_sigkill_leaves_a_readable_file(tmp_path, i):
    seed = int.from_bytes(os.urandom(4), "little")
    print(f"kill seed {seed}")  # pytest shows it when the test fails
    print(kill_once(tmp_path, np.random.default_rng(seed), i))


@pytest.mark.slow
def test_sigkill_twenty_times_in_a_row(tmp_path):
    seed = int.from_bytes(os.urandom(4), "little")
    rng = np.random.default_rng(seed)
    results = [kill_once(tmp_path, rng, i) for i in range(20)]
    print(f"kill seed {seed}", *results, sep="\n")
