"""Bad lineage files: a clear one-line message and exit status 2, never a traceback."""

from __future__ import annotations

import shutil

import h5py
import pytest

import alife
from alife.cli.main import main
from alife.errors import FileFormatError

PARENTS = [(-1, -1), (0, -1), (1, -1)]
STEPS = [-1, 2, 5]


def check_cli(path, capsys, words: str) -> None:
    assert main(["lineage", str(path), "summary"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("alife: error: ") and err.count("\n") == 1, err
    assert words in err
    assert "Traceback" not in err


def test_missing_file(tmp_path, capsys):
    with pytest.raises(FileFormatError, match="no such file"):
        alife.lineage.open(tmp_path / "nope.h5")
    check_cli(tmp_path / "nope.h5", capsys, "no such file")


def test_not_hdf5(tmp_path, capsys):
    p = tmp_path / "notes.h5"
    p.write_text("id,ancestor_list\n0,[none]\n")
    with pytest.raises(FileFormatError, match="not an HDF5 file"):
        alife.lineage.open(p)
    check_cli(p, capsys, "not an HDF5 file")


def test_truncated(make_synthetic, tmp_path, capsys):
    src = make_synthetic(PARENTS, STEPS, {})
    data = src.read_bytes()
    for cut in (len(data) // 2, 600, 64):
        p = tmp_path / f"cut{cut}.h5"
        p.write_bytes(data[:cut])
        with pytest.raises(FileFormatError):
            alife.lineage.open(p)
        check_cli(p, capsys, str(p))


def test_newer_schema(make_synthetic, tmp_path, capsys):
    p = tmp_path / "future.h5"
    shutil.copy(make_synthetic(PARENTS, STEPS, {}), p)
    with h5py.File(p, "r+") as f:
        f.attrs["schema_version"] = 99
    with pytest.raises(FileFormatError, match="schema 99 is newer"):
        alife.lineage.open(p)
    check_cli(p, capsys, "upgrade alife")


def test_foreign_hdf5(tmp_path, capsys):
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f["x"] = [1, 2, 3]
    with pytest.raises(FileFormatError, match="not a lineage file"):
        alife.lineage.open(p)
    check_cli(p, capsys, "not a lineage file")


def test_torn_last_commit_is_skipped(make_synthetic, tmp_path):
    p = tmp_path / "torn.h5"
    shutil.copy(make_synthetic(PARENTS, STEPS, {}), p)
    with h5py.File(p, "r+") as f:
        c = f["commits"]
        row = c[-1].copy()
        row[0] = 12345  # a commit row whose checksum no longer matches
        c.resize((c.shape[0] + 1, c.shape[1]))
        c[-1] = row
    assert alife.lineage.open(p).last_step == 5


def test_unknown_agent(make_synthetic, capsys):
    p = make_synthetic(PARENTS, STEPS, {})
    assert main(["lineage", str(p), "ancestry", "77"]) == 2
    assert "no agent with id 77" in capsys.readouterr().err
