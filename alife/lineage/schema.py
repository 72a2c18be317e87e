"""The lineage file's layout (schema 2), shared by the writer and the reader.

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
SCHEMA_VERSION = 2
#: schema 2 adds the plugins' series (``plugin_series/{step,key,value}`` and their names); a
#: schema-1 file reads with those empty, and a resumed one is rewritten as schema 2
PLUGIN_SERIES_SINCE = 2
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


def columns(genome_size: int, version: int = SCHEMA_VERSION) -> list[Column]:
    """Every column dataset of a file of schema ``version``, in commit-table order."""
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
    if version >= PLUGIN_SERIES_SINCE:
        # long format: one row per (step, series) sample; ``key`` indexes plugin_series_names
        cols += [Column("plugin_series/step", "i8", step_col="plugin_series/step"),
                 Column("plugin_series/key", "u2", step_col="plugin_series/step"),
                 Column("plugin_series/value", "f8", step_col="plugin_series/step"),
                 Column("plugin_series_names", "S64")]
    return cols


#: the most series names a file holds (``plugin_series/key`` is uint16)
MAX_SERIES = 65535


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


def create(path: str | Path, attrs: dict[str, object], genome_size: int, version: int = SCHEMA_VERSION) -> None:
    """Create an empty lineage file (not in SWMR mode) with every dataset and a first commit
    (``version``: an older schema, for tests of reading old files)."""
    cols = columns(genome_size, version)
    with h5py.File(path, "w", libver="latest") as f:
        for k, v in attrs.items():
            f.attrs[k] = json.dumps(v) if isinstance(v, dict | list) else v
        f.attrs["format"] = FORMAT
        f.attrs["schema_version"] = version
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
               data: dict[str, np.ndarray], step: int, version: int = SCHEMA_VERSION) -> None:
    """Create a complete lineage file from column arrays (missing columns stay empty) with one
    commit at ``step``. The writer uses it to roll back on resume; tests build synthetic files."""
    cols = columns(genome_size, version)
    unknown = set(data) - {c.path for c in cols}
    if unknown:
        raise ValueError(f"unknown lineage columns {sorted(unknown)}")
    create(path, attrs, genome_size, version)
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


def checksums(rows: np.ndarray) -> np.ndarray:
    """:func:`checksum` of every row of ``rows [c, k]`` at once (int64 ``[c]``)."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.ndim != 2 or rows.shape[1] == 0:
        return np.zeros(rows.shape[0] if rows.ndim else 0, dtype=np.int64)
    v = mix64(rows.view(np.uint64) + _MIX[0])
    pos = mix64(np.arange(1, rows.shape[1] + 1, dtype=np.uint64))
    return (mix64(v ^ pos[None, :]).sum(axis=1, dtype=np.uint64) >> np.uint64(1)).astype(np.int64)


def last_commit(commits: np.ndarray) -> np.ndarray | None:
    """The last commit row whose checksum matches (``None`` when there is none)."""
    if commits.ndim != 2 or commits.shape[0] == 0 or commits.shape[1] < 2:
        return None
    good = np.flatnonzero(checksums(commits[:, :-1]) == commits[:, -1])
    return commits[good[-1]] if good.size else None


# ---------------------------------------------------------------------- checks shared by readers
#: deflate (RFC 1951) cannot expand data by more than about 1032:1 (a 258-byte match costs at
#: least 2 bits), and the zlib wrapper only adds bytes: ``rows x row bytes`` read from gzip-
#: compressed chunks is at most this many times the bytes those chunks occupy on disk
MAX_DEFLATE_RATIO = 1032
#: the HDF5 filters a file of ours may use: deflate, shuffle, fletcher32
ALLOWED_FILTERS = {1: "gzip", 2: "shuffle", 3: "fletcher32"}
#: the largest chunk a reader accepts (our chunks are 64 KiB of rows, a resource frame, or 16
#: genome rows); HDF5 decodes a whole chunk to read any row of it
MAX_CHUNK_BYTES = 64 << 20
#: allowance per dataset for a last chunk a live writer has sized but not yet stored
_SLACK_BYTES = 1 << 20


class FileProblem(ValueError):
    """A dataset or attribute of a file is not what the format allows; the message says which."""


def regular_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as an HDF5 file of ours without opening it (a FIFO would block
    the open, a device would never end), or ``None``."""
    import stat

    try:
        st = path.stat()
    except FileNotFoundError:
        return "no such file"
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    if stat.S_ISDIR(st.st_mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "special")
        return f"not a regular file ({kind})"
    return None


def open_for_reading(path: Path) -> h5py.File:
    """Open an HDF5 file for reading without HDF5 file locking, so a reader never blocks a writer
    (nor a writer's reopen after compaction fails because someone reads). A file a SWMR writer has
    open (or was killed holding) is opened in SWMR read mode. Raises ``OSError`` as h5py does."""
    try:
        return h5py.File(path, "r", locking=False)
    except OSError as e:
        msg = str(e)
        if "already open for write" in msg:
            return h5py.File(path, "r", swmr=True, locking=False)
        if "locking flag values don't match" not in msg:
            raise
    # this process already holds the file with HDF5's default locking (a writer of another kind)
    try:
        return h5py.File(path, "r")
    except OSError as e:
        if "already open" not in str(e):
            raise
        return h5py.File(path, "r", swmr=True)


def scalar_attr(attrs: h5py.AttributeManager | dict, name: str, kind: type, lo: float | None = None,
                hi: float | None = None, default: object = None) -> object:
    """An attribute that must be one number (``kind`` int or float) within ``[lo, hi]``, or one
    string (``kind`` str). Raises :class:`FileProblem`."""
    if name not in attrs:
        if default is not None:
            return default
        raise FileProblem(f"attribute '{name}' is missing")
    v = attrs[name]
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    if kind is str:
        if isinstance(v, bytes):
            try:
                v = v.decode()
            except UnicodeDecodeError:
                raise FileProblem(f"attribute '{name}' is not text") from None
        if not isinstance(v, str):
            raise FileProblem(f"attribute '{name}' should be text, got {type(v).__name__}")
        return v
    ok = (isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)) if kind is int \
        else isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)
    if not ok:
        raise FileProblem(f"attribute '{name}' should be one {'integer' if kind is int else 'number'}, "
                          f"got {_describe(v)}")
    v = kind(v)
    if kind is float and not np.isfinite(v):
        raise FileProblem(f"attribute '{name}' is {v}, not a finite number")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        within = f"outside [{lo}, {hi}]" if lo is not None and hi is not None else \
            f"below {lo}" if lo is not None else f"above {hi}"
        raise FileProblem(f"attribute '{name}' is {v}, {within}")
    return v


def _describe(v: object) -> str:
    if isinstance(v, np.ndarray):
        return f"an array of shape {v.shape} ({v.dtype})"
    return f"{v!r} ({type(v).__name__})"[:80]


def checked_dataset(f: h5py.File, name: str, dtype: str | np.dtype, tail: tuple[int, ...] | None,
                    rows: int, file_size: int) -> h5py.Dataset:
    """The dataset ``name`` after every check a reader needs before it reads ``rows`` rows of it.

    Every link on the path is a hard link (no soft or external links); it is a dataset of exactly
    ``dtype`` (so no variable-length strings or other types where numbers belong) with ``1 +
    len(tail)`` dimensions, the trailing ones ``tail`` (``None``: any); its data is in this file (no
    external storage, not virtual) and passes only through :data:`ALLOWED_FILTERS`; its chunks are
    at most :data:`MAX_CHUNK_BYTES`; it has at least ``rows`` rows; and those rows fit in the bytes
    the dataset occupies on disk (times :data:`MAX_DEFLATE_RATIO` when compressed), so a dataset
    declared huge in a small file is refused before anything is allocated. Raises
    :class:`FileProblem`.
    """
    parts = name.split("/")
    for i in range(1, len(parts) + 1):
        sub = "/".join(parts[:i])
        link = f.get(sub, getlink=True)
        if link is None:
            raise FileProblem(f"{name} is missing")
        if not isinstance(link, h5py.HardLink):
            kind = {h5py.SoftLink: "a soft link", h5py.ExternalLink: "an external link"}.get(type(link), "a link")
            raise FileProblem(f"{sub} is {kind}; a file of ours has only plain links")
    d = f[name]
    if not isinstance(d, h5py.Dataset):
        raise FileProblem(f"{name} is not a dataset")
    want = np.dtype(dtype)
    if d.dtype != want:
        raise FileProblem(f"{name} has type {d.dtype}, expected {want}")
    if tail is not None and (d.ndim != 1 + len(tail) or tuple(d.shape[1:]) != tuple(tail)):
        raise FileProblem(f"{name} has shape {d.shape}, expected (rows, {', '.join(map(str, tail))})"
                          if tail else f"{name} has shape {d.shape}, expected one dimension")
    if d.ndim == 0:
        raise FileProblem(f"{name} is a scalar, expected rows")
    if d.is_virtual or d.external:
        raise FileProblem(f"{name} keeps its data outside this file (external or virtual storage)")
    dcpl = d.id.get_create_plist()
    compressed = False
    for i in range(dcpl.get_nfilters()):
        code = int(dcpl.get_filter(i)[0])
        if code not in ALLOWED_FILTERS:
            raise FileProblem(f"{name} uses HDF5 filter {code}, which a file of ours never uses")
        compressed |= code == 1
    row_bytes = want.itemsize * int(np.prod(d.shape[1:], dtype=np.int64))
    chunk_bytes = want.itemsize * int(np.prod(d.chunks, dtype=np.float64)) if d.chunks else 0
    if chunk_bytes > MAX_CHUNK_BYTES:
        raise FileProblem(f"{name} has chunks of {chunk_bytes} bytes (at most {MAX_CHUNK_BYTES})")
    if rows < 0 or rows > d.shape[0]:
        raise FileProblem(f"{name} holds {d.shape[0]} rows but {rows} are declared")
    need = rows * row_bytes
    if need:
        stored = min(int(d.id.get_storage_size()), int(file_size))
        can = stored * (MAX_DEFLATE_RATIO if compressed else 1) + min(chunk_bytes, _SLACK_BYTES)
        if need > can:
            raise FileProblem(f"{name} declares {rows} rows ({need} bytes) but its {stored} bytes on "
                              f"disk can hold at most {can}")
    return d
