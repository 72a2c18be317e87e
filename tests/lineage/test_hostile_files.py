"""Lineage and replay files from someone else: cycles in the parent links, FIFOs, arrays declared
huge in small files, codes out of range, HDF5 features our files never use. Each read either
succeeds or raises ``FileFormatError``; none hangs or allocates more than the file can hold.

Reads that hung or allocated many GiB before the fixes run in a subprocess with a time limit and
an address-space limit, so a regression fails the test instead of stalling or exhausting the
machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

import alife
from alife.errors import FileFormatError
from alife.lineage import schema, tree
from alife.recording.replay import open_replay

from .conftest import synthetic

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "replays" / "example"


def run_py(code: str, timeout: float = 60, mem_gib: float = 3.0) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with at most ``mem_gib`` GiB more address space than it
    starts with and ``timeout`` seconds; a hang or an allocation past the limit fails the test."""
    prelude = textwrap.dedent(f"""
        import resource
        def _vm():
            for line in open("/proc/self/status"):
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
        import alife, alife.lineage, h5py, numpy, pandas
        from alife.recording.replay import open_replay
        from alife.errors import FileFormatError
        lim = _vm() + int({mem_gib} * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    """)
    try:
        return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True,
                              text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the read did not finish within {timeout} s:\n{code}")


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-m", "alife.cli.main", *args], capture_output=True, text=True,
                              timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        pytest.fail(f"alife {' '.join(args)} did not finish within {timeout} s")


def one_line_error(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-3000:])
    assert r.stderr.startswith("alife: error: ") and r.stderr.count("\n") == 1, r.stderr[-3000:]
    for w in words:
        assert w in r.stderr, r.stderr


# ---------------------------------------------------------------------- cycles
CYCLES = {
    "own parent": ([(-1, -1), (0, -1), (2, -1), (1, -1)], ["agent 2 is its own parent"]),
    "each other's": ([(-1, -1), (0, -1), (3, -1), (2, -1), (1, -1)], ["agents 2, 3 are each other's ancestors"]),
    "three": ([(-1, -1), (3, -1), (1, -1), (2, -1), (0, -1)], ["agents 1, 2, 3 are each other's ancestors"]),
    "mate born later": ([(-1, -1), (0, 2), (0, -1)], ["agent 1 names a parent born after it"]),
}


@pytest.mark.parametrize("case", CYCLES)
def test_summary_reports_a_cycle_and_exits_1(tmp_path, case):
    parents, words = CYCLES[case]
    p = synthetic(tmp_path / "lineage.h5", parents, list(range(-1, len(parents) - 1)), {})
    r = cli("lineage", str(p), "summary")
    assert r.returncode == 1, (r.stdout, r.stderr)
    line = [x for x in r.stdout.splitlines() if x.startswith("checks: ")][0]
    assert "FAILED" in line and "every parent born before its child" in line
    for w in words:
        assert w in line, line
    for action in (["ancestry", str(len(parents) - 1)], ["ancestry", "2", "--all-parents"], ["species"],
                   ["export", "--format", "alife-csv", "-o", str(tmp_path / "x.csv")]):
        r = cli("lineage", str(p), *action)
        assert r.returncode == 0, (action, r.stderr[-2000:])


def test_every_walk_ends_on_a_cycle(tmp_path):
    # agent 3 is its own parent; 4 and 5 are each other's; 6 descends from the cycle
    parents = [(-1, -1), (0, -1), (1, -1), (3, -1), (5, -1), (4, -1), (5, -1)]
    p = synthetic(tmp_path / "lineage.h5", parents, list(range(-1, 6)), {})
    r = run_py(f"""
        import numpy as np
        from alife.lineage import analysis
        lin = alife.lineage.open({str(p)!r})
        out = dict(anc=lin.ancestry(6)["id"].tolist(), all=lin.ancestry(6, all_parents=True)["id"].tolist(),
                   desc=lin.descendants(4).tolist(), roots=lin.reaches_root(lin.ids).tolist(),
                   mrca=lin.mrca(), lod=lin.line_of_descent()["id"].tolist(), check=lin.check(),
                   notes=lin.check_notes, pd=analysis.phylogenetic_diversity(lin))
        import json; print(json.dumps(out))
    """)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out["anc"] == [6, 5, 4] and sorted(out["all"]) == [4, 5, 6]  # the link 4 -> 5 is cut
    assert sorted(out["desc"]) == [4, 5, 6]
    assert out["roots"] == [True, True, True, False, False, False, False]
    assert out["check"]["every parent born before its child"] is False
    assert "agent 3 is its own parent" in out["notes"]["every parent born before its child"]
    assert "agents 4, 5 are each other's ancestors" in out["notes"]["every parent born before its child"]


def test_forest_helpers_refuse_a_cycle_at_once():
    for parent in ([0], [1, 0], [-1, 0, 3, 4, 2], [-1, 2, 3, 1, 1]):
        par = np.array(parent)
        for fn in (tree.depths, tree.roots_of, lambda q: tree.subtree_sums(q, np.ones(q.size))):
            with pytest.raises(tree.CycleError) as e:
                fn(par)
            assert e.value.rows.tolist() == sorted(set(tree.cycle_nodes(par).tolist()))
    assert tree.cycle_nodes(np.array([-1, 0, 3, 4, 2, 4])).tolist() == [2, 3, 4]
    assert tree.cycle_nodes(np.array([-1, 0, 1, 2])).size == 0


def test_forest_helpers_stay_vectorised_on_deep_and_wide_forests():
    rng = np.random.default_rng(0)
    n = 300_000
    chain = np.arange(-1, n - 1)
    assert tree.depths(chain)[-1] == n - 1 and tree.roots_of(chain)[-1] == 0
    wide = np.concatenate([[-1], rng.integers(0, np.arange(1, n))])
    d = tree.depths(wide)
    assert d[0] == 0 and np.all(d[1:] == d[wide[1:]] + 1)


# ---------------------------------------------------------------------- FIFOs and folders
@pytest.mark.parametrize("name", ["lineage.h5", "replay.h5"])
def test_a_fifo_is_refused_at_once(tmp_path, name):
    fifo = tmp_path / name
    os.mkfifo(fifo)
    r = run_py(f"""
        for fn in (alife.lineage.open, open_replay):
            try:
                fn({str(fifo)!r})
            except FileFormatError as e:
                print(e)
    """, timeout=30)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("not a regular file (a FIFO)") == 2, r.stdout
    action = ["summary"] if name == "lineage.h5" else ["--export", str(tmp_path / "x.png")]
    cmd = ["lineage", str(fifo), *action] if name == "lineage.h5" else ["replay", str(fifo), *action]
    one_line_error(cli(*cmd, timeout=30), "not a regular file (a FIFO)")
    # a run folder whose file is a FIFO
    one_line_error(cli("lineage", str(tmp_path), "summary", timeout=30)
                   if name == "lineage.h5" else cli("replay", str(tmp_path), *action, timeout=30), "FIFO")


# ---------------------------------------------------------------------- doctored lineage files
def commit_counts(f: h5py.File, **rows: int) -> None:
    """Rewrite the last commit row with new row counts (``births/id=...`` as ``births__id``) and a
    valid checksum, as someone doctoring a file would."""
    c = f["commits"]
    names = json.loads(c.attrs["columns"])
    row = c[-1].copy()
    for k, v in rows.items():
        row[names.index(k.replace("__", "/"))] = v
    row[-1] = schema.checksum(row[:-1])
    c[-1] = row


def set_column(f: h5py.File, path: str, values: np.ndarray) -> None:
    d = f[path]
    d.resize((len(values), *d.shape[1:]))
    d[...] = values


def doctor_lineage(tmp_path: Path, how: str) -> Path:
    p = tmp_path / f"{how}.h5"
    shutil.copy(EXAMPLE / "lineage.h5", p)
    with h5py.File(p, "r+") as f:
        n = f["births/id"].shape[0]
        if how == "huge births":  # 10^10 rows declared in every births column, none stored
            big = 10**10
            for name in ("id", "parents", "step", "species", "strategy", "digest"):
                d = f[f"births/{name}"]
                d.resize((big, *d.shape[1:]))
            commit_counts(f, **{f"births__{k}": big for k in ("id", "parents", "step", "species", "strategy", "digest")})
        elif how == "huge genomes":
            d = f["genomes/vector"]
            d.resize((10**8, d.shape[1]))
            for k in ("id", "step", "vector"):
                f[f"genomes/{k}"].resize((10**8, *f[f"genomes/{k}"].shape[1:]))
            commit_counts(f, genomes__id=10**8, genomes__step=10**8, genomes__vector=10**8)
        elif how == "species id 10^9":
            sp = f["births/species"][...]
            sp[-1] = 10**9
            set_column(f, "births/species", sp)
        elif how == "cause code 200":
            c = f["deaths/cause"][...]
            c[0] = 200
            set_column(f, "deaths/cause", c)
        elif how == "strategy code 9":
            c = f["births/strategy"][...]
            c[-1] = 9
            set_column(f, "births/strategy", c)
        elif how == "negative commit count":
            commit_counts(f, deaths__id=-5, deaths__step=-5, deaths__cause=-5, deaths__offspring=-5,
                          deaths__lifetime_energy=-5)
        elif how == "columns disagree":
            commit_counts(f, births__step=n - 3)
        elif how == "causes not JSON":
            f.attrs["causes"] = "{not json"
        elif how == "genome_size an array":
            f.attrs["genome_size"] = np.arange(3)
        elif how == "soft link":
            del f["births/step"]
            f["births/step"] = h5py.SoftLink("/births/id")
        elif how == "external link":
            other = tmp_path / "other.h5"
            with h5py.File(other, "w") as g:
                g["s"] = np.zeros(n, np.int64)
            del f["births/step"]
            f["births/step"] = h5py.ExternalLink(str(other), "/s")
        elif how == "external storage":
            raw = tmp_path / "raw.bin"
            raw.write_bytes(np.full(n, -1, np.int64).tobytes())
            del f["births/step"]
            f.create_dataset("births/step", shape=(n,), dtype="i8", external=[(str(raw), 0, 8 * n)])
        elif how == "strings for numbers":
            del f["births/step"]
            f.create_dataset("births/step", data=np.array([str(i) for i in range(n)], dtype=object),
                             dtype=h5py.string_dtype(), maxshape=(None,), chunks=(64,))
        elif how == "species parent cycle":
            par = f["species/parent"][...]
            par[0] = 1
            par[1] = 0
            set_column(f, "species/parent", par)
        else:
            raise ValueError(how)
    return p


LINEAGE_CASES = {
    "huge births": "declares 10000000000 rows",
    "huge genomes": "genomes/",
    "species id 10^9": "births/species holds 1000000000",
    "cause code 200": "deaths/cause holds 200",
    "strategy code 9": "births/strategy holds 9",
    "negative commit count": "negative row count",
    "columns disagree": "rows of births/id but",
    "causes not JSON": "'causes' is not valid JSON",
    "genome_size an array": "'genome_size' should be one integer",
    "soft link": "births/step is a soft link",
    "external link": "births/step is an external link",
    "external storage": "outside this file",
    "strings for numbers": "births/step has type object",
    "species parent cycle": "species/parent names a species that is not older",
}


@pytest.mark.parametrize("how", LINEAGE_CASES)
def test_doctored_lineage_files_are_refused_before_allocating(tmp_path, how):
    p = doctor_lineage(tmp_path, how)
    r = run_py(f"""
        try:
            lin = alife.lineage.open({str(p)!r})
            print("READ", len(lin.ids))
            lin.births; lin.deaths; lin.species; lin.species_over_time(); lin.mrca()
        except FileFormatError as e:
            print("REFUSED", e)
    """)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith("REFUSED"), r.stdout
    assert LINEAGE_CASES[how] in r.stdout, r.stdout
    assert str(p) in r.stdout
    one_line_error(cli("lineage", str(p), "summary"), str(p))


def test_an_unknown_filter_is_refused(tmp_path):
    p = tmp_path / "lzf.h5"
    shutil.copy(EXAMPLE / "lineage.h5", p)
    with h5py.File(p, "r+") as f:
        v = f["births/step"][...]
        del f["births/step"]
        f.create_dataset("births/step", data=v, maxshape=(None,), chunks=(64,), compression="lzf")
    with pytest.raises(FileFormatError, match="filter 32000"):
        alife.lineage.open(p)


# ---------------------------------------------------------------------- doctored replays
def doctor_replay(tmp_path: Path, how: str) -> Path:
    p = tmp_path / f"{how}.h5"
    shutil.copy(EXAMPLE / "replay.h5", p)
    with h5py.File(p, "r+") as f:
        n = f["frames/step"].shape[0]
        if how == "width 0":
            f.attrs["width"] = 0
        elif how == "width 10^9":
            f.attrs["width"] = 10**9
        elif how == "huge resource field":  # a 16384 x 16384 field per frame, nothing stored
            del f["frames/resource"]
            f.create_dataset("frames/resource", shape=(n, 16384, 16384), dtype="u1", chunks=(1, 4096, 4096),
                             compression="gzip")
            f.attrs["width"] = f.attrs["height"] = 16384
        elif how == "huge species column":  # the last frame claims 10^11 agents
            big = 10**11
            start = int(f["frames/start"][-1])
            for name in f["agents"]:
                d = f[f"agents/{name}"]
                d.resize((start + big, *d.shape[1:]))
            c = f["frames/count"][...]
            c[-1] = big
            f["frames/count"][...] = c
        elif how == "negative start":
            s = f["frames/start"][...]
            s[3] = -4096
            f["frames/start"][...] = s
        elif how == "species as strings":
            m = f["agents/species"].shape[0]
            del f["agents/species"]
            f.create_dataset("agents/species", shape=(m,), dtype=h5py.string_dtype(), chunks=(2048,))
        elif how == "soft link":
            del f["agents/x"]
            f["agents/x"] = h5py.SoftLink("/agents/y")
        elif how == "every 0":
            f.attrs["every"] = 0
        else:
            raise ValueError(how)
    return p


REPLAY_CASES = {
    "width 0": "'width' is 0",
    "width 10^9": "'width' is 1000000000",
    "huge resource field": "frames/resource declares 301 rows (80799072256 bytes)",
    "huge species column": "declares",
    "negative start": "negative start or count",
    "species as strings": "agents/species has type object",
    "soft link": "agents/x is a soft link",
    "every 0": "'every' is 0, below 1",
}


@pytest.mark.parametrize("how", REPLAY_CASES)
def test_doctored_replays_are_refused_before_allocating(tmp_path, how):
    p = doctor_replay(tmp_path, how)
    r = run_py(f"""
        try:
            with open_replay({str(p)!r}) as rp:
                print("READ", len(rp))
                for i in range(len(rp)):
                    rp.frame(i)
        except FileFormatError as e:
            print("REFUSED", e)
    """)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith("REFUSED"), r.stdout
    assert REPLAY_CASES[how] in r.stdout, r.stdout
    assert str(p) in r.stdout


def test_the_example_files_still_read(tmp_path):
    lin = alife.lineage.open(EXAMPLE / "lineage.h5")
    assert len(lin.ids) == 800 and all(lin.check().values())
    with open_replay(EXAMPLE) as rp:
        assert len(rp) == 301 and len(rp.frame(300)) > 0
