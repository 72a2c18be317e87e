"""The lineage file's layout (schema 1), shared by the writer and the reader.

Every table is a set of one-dimensional (or ``[n, k]``) chunked, gzip-compressed, resizable column
datasets of fixed-size numeric types, appended to and never rewritten. ``/commits`` is the commit
table: one row per commit, ``[step, rows of every dataset in COLUMNS order..., checksum]``. A reader
takes the last row whose checksum matches and reads every dataset only up to the row count it
names, so a writer killed mid-append leaves a file that opens with every record up to its last
commit (see ``docs/lineage.md``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

FORMAT = "alife-lineage"
SCHEMA_VERSION = 1
#: the step stamped on records of the agents present before the first step (the roots)
ROOT_STEP = -1
#: strategy code 0 in ``births/strategy``: an initial agent, made by no strategy
INITIAL_STRATEGY = "initial"
COMMITS = "commits"


@dataclass(frozen=True)
class Column:
    path: str
    dtype: str
    tail: tuple[int, ...] = ()
    #: the column whose value is the record's step (used to roll back on resume)
    step_col: str | None = None


def columns(genome_size: int) -> list[Column]:
    """Every column dataset, in commit-table order."""
    cols = [
        Column("births/id", "i8", step_col="births/step"),
        Column("births/parents", "i8", (2,), step_col="births/step"),
        Column("births/step", "i8", step_col="births/step"),
        Column("births/species", "i8", step_col="births/step"),
        Column("births/strategy", "u1", step_col="births/step"),
        Column("births/digest", "u8", step_col="births/step"),
        Column("deaths/id", "i8", step_col="deaths/step"),
        Column("deaths/step", "i8", step_col="deaths/step"),
        Column("deaths/cause", "u1", step_col="deaths/step"),
        Column("deaths/offspring", "i8", step_col="deaths/step"),
        Column("deaths/lifetime_energy", "f4", step_col="deaths/step"),
        Column("species/id", "i8", step_col="species/origin_step"),
        Column("species/parent", "i8", step_col="species/origin_step"),
        Column("species/origin_step", "i8", step_col="species/origin_step"),
        Column("extinctions/species", "i8", step_col="extinctions/step"),
        Column("extinctions/step", "i8", step_col="extinctions/step"),
        Column("genomes/id", "i8", step_col="genomes/step"),
        Column("genomes/step", "i8", step_col="genomes/step"),
        Column("genomes/vector", "f4", (genome_size,), step_col="genomes/step"),
        Column("strategy_names", "S64"),
    ]
    for name in OBSERVABLES:
        cols.append(Column(f"observables/{name}/step", "i8", step_col=f"observables/{name}/step"))
        cols.append(Column(f"observables/{name}/value", "f8", step_col=f"observables/{name}/step"))
    return cols


#: population observables, H5MD-style ``observables/<name>/{step,value}``
OBSERVABLES = ("population", "mean_energy", "species_count", "diversity")


def chunk_rows(col: Column) -> int:
    row_bytes = np.dtype(col.dtype).itemsize * int(np.prod(col.tail, dtype=np.int64))
    return int(max(16, min(16384, (64 * 1024) // max(1, row_bytes))))


_MIX = np.array([0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB], dtype=np.uint64)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number
    generators", OOPSLA), applied elementwise to uint64."""
    x = np.asarray(x, dtype=np.uint64).copy()
    x ^= x >> np.uint64(30)
    x *= _MIX[1]
    x ^= x >> np.uint64(27)
    x *= _MIX[2]
    x ^= x >> np.uint64(31)
    return x


def checksum(values: np.ndarray) -> int:
    """A 63-bit checksum of a commit row's int64 values, so a torn row is never trusted."""
    v = mix64(np.asarray(values, dtype=np.int64).view(np.uint64) + _MIX[0])
    pos = mix64(np.arange(1, v.size + 1, dtype=np.uint64))
    return int((mix64(v ^ pos).sum(dtype=np.uint64) >> np.uint64(1)).astype(np.int64))


_DIGEST_MULT: dict[int, np.ndarray] = {}


def genome_digest(genomes: np.ndarray) -> np.ndarray:
    """A 64-bit digest per genome row (``[k, G]`` float32 -> ``[k]`` uint64), vectorised.

    Multilinear hashing of the float bit patterns with fixed odd 64-bit multipliers (Lemire &
    Kaser 2018, "Strongly universal string hashing is fast", Comput. J. 57(11)), then splitmix64's
    finaliser. Equal genomes give equal digests; it identifies genotypes, it is not cryptographic.
    The multipliers are ``numpy.random.default_rng(20261123).integers(1, 2**63, G) | 1``.
    """
    g = np.ascontiguousarray(genomes, dtype=np.float32)
    size = g.shape[1]
    mult = _DIGEST_MULT.get(size)
    if mult is None:
        mult = np.random.default_rng(20261123).integers(1, 2**63, size, dtype=np.uint64) | np.uint64(1)
        _DIGEST_MULT[size] = mult
    bits = g.view(np.uint32).astype(np.uint64)
    return mix64((bits * mult).sum(axis=1, dtype=np.uint64))


def create(path: str | Path, attrs: dict[str, object], genome_size: int) -> None:
    """Create an empty lineage file (not in SWMR mode) with every dataset and a first commit."""
    cols = columns(genome_size)
    with h5py.File(path, "w", libver="latest") as f:
        for k, v in attrs.items():
            f.attrs[k] = json.dumps(v) if isinstance(v, dict | list) else v
        f.attrs["format"] = FORMAT
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["root_step"] = ROOT_STEP
        f.attrs["genome_size"] = genome_size
        for c in cols:
            f.create_dataset(c.path, shape=(0, *c.tail), maxshape=(None, *c.tail), dtype=c.dtype,
                             chunks=(chunk_rows(c), *c.tail), compression="gzip",
                             compression_opts=4, shuffle=True)
        ncol = len(cols) + 2
        d = f.create_dataset(COMMITS, shape=(0, ncol), maxshape=(None, ncol), dtype="i8",
                             chunks=(256, ncol))
        d.attrs["columns"] = json.dumps(["step", *[c.path for c in cols], "checksum"])
        row = np.zeros(ncol, dtype=np.int64)
        row[0] = ROOT_STEP - 1
        row[-1] = checksum(row[:-1])
        d.resize((1, ncol))
        d[0] = row


def write_file(path: str | Path, attrs: dict[str, object], genome_size: int,
               data: dict[str, np.ndarray], step: int) -> None:
    """Create a complete lineage file from column arrays (missing columns stay empty) with one
    commit at ``step``. The writer uses it to roll back on resume; tests build synthetic files."""
    cols = columns(genome_size)
    unknown = set(data) - {c.path for c in cols}
    if unknown:
        raise ValueError(f"unknown lineage columns {sorted(unknown)}")
    create(path, attrs, genome_size)
    with h5py.File(path, "r+", libver="latest") as f:
        for c in cols:
            if c.path in data:
                arr = np.asarray(data[c.path], dtype=c.dtype).reshape(-1, *c.tail)
                f[c.path].resize((len(arr), *c.tail))
                f[c.path][...] = arr
        append_commit(f, step, cols)


def append_commit(f: h5py.File, step: int, cols: list[Column]) -> None:
    """Append one commit row: ``step``, every column's current length, the checksum."""
    d = f[COMMITS]
    row = np.empty(len(cols) + 2, dtype=np.int64)
    row[0] = step
    row[1:-1] = [f[c.path].shape[0] for c in cols]
    row[-1] = checksum(row[:-1])
    n = d.shape[0]
    d.resize((n + 1, d.shape[1]))
    d[n] = row


def last_commit(commits: np.ndarray) -> np.ndarray | None:
    """The last commit row whose checksum matches (``None`` when there is none)."""
    for i in range(commits.shape[0] - 1, -1, -1):
        row = commits[i]
        if checksum(row[:-1]) == int(row[-1]):
            return row
    return None
