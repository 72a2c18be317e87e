"""Checkpoints: exact resume, atomic saves, validated loads, run folders that resume on their own."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from alife import checkpoint as ck
from alife.cli.main import main
from alife.errors import FileFormatError, UserError
from alife.simulation import Simulation

SMALL = {"world.width": 40, "world.height": 40, "world.initial_agents": 150, "world.capacity": 1024}
SMALL_SET = [f"--set={k}={v}" for k, v in SMALL.items()]


def assert_same_state(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def full_state(sim: Simulation) -> dict[str, np.ndarray]:
    """Every slot (alive or not), the species table, counters and the generator state."""
    st = sim.world
    out = st.to_numpy(only_alive=False)
    for name in ck.SPECIES_FIELDS:
        out[name] = getattr(st, name).cpu().numpy()
    out["hw"] = np.int64(st.hw)
    out["rng"] = sim.generator.get_state().numpy()
    return out


def straight_and_resumed(tmp_path: Path, total: int, cut: int, overrides: dict) -> tuple[Simulation, Simulation]:
    a = Simulation(None, seed=3, device="cpu", overrides=overrides)
    a.run(total, stop_on_extinction=False)
    b = Simulation(None, seed=3, device="cpu", overrides=overrides)
    b.run(cut, stop_on_extinction=False)
    path = ck.save_checkpoint(b, tmp_path / "cut.h5")
    b.close()
    c = ck.load_checkpoint(path)
    assert c.step_count == cut and c.resume_step == cut
    c.run(total - cut, stop_on_extinction=False)
    return a, c


def test_resume_is_identical_in_process(tmp_path):
    a, c = straight_and_resumed(tmp_path, 120, 55, SMALL)
    assert a.population > 0
    assert_same_state(a.state(), c.state())
    assert_same_state(full_state(a), full_state(c))
    assert a.totals == c.totals


@pytest.mark.slow
def test_resume_is_identical_2000_steps(tmp_path):
    a, c = straight_and_resumed(tmp_path, 2000, 1000, {})
    assert_same_state(full_state(a), full_state(c))
    assert a.totals == c.totals


def test_restore_happens_before_sim_start(tmp_path):
    seen = {}

    class Probe:
        def alife_sim_start(self, sim):
            seen["resume_step"] = sim.resume_step
            seen["step"] = sim.step_count
            seen["next_id"] = sim.world.next_id

    import alife

    Probe.alife_sim_start = alife.hookimpl(Probe.alife_sim_start)
    s = Simulation(None, device="cpu", overrides=SMALL)
    s.run(30)
    path = ck.save_checkpoint(s, tmp_path / "c.h5")
    ck.load_checkpoint(path, plugins=[Probe()])
    assert seen == {"resume_step": 30, "step": 30, "next_id": s.world.next_id}


def test_checkpoint_holds_only_arrays_and_json(tmp_path):
    s = Simulation(None, device="cpu", overrides=SMALL)
    s.run(5)
    path = ck.save_checkpoint(s, tmp_path / "c.h5", run={"population_min": 1})
    with h5py.File(path, "r") as f:
        kinds = []
        f.visititems(lambda name, obj: kinds.append(obj.dtype.kind) if isinstance(obj, h5py.Dataset) else None)
        assert set(kinds) <= {"b", "i", "u", "f"}  # numbers only: nothing that could hold code
        meta = json.loads(f.attrs["meta"])
    assert meta["step"] == 5 and meta["schema"] == ck.SCHEMA and meta["run"] == {"population_min": 1}
    assert meta["layout"] == s.layout.to_table()
    assert meta["strategies"] == s.hooks.chosen
    assert {"world_text", "config", "versions", "plugins", "totals", "seed"} <= meta.keys()


def test_a_failed_save_leaves_no_checkpoint(tmp_path, monkeypatch):
    s = Simulation(None, device="cpu", overrides=SMALL)
    s.run(3)
    good = ck.save_checkpoint(s, ck.checkpoint_path(tmp_path, 3))

    def boom(*a, **k):
        raise OSError("disk full")

    s.run(2)
    monkeypatch.setattr(s, "extinction_pool_arrays", boom)  # fails half-way through the file
    with pytest.raises(OSError, match="disk full"):
        ck.save_checkpoint(s, ck.checkpoint_path(tmp_path, 5))
    assert ck.list_checkpoints(tmp_path) == [(3, good)]
    assert list((tmp_path / "checkpoints").iterdir()) == [good]


def test_leftover_temp_files_are_not_checkpoints(tmp_path):
    s = Simulation(None, device="cpu", overrides=SMALL)
    ck.save_checkpoint(s, ck.checkpoint_path(tmp_path, 0))
    half = ck.checkpoint_path(tmp_path, 50).with_name("step-0000000050.h5.tmp-123")
    half.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    assert ck.latest_checkpoint(tmp_path) == ck.checkpoint_path(tmp_path, 0)
    ck.prune_checkpoints(tmp_path, keep=3)
    assert not half.exists()


def test_prune_keeps_the_newest(tmp_path):
    s = Simulation(None, device="cpu", overrides=SMALL)
    for step in (10, 20, 30, 40):
        ck.save_checkpoint(s, ck.checkpoint_path(tmp_path, step))
    ck.prune_checkpoints(tmp_path, keep=2)
    assert [st for st, _ in ck.list_checkpoints(tmp_path)] == [30, 40]


# ------------------------------------------------------------------------------------ bad files
@pytest.fixture
def good_checkpoint(tmp_path) -> Path:
    s = Simulation(None, device="cpu", overrides=SMALL)
    s.run(4)
    return ck.save_checkpoint(s, tmp_path / "good.h5")


def _rewrite_attr(path: Path, name: str, value) -> None:
    with h5py.File(path, "r+") as f:
        f.attrs[name] = value


def test_missing_file(tmp_path):
    with pytest.raises(FileFormatError, match="no such checkpoint file") as e:
        ck.open_checkpoint(tmp_path / "nope.h5")
    assert "nope.h5" in str(e.value)


def test_text_file(tmp_path):
    p = tmp_path / "notes.h5"
    p.write_text("hello\n")
    with pytest.raises(FileFormatError, match="not an HDF5 file"):
        ck.open_checkpoint(p)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.02])
def test_truncated_file(good_checkpoint, keep):
    data = good_checkpoint.read_bytes()
    good_checkpoint.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(FileFormatError, match="truncated or corrupt") as e:
        ck.load_checkpoint(good_checkpoint)
    assert str(good_checkpoint) in str(e.value)


def test_corrupted_bytes(good_checkpoint):
    data = bytearray(good_checkpoint.read_bytes())
    rng = np.random.default_rng(0)
    for i in rng.integers(0, len(data), 2000):
        data[i] ^= 0xFF
    good_checkpoint.write_bytes(bytes(data))
    with pytest.raises(FileFormatError):
        ck.load_checkpoint(good_checkpoint)


@pytest.mark.parametrize("name", ["rng", "state/genomes", "state/energy"])
def test_a_flipped_byte_inside_an_array_is_caught(good_checkpoint, name):
    with h5py.File(good_checkpoint, "r") as f:
        offset = f[name].id.get_chunk_info(0).byte_offset
    data = bytearray(good_checkpoint.read_bytes())
    data[offset + 3] ^= 0x10
    good_checkpoint.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="truncated or corrupt checkpoint"):
        ck.open_checkpoint(good_checkpoint)


def test_foreign_hdf5(tmp_path):
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(FileFormatError, match="not an alife checkpoint"):
        ck.open_checkpoint(p)


def test_newer_schema(good_checkpoint):
    _rewrite_attr(good_checkpoint, "schema", 99)
    with pytest.raises(FileFormatError, match="schema 99 is not supported"):
        ck.open_checkpoint(good_checkpoint)


def test_bad_metadata(good_checkpoint):
    _rewrite_attr(good_checkpoint, "meta", "{not json")
    with pytest.raises(FileFormatError, match="not valid JSON"):
        ck.open_checkpoint(good_checkpoint)


def test_layout_mismatch(good_checkpoint):
    with h5py.File(good_checkpoint, "r+") as f:
        meta = json.loads(f.attrs["meta"])
        meta["layout"][0]["shape"] = [99, 99]
        f.attrs["meta"] = json.dumps(meta)
    with pytest.raises(FileFormatError, match="genome layout does not match"):
        ck.load_checkpoint(good_checkpoint)


def test_missing_array(good_checkpoint):
    with h5py.File(good_checkpoint, "r+") as f:
        del f["state/genomes"]
    with pytest.raises(FileFormatError, match="lacks the array state/genomes"):
        ck.open_checkpoint(good_checkpoint)


def test_wrong_shape(good_checkpoint):
    with h5py.File(good_checkpoint, "r+") as f:
        del f["state/energy"]
        f["state/energy"] = np.zeros(7, dtype=np.float32)
    with pytest.raises(FileFormatError, match="state/energy has shape"):
        ck.open_checkpoint(good_checkpoint)


def test_device_mismatch_is_refused(good_checkpoint):
    with pytest.raises(UserError, match="saved on cpu"):
        ck.load_checkpoint(good_checkpoint, device="cuda")


# ------------------------------------------------------------------------------------ the CLI
def _summary(run_dir: Path) -> dict:
    s = json.loads((run_dir / "summary.json").read_text())
    for k in ("wall_time_s", "steps_per_s", "run_dir"):
        s.pop(k)
    return s


def _final_state(run_dir: Path) -> dict[str, np.ndarray]:
    c = ck.open_checkpoint(ck.latest_checkpoint(run_dir))
    return {**c.arrays, "rng": c.rng_state, "step": np.int64(c.step)}


def test_cli_resume_matches_an_uninterrupted_run(tmp_path, capsys):
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    base = ["run", "--no-progress", "--seed", "5", *SMALL_SET]
    assert main([*base, "--steps", "120", "--out", str(straight)]) == 0
    assert main([*base, "--steps", "70", "--checkpoint-every", "25", "--out", str(cut)]) == 0
    assert (cut / "world.toml").read_text() == (straight / "world.toml").read_text()
    assert json.loads((cut / "run.json").read_text())["seed"] == 5
    assert [s for s, _ in ck.list_checkpoints(cut)] == [25, 50, 70]
    assert main(["run", "--no-progress", "--resume", str(cut), "--steps", "120"]) == 0
    assert _summary(straight) == _summary(cut)
    assert_same_state(_final_state(straight), _final_state(cut))


def test_cli_resume_from_an_older_checkpoint_file(tmp_path):
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    base = ["run", "--no-progress", *SMALL_SET, "--no-record", "replay"]
    assert main([*base, "--steps", "60", "--out", str(straight)]) == 0
    assert main([*base, "--steps", "50", "--checkpoint-every", "20", "--out", str(cut)]) == 0
    assert main(["run", "--no-progress", "--resume", str(ck.checkpoint_path(cut, 20)), "--steps", "60"]) == 0
    assert _summary(straight) == _summary(cut)


def test_cli_resume_without_checkpoints_restarts_from_the_world_text(tmp_path):
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    base = ["run", "--no-progress", *SMALL_SET, "--no-record", "replay"]
    assert main([*base, "--steps", "40", "--out", str(straight)]) == 0
    assert main([*base, "--steps", "10", "--out", str(cut)]) == 0
    for p in (cut / "checkpoints").iterdir():  # as if killed before its first checkpoint
        p.unlink()
    (cut / "summary.json").unlink()
    assert main(["run", "--no-progress", "--resume", str(cut), "--steps", "40"]) == 0
    assert _summary(straight) == _summary(cut)


def test_cli_resume_refuses_changes_and_going_back(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["run", "--no-progress", *SMALL_SET, "--steps", "10", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["run", "--resume", str(run), "--seed", "4"]) == 2
    assert "do not give --seed" in capsys.readouterr().err
    assert main(["run", "--resume", str(run), "--steps", "5"]) == 2
    assert "already at step 10, past --steps 5" in capsys.readouterr().err
    assert main(["run", "--resume", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["run", "--resume", str(tmp_path)]) == 2
    assert "not an alife run folder" in capsys.readouterr().err
