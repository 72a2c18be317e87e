"""Fuzzing the lineage and replay readers: copies of ``replays/example/lineage.h5`` and
``replay.h5`` with bytes flipped, cut short, attributes rewritten, datasets resized, retyped,
replaced by links or filled with extreme values (hypothesis draws the damage). Every outcome must
be a valid read or a ``FileFormatError``: never another exception, never a read longer than
10 s, never more memory than the file's own size plus a fixed bound.

Each file is read in a worker process (one for the whole run, restarted after a hang): it reports
the outcome and how far the read raised its peak resident memory (``resource.getrusage``), and it
runs under an address-space limit so a runaway allocation fails as ``MemoryError`` instead of
exhausting the machine. ``ALIFE_FUZZ_REPORT=path`` appends the outcome counts there as JSON.
"""

from __future__ import annotations

import collections
import json
import os
import select
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alife.lineage import schema

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "replays" / "example"
#: longest a single read may take
READ_SECONDS = 10.0
#: how far one read may raise the worker's peak resident memory beyond the file's own size
MEMORY_BOUND = 64 << 20

WORKER = textwrap.dedent("""
    import json, resource, sys, traceback
    import numpy as np
    import alife, alife.lineage
    from alife.lineage import analysis
    from alife.recording.replay import open_replay
    from alife.errors import FileFormatError

    def read_lineage(p):
        lin = alife.lineage.open(p)
        lin.births; lin.deaths; lin.species; lin.series; lin.genomes()
        lin.check(); lin.mrca(); lin.line_of_descent()
        analysis.phylogenetic_diversity(lin); analysis.mean_pairwise_distance(lin)
        if lin.living.size:
            lin.ancestry(int(lin.living[-1])); lin.ancestry(int(lin.living[0]), all_parents=True)
        if lin.ids.size:
            lin.descendants(int(lin.ids[0]))

    def read_replay(p):
        with open_replay(p) as r:
            for i in sorted({0, len(r) // 3, len(r) // 2, len(r) - 1}):
                f = r.frame(i)
                assert f.resource.shape == (r.height, r.width)

    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    readers = {"lineage": read_lineage, "replay": read_replay}
    for kind, p in (("lineage", sys.argv[1]), ("replay", sys.argv[2])):  # warm up on sound files
        readers[kind](p)
    vm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))
    lim = vm + (3 << 30)
    resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    print("ready", flush=True)
    for line in sys.stdin:
        kind, p = json.loads(line)
        before = peak()
        try:
            readers[kind](p)
            out, msg = "read", ""
        except FileFormatError as e:
            out, msg = "refused", str(e)
        except BaseException as e:
            out, msg = "crash", "".join(traceback.format_exception(e))[-3000:]
        print(json.dumps({"outcome": out, "message": msg, "grew": peak() - before}), flush=True)
""")


class Worker:
    """A reader process fed one path at a time; a read past READ_SECONDS is a hang."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER, str(EXAMPLE / "lineage.h5"),
                                      str(EXAMPLE / "replay.h5")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, cwd=REPO)
        line = self._line(120)
        assert line == "ready", f"fuzz worker did not start: {line!r} {self.proc.stderr.read()[-3000:]}"

    def _line(self, timeout: float) -> str | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline().strip() if ready else None

    def read(self, kind: str, path: Path) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        self.proc.stdin.write(json.dumps([kind, str(path)]) + "\n")
        self.proc.stdin.flush()
        line = self._line(READ_SECONDS)
        if line is None:
            self.stop()
            return {"outcome": "hang", "message": f"no answer within {READ_SECONDS} s", "grew": 0}
        if not line:
            err = self.proc.stderr.read()[-3000:]
            self.stop()
            return {"outcome": "crash", "message": f"the reader process died: {err}", "grew": 0}
        return json.loads(line)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.communicate()
            self.proc = None


COUNTS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
#: the damage and last message line of every read that was neither a read nor a refusal
FAILURES: list[str] = []


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    w.stop()
    report = os.environ.get("ALIFE_FUZZ_REPORT")
    summary = {k: dict(v) for k, v in COUNTS.items()}
    print(f"\nfuzz outcomes: {json.dumps(summary)}")
    for line in sorted(set(FAILURES)):
        print("  not a clean outcome:", line)
    if report:
        with open(report, "a") as fh:
            fh.write(json.dumps(summary) + "\n")


# ---------------------------------------------------------------------- damage
ATTR_VALUES = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1), st.sampled_from([0, -1, 1, 2**31, 10**12]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20), st.binary(max_size=20),
    st.just(np.arange(4)), st.just(np.zeros((2, 2))), st.just("{not json"), st.just("[]"), st.just('"x"'),
    st.just('["a", "a"]'), st.just("[1, 2]"))
EXTREMES = st.sampled_from([0, -1, -2, 1, 7, 255, 2**31 - 1, 2**31, -(2**31), 10**9, 10**12, 2**62, -(2**63)])


def _datasets(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return sorted(names)


def _attr_targets(f: h5py.File) -> list[tuple[str, str]]:
    out = [("/", k) for k in f.attrs]
    out += [(n, k) for n in _datasets(f) for k in f[n].attrs]
    return sorted(out)


def damage(data: st.DataObject, src: Path, dst: Path) -> str:
    """Copy ``src`` to ``dst`` and damage it; returns a description of what was done."""
    shutil.copy(src, dst)
    how = data.draw(st.sampled_from(["flip", "flip", "truncate", "attribute", "resize", "values", "retype",
                                     "link", "commit"]), label="how")
    if how in ("flip", "truncate"):
        raw = bytearray(dst.read_bytes())
        if how == "truncate":
            cut = data.draw(st.integers(0, len(raw) - 1), label="cut")
            dst.write_bytes(bytes(raw[:cut]))
            return f"truncated to {cut} bytes"
        # flips concentrate where HDF5 keeps its metadata (the start) as often as anywhere
        k = data.draw(st.integers(1, 24), label="flips")
        head = data.draw(st.booleans(), label="head")
        hi = min(len(raw), 8192) if head else len(raw)
        pos = data.draw(st.lists(st.integers(0, hi - 1), min_size=k, max_size=k), label="positions")
        vals = data.draw(st.lists(st.integers(0, 255), min_size=k, max_size=k), label="values")
        for p, v in zip(pos, vals, strict=True):
            raw[p] = v
        dst.write_bytes(bytes(raw))
        return f"{k} bytes set at {pos[:6]}..."
    with h5py.File(dst, "r+") as f:
        names = _datasets(f)
        if how == "attribute":
            obj, key = data.draw(st.sampled_from(_attr_targets(f)), label="attribute")
            value = data.draw(ATTR_VALUES, label="value")
            target = f if obj == "/" else f[obj]
            if data.draw(st.booleans(), label="delete") and obj == "/":
                del target.attrs[key]
                return f"deleted attribute {key}"
            try:
                target.attrs[key] = value
            except (ValueError, TypeError) as e:  # h5py cannot store it (a NUL in a string)
                return f"attribute {obj}:{key} left as it was ({e})"
            return f"attribute {obj}:{key} = {value!r}"[:200]
        name = data.draw(st.sampled_from(names), label="dataset")
        d = f[name]
        if how == "resize":
            if d.maxshape[0] is not None:
                return "not resizable"
            rows = data.draw(st.sampled_from([0, 1, d.shape[0] // 2, d.shape[0] + 1, 10**6, 10**9, 10**12]),
                             label="rows")
            d.resize((rows, *d.shape[1:]))
            return f"{name} resized to {rows} rows"
        if how == "values":
            if d.size == 0 or d.dtype.kind not in "iuf":
                return "no values"
            v = d[...]
            flat = v.reshape(-1)
            idx = data.draw(st.lists(st.integers(0, flat.size - 1), min_size=1, max_size=8), label="at")
            new = data.draw(EXTREMES, label="extreme")
            with np.errstate(over="ignore"):
                flat[idx] = np.array(new).astype(d.dtype) if d.dtype.kind == "f" else \
                    np.array(new, dtype=np.int64).astype(d.dtype)
            d[...] = v
            return f"{name}[{idx[:3]}...] = {new}"
        if how == "retype":
            kind = data.draw(st.sampled_from(["f8", "i4", "u1", "str", "scalar", "2d"]), label="type")
            shape, v = d.shape, None
            del f[name]
            if kind == "str":
                f.create_dataset(name, shape=shape[:1], dtype=h5py.string_dtype())
            elif kind == "scalar":
                f[name] = 5
            elif kind == "2d":
                f.create_dataset(name, shape=(shape[0] if shape else 1, 3), dtype="i8")
            else:
                f.create_dataset(name, shape=shape, dtype=kind, data=v)
            return f"{name} replaced by {kind}"
        if how == "link":
            other = data.draw(st.sampled_from(names), label="to")
            del f[name]
            if data.draw(st.booleans(), label="soft"):
                f[name] = h5py.SoftLink("/" + other)
            else:
                f[name] = h5py.ExternalLink(str(src), "/" + other)
            return f"{name} linked to {other}"
        if how == "commit":
            if "commits" not in f:
                return "no commit table"
            c = f["commits"]
            cols = json.loads(c.attrs["columns"])
            row = c[-1].copy()
            i = data.draw(st.integers(0, len(cols) - 2), label="column")
            row[i] = data.draw(EXTREMES, label="count")
            row[-1] = schema.checksum(row[:-1])
            c[-1] = row
            return f"commit {cols[i]} = {row[i]}"
    raise AssertionError(how)


def check(worker: Worker, kind: str, path: Path, how: str) -> None:
    size = path.stat().st_size
    r = worker.read(kind, path)
    COUNTS[kind][r["outcome"]] += 1
    COUNTS[kind]["files"] += 1
    if r["outcome"] not in ("read", "refused"):
        FAILURES.append(f"{kind}: {how}: {r['outcome']}: {(r['message'].strip().splitlines() or [''])[-1]}")
    assert r["outcome"] in ("read", "refused"), f"{how}: {r['outcome']}: {r['message']}"
    assert r["grew"] <= size + MEMORY_BOUND, f"{how}: the read raised peak memory by {r['grew']} bytes"


def fuzz(kind: str, examples: int):
    src = EXAMPLE / f"{kind}.h5"

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(data=st.data())
    def run(worker, tmp_path, data):
        dst = tmp_path / f"{kind}.h5"
        how = damage(data, src, dst)
        check(worker, kind, dst, how)

    return run


test_fuzz_lineage = fuzz("lineage", 60)
test_fuzz_replay = fuzz("replay", 60)
test_fuzz_lineage_long = pytest.mark.slow(fuzz("lineage", 3000))
test_fuzz_replay_long = pytest.mark.slow(fuzz("replay", 3000))


def sweep(worker: Worker, tmp_path: Path, stride: int) -> None:
    """The originals read; then one inverted byte at every ``stride``-th offset of each file."""
    for kind in ("lineage", "replay"):
        src = EXAMPLE / f"{kind}.h5"
        r = worker.read(kind, src)
        assert r["outcome"] == "read", r
        raw = src.read_bytes()
        for at in range(0, len(raw), stride):
            bad = bytearray(raw)
            bad[at] ^= 0xFF
            p = tmp_path / f"{kind}-{at}.h5"
            p.write_bytes(bytes(bad))
            check(worker, kind, p, f"byte {at} of {kind}.h5 inverted")
            p.unlink()


def test_inverted_bytes_across_the_files(worker, tmp_path):
    sweep(worker, tmp_path, 20011)


@pytest.mark.slow
def test_inverted_bytes_across_the_files_densely(worker, tmp_path):
    sweep(worker, tmp_path, 257)
