"""Readers never block or kill the run writing a lineage file: a run that compacts its file every
few commits, read in a tight loop by `alife lineage summary` (subprocesses), by
`alife.lineage.open` and by a plain h5py reader with HDF5's default file locks, ends normally, and
every read succeeds or gets a clean error."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np

import alife
from alife.errors import FileFormatError
from alife.lineage import schema

SMALL = {"world.width": 32, "world.height": 32, "world.initial_agents": 120, "world.capacity": 1024}

#: opens the file as a reader with HDF5's default locks would (an older alife, h5py, h5dump): as
#: soon as a compaction renames a new file over the old one, before the writer has reopened it, it
#: holds a shared lock on it for a moment, which made the writer's reopen fail with BlockingIOError
HOLDER = """
import os, sys, time, h5py
path, stop = sys.argv[1], sys.argv[2]
held, ino = 0, None
while not os.path.exists(stop):
    try:
        now = os.stat(path).st_ino
        if now == ino:
            continue  # poll until a compaction renames a new file over the old one
        ino = now
        with h5py.File(path, "r") as f:  # the writer's reopen races this open
            held += 1
            time.sleep(0.2)
    except Exception:
        pass
print(held)
"""


def test_readers_in_a_tight_loop_never_stop_a_compacting_run(tmp_path):
    out = tmp_path / "run"
    path = out / "lineage.h5"
    env = dict(os.environ, ALIFE_LINEAGE_COMPACT_MIN_BYTES=str(32 << 10))
    cmd = [sys.executable, "-m", "alife.cli.main", "run", "--steps", "300", "--seed", "3", "--no-progress",
           "--out", str(out), "--no-record", "replay", "--lineage-commit-every", "2", "--lineage-genomes", "births:1",
           *[f"--set={k}={v}" for k, v in SMALL.items()]]
    run = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    stop = tmp_path / "stop"
    holder = None
    try:
        deadline = time.monotonic() + 120
        while not path.exists():
            assert run.poll() is None, run.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "alife run did not start"
            time.sleep(0.005)
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(stop)], stdout=subprocess.PIPE,
                                  text=True)
        cli: list[subprocess.CompletedProcess] = []

        def summaries() -> None:
            while run.poll() is None:
                cli.append(subprocess.run([sys.executable, "-m", "alife.cli.main", "lineage", str(out), "summary"],
                                          capture_output=True, text=True, timeout=120))

        t = threading.Thread(target=summaries)
        t.start()
        api_ok, api_refused, inodes = 0, [], set()
        while run.poll() is None:
            try:
                inodes.add(path.stat().st_ino)
                lin = alife.lineage.open(path)
                assert lin.check()["every parent in the file"]
                api_ok += 1
            except FileFormatError as e:
                api_refused.append(str(e))
            except FileNotFoundError:
                pass
        t.join()
        rc = run.wait(timeout=120)
        err = run.stderr.read()
    finally:
        stop.touch()
        if run.poll() is None:
            run.kill()
        if holder is not None:
            held = holder.communicate(timeout=60)[0].strip()
    print(f"alife run rc {rc}; {len(cli)} `alife lineage summary` runs, rc "
          f"{sorted({c.returncode for c in cli})}; {api_ok} API reads, {len(api_refused)} refused; "
          f"the file was replaced {len(inodes) - 1} times; the default-lock reader held it {held} times")
    assert rc == 0, err[-3000:]
    assert "Traceback" not in err
    assert len(inodes) >= 4, "the run did not compact its file often enough for the test to mean anything"
    assert api_ok >= 5 and len(cli) >= 2
    for c in cli:
        assert c.returncode in (0, 2), (c.returncode, c.stdout[-2000:], c.stderr[-2000:])
        if c.returncode == 2:
            assert c.stderr.startswith("alife: error: ") and c.stderr.count("\n") == 1, c.stderr
    assert sum(c.returncode == 0 for c in cli) >= len(cli) // 2
    assert len(api_refused) <= api_ok, api_refused[:5]
    final = alife.lineage.open(path)
    assert final.last_step == 299 and all(final.check().values())


def test_a_reader_does_not_hold_a_lock(tmp_path):
    """A reader opens without HDF5 file locking: a writer that locks (h5py's default) can open the
    file for writing while our reader holds it."""
    p = tmp_path / "lineage.h5"
    schema.write_file(p, {"causes": ["starved"]}, 2, {"births/id": np.arange(3), "births/parents": -np.ones((3, 2)),
                                                      "births/step": -np.ones(3), "births/species": np.zeros(3),
                                                      "births/strategy": np.zeros(3), "births/digest": np.zeros(3),
                                                      "species/id": [0], "species/parent": [-1],
                                                      "species/origin_step": [0], "strategy_names": [b"initial"]}, -1)
    f = schema.open_for_reading(p)
    try:
        code = f"import h5py; h5py.File({str(p)!r}, 'r+').close(); print('opened')"
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert r.stdout.strip() == "opened", r.stderr[-2000:]
    finally:
        f.close()
