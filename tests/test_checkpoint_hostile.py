"""Checkpoints and run folders from someone else: nothing in them is imported, every dataset is
checked before it is read, every id within its table, and a resume checks the run's identity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from alife import checkpoint as ck
from alife.cli.main import main
from alife.errors import FileFormatError
from alife.simulation import Simulation

SMALL = {"world.width": 32, "world.height": 32, "world.initial_agents": 80, "world.capacity": 256,
         "world.extinction": "reseed"}
SMALL_SET = [f"--set={k}={v}" for k, v in SMALL.items()]
ROOT = Path(__file__).resolve().parents[1]

EVIL = """
from pathlib import Path
Path({marker!r}).write_text("imported")
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A checkpoint of a small world at step 20 (with an extinction pool)."""
    sim = Simulation(None, seed=4, device="cpu", overrides=SMALL)
    sim.run(20, stop_on_extinction=False)
    path = ck.save_checkpoint(sim, tmp_path_factory.mktemp("base") / "step-0000000020.h5")
    sim.close()
    return path


@pytest.fixture
def cp(base, tmp_path) -> Path:
    dst = tmp_path / base.name
    shutil.copy(base, dst)
    return dst


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "run"
    assert main(["run", "--no-progress", *SMALL_SET, "--seed", "4", "--steps", "10", "--out", str(run)]) == 0
    return run


@pytest.fixture
def run(run_folder, tmp_path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(run_folder, dst)
    return dst


def edit_meta(path: Path, change) -> None:
    with h5py.File(path, "r+") as f:
        meta = json.loads(f.attrs["meta"])
        change(meta)
        f.attrs["meta"] = json.dumps(meta)


def replace(path: Path, key: str, **kwargs) -> None:
    with h5py.File(path, "r+") as f:
        del f[key]
        f.create_dataset(key, **kwargs)


def evil(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "imported.txt"
    d = tmp_path / "evil"
    d.mkdir()
    (d / "evil_plugin.py").write_text(EVIL.format(marker=str(marker)))
    return d / "evil_plugin.py", marker


# ------------------------------------------------------------------- no code from a file
@pytest.mark.parametrize("how", ["absolute", "relative to world_base_dir"])
def test_checkpoint_naming_a_plugin_file_imports_nothing(run, tmp_path, capsys, how):
    plugin, marker = evil(tmp_path)
    latest = ck.latest_checkpoint(run)

    def change(meta):
        if how == "absolute":
            meta["config"]["plugins"] = [str(plugin)]
        else:
            meta["config"]["plugins"] = ["evil_plugin.py"]
            meta["world_base_dir"] = str(plugin.parent)
    edit_meta(latest, change)
    rc = main(["run", "--no-progress", "--resume", str(run), "--steps", "14"])
    assert not marker.exists(), "resuming imported a plugin file named in the checkpoint"
    assert rc == 0, capsys.readouterr().err


def test_load_checkpoint_imports_nothing(cp, tmp_path):
    plugin, marker = evil(tmp_path)
    edit_meta(cp, lambda m: m["config"].update(plugins=[str(plugin)]))
    sim = ck.load_checkpoint(cp)
    sim.close()
    assert not marker.exists()


def test_run_json_naming_plugins_imports_nothing(run, tmp_path, capsys):
    plugin, marker = evil(tmp_path)
    record = json.loads((run / "run.json").read_text())
    record["args"]["plugins_dir"] = [str(plugin.parent)]
    record["args"]["modules"] = ["evil_plugin"]
    (run / "run.json").write_text(json.dumps(record))
    rc = main(["run", "--no-progress", "--resume", str(run), "--steps", "14"])
    assert not marker.exists()
    assert rc == 0, capsys.readouterr().err


def test_world_toml_plugins_of_a_run_killed_before_its_first_checkpoint_import_nothing(run, tmp_path, capsys):
    plugin, marker = evil(tmp_path)
    shutil.rmtree(run / "checkpoints")
    (run / "world.toml").write_text(f"plugins = [{str(plugin)!r}]\n" + (run / "world.toml").read_text())
    main(["run", "--no-progress", "--resume", str(run), "--steps", "3"])
    assert not marker.exists()


def test_resume_without_the_runs_plugins_is_refused_by_name(tmp_path, capsys):
    """A run of the 1/5 rule example (its world lists one_fifth.py): a resume that does not load
    the plugin is refused naming it and saying how; with the world file next to --resume it runs."""
    run = tmp_path / "run"
    world = str(ROOT / "docs" / "examples" / "one_fifth.toml")
    assert main(["run", "--no-progress", world, *SMALL_SET, "--steps", "6", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["run", "--no-progress", "--resume", str(run), "--steps", "8"]) == 2
    err = capsys.readouterr().err
    assert "'one-fifth'" in err and "--resume" in err and len(err.strip().splitlines()) == 1
    assert main(["run", "--no-progress", world, "--resume", str(run), "--steps", "8"]) == 0
    # a plugin the run was not saved with is refused too
    assert main(["run", "--no-progress", world, "--resume", str(run), "--steps", "10",
                 "--plugins-dir", str(ROOT / "plugins")]) == 2
    assert "was not saved with" in capsys.readouterr().err


def test_resume_with_another_world_file_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    world = str(ROOT / "docs" / "examples" / "one_fifth.toml")
    assert main(["run", "--no-progress", world, *SMALL_SET, "--steps", "4", "--out", str(run)]) == 0
    other = tmp_path / "other.toml"
    other.write_text((ROOT / "docs" / "examples" / "one_fifth.toml").read_text()
                     .replace('plugins = ["one_fifth.py"]', f'plugins = ["{ROOT}/docs/examples/one_fifth.py"]')
                     + "\n[agent]\nmax_speed = 1.25\n")
    capsys.readouterr()
    assert main(["run", "--no-progress", str(other), "--resume", str(run), "--steps", "6"]) == 2
    assert "is not this checkpoint's world" in capsys.readouterr().err


# ------------------------------------------------------------------- validation before allocation
def test_species_ids_out_of_range_are_refused(cp):
    with h5py.File(cp, "r+") as f:
        sp = f["state/species"][()]
        alive = f["state/alive"][()]
        sp[np.flatnonzero(alive)[0]] = 10**9
        del f["state/species"]
        f.create_dataset("state/species", data=sp, compression="gzip")
    with pytest.raises(FileFormatError, match="state/species: an id outside the species table"):
        ck.open_checkpoint(cp)


def test_negative_step_is_refused(cp):
    edit_meta(cp, lambda m: m.update(step=-5))
    with pytest.raises(FileFormatError, match="'step' must be >= 0"):
        ck.open_checkpoint(cp)


def test_negative_step_does_not_wipe_the_runs_lineage(run, capsys):
    lineage, replay = (run / "lineage.h5").read_bytes(), (run / "replay.h5").read_bytes()
    edit_meta(ck.latest_checkpoint(run), lambda m: m.update(step=-5))
    assert main(["run", "--no-progress", "--resume", str(run), "--steps", "20"]) == 2
    assert "'step' must be >= 0" in capsys.readouterr().err
    assert (run / "lineage.h5").read_bytes() == lineage
    assert (run / "replay.h5").read_bytes() == replay


@pytest.mark.parametrize("key,kwargs,match", [
    ("state/species_founder", {"shape": (10**9, 4), "dtype": np.float32, "chunks": (1024, 4), "compression": "gzip"},
     "declares 16000000000 bytes but holds 0 on disk"),
    ("state/genomes", {"shape": (256, 494), "dtype": np.float64}, "state/genomes is float64, expected float32"),
    ("state/energy", {"data": np.array(["x"] * 256, dtype=object), "dtype": h5py.string_dtype()},
     "state/energy is object, expected float32"),
    ("state/energy", {"data": np.zeros(255, np.float32)}, r"state/energy has shape \(255,\), expected \(256,\)"),
    ("rng", {"shape": (10**10,), "dtype": np.uint8, "chunks": (1 << 16,)}, "declares 10000000000 bytes"),
])
def test_bad_datasets_are_refused_before_reading(cp, key, kwargs, match):
    replace(cp, key, **kwargs)
    with pytest.raises(FileFormatError, match=match):
        ck.open_checkpoint(cp)


def test_external_storage_is_refused(cp, tmp_path):
    raw = tmp_path / "outside.bin"
    np.zeros(256, np.float32).tofile(raw)
    replace(cp, "state/energy", shape=(256,), dtype=np.float32, external=[(str(raw), 0, 1024)])
    with pytest.raises(FileFormatError, match="state/energy keeps its data outside this file"):
        ck.open_checkpoint(cp)


@pytest.mark.parametrize("kind", ["soft", "external"])
def test_links_are_refused(cp, tmp_path, kind):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as g:
        g["ids"] = np.zeros(256, np.int64)
    with h5py.File(cp, "r+") as f:
        del f["state/ids"]
        f["state/ids"] = h5py.SoftLink("/state/age") if kind == "soft" else h5py.ExternalLink(str(other), "ids")
    with pytest.raises(FileFormatError, match=f"state/ids is an? {kind} link"):
        ck.open_checkpoint(cp)


@pytest.mark.parametrize("change,match", [
    (lambda m: m.update(step="ten"), "'step' must be an integer, got str"),
    (lambda m: m.update(hw=[1]), "'hw' must be an integer, got list"),
    (lambda m: m.update(next_id=True), "'next_id' must be an integer, got bool"),
    (lambda m: m.update(config=[1, 2]), "'config' must be a dict, got list"),
    (lambda m: m.update(layout={"a": 1}), "'layout' must be a list, got dict"),
    (lambda m: m["totals"].update(births="many"), "totals.births must be an integer"),
    (lambda m: m.update(plugins="one_fifth.py"), "'plugins' must be a list"),
    (lambda m: m.update(plugins=[{"name": 3}]), "'plugins' must be a list of"),
    (lambda m: m.update(run={"population_min": "x"}), "'population_min' must be an integer"),
    (lambda m: m.update(layout=[{"segment": 1}]), "'layout' is not a genome layout table"),
    (lambda m: m.update(generator_device="tpu"), "'generator_device' must be cpu or cuda"),
    (lambda m: m["config"]["world"].update(width="wide"), "the world saved in the checkpoint is not valid here"),
    (lambda m: m.update(capacity=10**12), "does not match its world's world.capacity"),
    (lambda m: m.update(hw=10**6), "hw 1000000 is past the capacity 256"),
])
def test_doctored_metadata_is_one_line(cp, change, match):
    edit_meta(cp, change)
    with pytest.raises(FileFormatError, match=match) as e:
        ck.open_checkpoint(cp)
    assert "\n" not in str(e.value)


def test_metadata_of_the_wrong_type_is_one_line(cp):
    with h5py.File(cp, "r+") as f:
        f.attrs["meta"] = np.arange(5)
    with pytest.raises(FileFormatError, match="metadata is missing or not valid JSON"):
        ck.open_checkpoint(cp)


def _edit_array(path: Path, key: str, edit) -> None:
    with h5py.File(path, "r+") as f:
        a = f[key][()]
        alive = f["state/alive"][()]
        edit(a, np.flatnonzero(alive)[0], f)
        del f[key]
        f.create_dataset(key, data=a)


@pytest.mark.parametrize("key,edit,match", [
    ("state/parents", lambda a, i, f: a.__setitem__((i, 0), 10**12), "state/parents: a parent id outside"),
    ("state/ids", lambda a, i, f: a.__setitem__(i, -7), "state/ids: a living agent's id outside"),
    ("state/ids", lambda a, i, f: a.__setitem__(i + 1, a[i]), "two living agents share an id"),
    ("state/strategy", lambda a, i, f: a.__setitem__(i, 99), "state/strategy: a code outside"),
    ("state/alive", lambda a, i, f: a.__setitem__(255, True), "a living agent at or past hw"),
    ("state/age", lambda a, i, f: a.__setitem__(i, -1), "state/age: a negative value"),
    ("state/species_parent", lambda a, i, f: a.__setitem__(0, 10**9), "state/species_parent: an id outside"),
    ("pool/species", lambda a, i, f: a.__setitem__(0, 10**9), "pool/species: an id outside"),
    ("pool/ids", lambda a, i, f: a.__setitem__(0, 10**12), "pool/ids: an id outside"),
])
def test_ids_and_codes_out_of_range_are_refused(cp, key, edit, match):
    _edit_array(cp, key, edit)
    with pytest.raises(FileFormatError, match=match):
        ck.open_checkpoint(cp)


def test_next_id_below_the_ids_is_refused(cp):
    edit_meta(cp, lambda m: m.update(next_id=3))
    with pytest.raises(FileFormatError, match="id outside"):
        ck.open_checkpoint(cp)


def test_step_in_name_and_metadata_must_agree(cp):
    other = cp.with_name("step-0000000030.h5")
    cp.rename(other)
    with pytest.raises(FileFormatError, match="its name says step 30 but its metadata says step 20"):
        ck.open_checkpoint(other)


# ------------------------------------------------------------------- identity
def test_edited_world_in_metadata_is_refused_by_its_identity(cp):
    edit_meta(cp, lambda m: m["config"]["agent"].update(max_speed=1.75))
    with pytest.raises(FileFormatError, match="identity digest does not match"):
        ck.open_checkpoint(cp)


def test_checkpoint_of_another_world_with_the_same_seed_is_refused(run, tmp_path, capsys):
    other = tmp_path / "other"
    assert main(["run", "--no-progress", *SMALL_SET, "--set=agent.max_speed=1.5", "--seed", "4",
                 "--steps", "12", "--out", str(other)]) == 0
    theirs = ck.latest_checkpoint(other)
    shutil.copy(theirs, run / "checkpoints" / theirs.name)
    lineage = (run / "lineage.h5").read_bytes()
    capsys.readouterr()
    assert main(["run", "--no-progress", "--resume", str(run), "--steps", "20"]) == 2
    assert "not of this run folder's run: it has another world configuration" in capsys.readouterr().err
    assert (run / "lineage.h5").read_bytes() == lineage  # refused before anything was written


def test_identity_is_in_checkpoints_and_run_json(run):
    record = json.loads((run / "run.json").read_text())
    meta = ck.open_checkpoint(ck.latest_checkpoint(run)).meta
    assert record["identity"]["digest"] == meta["identity"]["digest"]
    assert set(record["identity"]) == {"world", "layout", "plugins", "digest"}
