"""replay.h5: frames read back equal the simulation's state at those steps (within quantisation)."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

import alife
from alife.errors import FileFormatError
from alife.recording.replay import SCHEMA_VERSION, ReplayRecorder, frame_from_sim, open_replay

SMALL = {"world.width": 24, "world.height": 16, "world.initial_agents": 60, "world.capacity": 512}


def _record(tmp_path, steps, every):
    rec = ReplayRecorder(tmp_path / "replay.h5", every=every)
    sim = alife.Simulation(overrides=SMALL, seed=3, plugins=[rec])
    truth = {0: frame_from_sim(sim)}
    for _ in range(steps):
        sim.step()
        truth[sim.step_count] = frame_from_sim(sim)
    sim.close()
    return truth


def _assert_same(got, want, width, height):
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_array_equal(got.species, want.species)
    np.testing.assert_array_equal(got.age, want.age)
    d = np.abs(got.pos - want.pos)
    d = np.minimum(d, np.array([width, height]) - d)  # the torus: 0 and width are one place
    assert d.max(initial=0) <= max(width, height) / 65536 + 1e-5
    dh = np.abs(np.angle(np.exp(1j * (got.heading - want.heading))))
    assert dh.max(initial=0) <= np.pi / 256 + 1e-5
    np.testing.assert_allclose(got.energy, want.energy, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(got.action, want.action, atol=1 / 254 + 1e-6)
    np.testing.assert_allclose(got.resource, want.resource, atol=1 / 510 + 1e-6)


def test_frames_read_back_equal_the_simulation(tmp_path):
    truth = _record(tmp_path, steps=12, every=3)
    with open_replay(tmp_path / "replay.h5") as r:
        assert list(r.steps) == [0, 3, 6, 9, 12]
        assert (r.width, r.height) == (24, 16)
        assert r.file.attrs["schema_version"] == SCHEMA_VERSION
        assert "[world]" in r.config_toml
        for i in range(len(r)):
            f = r.frame(i)
            assert len(f) == int(r.counts[i]) > 0
            _assert_same(f, truth[f.step], 24, 16)
        # frames differ from step to step: the test above could not pass on a frozen frame
        assert not np.array_equal(r.frame(0).pos, r.frame(4).pos)
        assert r.index_of_step(7) == 2 and r.index_of_step(100) == 4


def test_file_is_compact_and_compressed(tmp_path):
    _record(tmp_path, steps=4, every=1)
    with h5py.File(tmp_path / "replay.h5") as f:
        assert f["agents/x"].dtype == np.uint16 and f["agents/heading"].dtype == np.uint8
        assert f["frames/resource"].dtype == np.uint8
        assert f["agents/id"].compression == "gzip" and f["agents/id"].chunks is not None


def test_resume_drops_frames_at_and_after_resume_step(tmp_path):
    first = _record(tmp_path, steps=10, every=2)
    rec = ReplayRecorder(tmp_path / "replay.h5", every=99)  # the file's own cadence wins
    sim = alife.Simulation(overrides=SMALL, seed=3)
    sim.run(6)
    # a resumed run need not retrace the first one: make it visibly different
    sim.world.energy[sim.world.alive] += 0.5
    sim.resume_step = 6
    rec.alife_sim_start(sim)
    truth = {6: frame_from_sim(sim)}
    for _ in range(3):
        rec.alife_step_start(sim, sim.step_count)
        sim.step()
        rec.alife_step_end(sim, sim.step_count - 1)
        truth[sim.step_count] = frame_from_sim(sim)
    rec.alife_sim_end(sim)
    with open_replay(tmp_path / "replay.h5") as r:
        assert list(r.steps) == [0, 2, 4, 6, 8]
        for i in range(3):
            _assert_same(r.frame(i), first[2 * i], 24, 16)
        for i in (3, 4):
            _assert_same(r.frame(i), truth[2 * i], 24, 16)
        assert not np.allclose(r.frame(3).energy, first[6].energy[: len(r.frame(3))], atol=0.1)


KILLED = """
import os, sys
import alife
from alife.recording.replay import ReplayRecorder
rec = ReplayRecorder(sys.argv[1], every=1, buffer_frames={buffer}, flush_seconds=1e9)
sim = alife.Simulation(overrides={overrides!r}, seed=1, plugins=[rec])
sim.run(5)
os.kill(os.getpid(), 9)
"""


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
@pytest.mark.parametrize(("buffer", "kept"), [(1, 6), (4, 5), (32, 1)])
def test_a_killed_run_leaves_a_readable_file_that_can_be_resumed(tmp_path, buffer, kept):
    # frames are written in batches of `buffer`; a kill loses at most the batch being filled (the
    # first frame is written at once), and a resume records the lost steps again
    path = tmp_path / "replay.h5"
    code = KILLED.format(overrides=SMALL, buffer=buffer)
    p = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True)
    assert p.returncode != 0
    with open_replay(path) as r:
        assert list(r.steps) == list(range(kept))
    rec = ReplayRecorder(path)
    sim = alife.Simulation(overrides=SMALL, seed=1)
    sim.run(3)
    sim.resume_step = 3
    rec.alife_sim_start(sim)
    rec.alife_sim_end(sim)
    with open_replay(path) as r:  # what the kill lost before step 3 stays lost: `alife run`
        # commits the buffer before each checkpoint, so it resumes where the file ends
        assert list(r.steps) == [s for s in range(kept) if s < 3] + [3]


def test_bad_files_raise_file_format_error(tmp_path):
    with pytest.raises(FileFormatError, match="no such file"):
        open_replay(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is not hdf5" * 100)
    with pytest.raises(FileFormatError, match="not a readable HDF5"):
        open_replay(junk)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(FileFormatError, match="not an alife replay"):
        open_replay(foreign)
    _record(tmp_path, steps=3, every=1)
    data = (tmp_path / "replay.h5").read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError):
        open_replay(cut)
    with h5py.File(tmp_path / "replay.h5", "r+") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(FileFormatError, match="newer"):
        open_replay(tmp_path / "replay.h5")


def test_recorder_for_run_reads_flag_then_world_file(tmp_path):
    import argparse

    from alife import config as config_mod
    from alife.recording.replay import add_run_arguments, recorder_for_run

    p = argparse.ArgumentParser()
    add_run_arguments(p)
    cfg = config_mod.load(None, {})
    assert recorder_for_run(tmp_path, p.parse_args(["--replay-every", "7"]), cfg).every == 7
    assert recorder_for_run(tmp_path, p.parse_args([]), cfg).every == 2
