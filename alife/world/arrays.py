"""Arrays plugins register with the engine: per slot and per species.

A strategy's state that belongs to agents (a learning rate, a success counter) or to species (a
search distribution, a step size) lives here, not in module globals: the engine gives a child its
value at birth (copied from its first parent, averaged over both parents, or reset), grows the
per-species arrays whenever a species is founded (copied from its parent species, or reset),
counts them in the memory check, saves them in checkpoints and restores them on resume, and
recorders can read them (``sim.arrays[name]``).

Register in ``alife_setup`` (see :mod:`alife.plugins.hookspecs`)::

    sim.arrays.add_slot("rate.lr", dtype=torch.float32, inherit="mean", fill=1e-3)
    sim.arrays.add_species("one-fifth.sigma", fill=0.05, inherit="parent")
    sigma = sim.arrays["one-fifth.sigma"]          # [species, *shape]; re-read after births

Per-species arrays are replaced by larger tensors as species are founded: hold the name, not the
tensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

SLOT_INHERIT = ("first", "mean", "reset")
#: the per-agent reproduction threshold (``reproduce_energy_per_agent``): when a plugin has
#: registered it, ``energy-threshold`` selection (and novelty in the world) read it in place of
#: ``agent.reproduce_energy``
REPRODUCE_ENERGY = "agent.reproduce_energy"
SPECIES_INHERIT = ("parent", "reset")
_DTYPES = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64,
           "int32": torch.int32, "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8,
           "bool": torch.bool}


@dataclass(frozen=True)
class ArraySpec:
    name: str
    kind: str                 # "slot" or "species"
    shape: tuple[int, ...]    # per row
    dtype: torch.dtype
    inherit: str
    fill: float
    owner: str                # the plugin that registered it (for messages)

    @property
    def row_bytes(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n * torch.empty((), dtype=self.dtype).element_size()


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class PluginArrays:
    """The registry of plugin arrays of one simulation (``sim.arrays``)."""

    def __init__(self, capacity: int, device: torch.device):
        self.capacity = capacity
        self.device = device
        self.specs: dict[str, ArraySpec] = {}
        self._t: dict[str, torch.Tensor] = {}
        #: the storage behind each per-species array (rows to spare; ``_t`` views its first rows)
        self._store: dict[str, torch.Tensor] = {}
        self.n_species = 0
        self._owner = "?"

    # ------------------------------------------------------------------ registering
    def add_slot(self, name: str, shape: tuple[int, ...] = (), dtype: torch.dtype = torch.float32,
                 inherit: str = "first", fill: float = 0.0) -> torch.Tensor:
        """A ``[capacity, *shape]`` array, one row per slot. ``inherit``: what a child gets,
        ``first`` (its first parent's row), ``mean`` (the mean of both parents', floats only) or
        ``reset`` (``fill``). Initial agents get ``fill``."""
        spec = self._spec(name, "slot", shape, dtype, inherit, fill, SLOT_INHERIT)
        if inherit == "mean" and not dtype.is_floating_point:
            raise ValueError(f"array {name!r}: inherit='mean' needs a float dtype, got {dtype_name(dtype)}")
        t = torch.full((self.capacity, *spec.shape), fill, dtype=dtype, device=self.device)
        self.specs[name], self._t[name] = spec, t
        return t

    def add_species(self, name: str, shape: tuple[int, ...] = (), dtype: torch.dtype = torch.float32,
                    inherit: str = "parent", fill: float = 0.0) -> None:
        """A ``[species, *shape]`` array, one row per species, grown as species are founded.
        ``inherit``: a new species' row is its parent species' row (``parent``; founders get
        ``fill``) or ``fill`` (``reset``)."""
        spec = self._spec(name, "species", shape, dtype, inherit, fill, SPECIES_INHERIT)
        self.specs[name] = spec
        self._t[name] = torch.full((self.n_species, *spec.shape), fill, dtype=dtype, device=self.device)

    def _spec(self, name: str, kind: str, shape: Any, dtype: torch.dtype, inherit: str, fill: float,
              allowed: tuple[str, ...]) -> ArraySpec:
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"array name must be a non-empty string without '/', got {name!r}")
        if name in self.specs:
            raise ValueError(f"array {name!r} is registered twice (by {self.specs[name].owner!r} and {self._owner!r})")
        if dtype not in _DTYPES.values():
            raise ValueError(f"array {name!r}: dtype {dtype} is not one of {', '.join(_DTYPES)}")
        if inherit not in allowed:
            raise ValueError(f"array {name!r}: inherit must be one of {', '.join(allowed)}, got {inherit!r}")
        shape = tuple(int(d) for d in (shape if isinstance(shape, tuple | list) else (shape,)))
        if any(d < 1 for d in shape):
            raise ValueError(f"array {name!r}: shape {list(shape)} must hold positive sizes")
        return ArraySpec(name, kind, shape, dtype, inherit, float(fill), self._owner)

    # ------------------------------------------------------------------ reading
    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self._t[name]
        except KeyError:
            raise KeyError(f"no plugin array {name!r}; registered: {sorted(self._t) or 'none'}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._t

    def __len__(self) -> int:
        return len(self._t)

    def names(self, kind: str | None = None) -> list[str]:
        return [n for n, s in self.specs.items() if kind is None or s.kind == kind]

    def slot_bytes(self) -> int:
        """Bytes per slot of every per-slot array (for the memory check)."""
        return sum(s.row_bytes for s in self.specs.values() if s.kind == "slot")

    # ------------------------------------------------------------------ engine calls
    def births(self, free: torch.Tensor, parents: torch.Tensor, partners: torch.Tensor) -> None:
        """Give the children in slots ``free`` their rows (after they are placed)."""
        for name, spec in self.specs.items():
            if spec.kind != "slot":
                continue
            t = self._t[name]
            if spec.inherit == "reset":
                t[free] = spec.fill
            elif spec.inherit == "first":
                t[free] = t[parents]
            else:
                two = partners >= 0
                a = t[parents]
                b = t[partners.clamp(min=0)]
                mask = two.view(-1, *([1] * len(spec.shape)))
                t[free] = torch.where(mask, (a + b) * 0.5, a)

    def new_species(self, parents: torch.Tensor, total: int) -> None:
        """Grow every per-species array to ``total`` rows; the new rows' parent species are
        ``parents`` (-1: a founder). Storage doubles when it runs out, so founding species one at
        a time costs amortised O(1) rows each, not a copy of the whole array each time;
        ``self[name]`` is always a view of exactly ``n_species`` rows."""
        m = total - self.n_species
        if m <= 0:
            return
        n0 = self.n_species
        for name, spec in self.specs.items():
            if spec.kind != "species":
                continue
            t = self._t[name]
            buf = self._store.get(name)
            if buf is None or buf.shape[0] < total:
                buf = torch.empty((max(total, 2 * n0, 16), *spec.shape), dtype=spec.dtype, device=self.device)
                buf[:n0] = t
                self._store[name] = buf
            rows = buf[n0:total]
            rows.fill_(spec.fill)
            if spec.inherit == "parent":
                has = parents >= 0
                if bool(has.any()):
                    rows[has] = buf[parents[has]]
            self._t[name] = buf[:total]
        self.n_species = total

    # ------------------------------------------------------------------ checkpoints
    def describe(self) -> list[dict[str, Any]]:
        """The registry as JSON (kept in checkpoint metadata and compared on resume)."""
        return [{"name": s.name, "kind": s.kind, "shape": list(s.shape), "dtype": dtype_name(s.dtype),
                 "inherit": s.inherit, "owner": s.owner} for s in self.specs.values()]

    def to_numpy(self) -> dict[str, np.ndarray]:
        return {name: t.cpu().numpy() for name, t in self._t.items()}

    def load(self, arrays: dict[str, np.ndarray], described: list[dict[str, Any]], source: str) -> None:
        """Put back arrays saved by :meth:`to_numpy` after checking them against the registry.
        Raises ``ValueError`` naming the array on any mismatch (the caller adds the file)."""
        saved = {d.get("name"): d for d in described if isinstance(d, dict)}
        mine = {d["name"]: d for d in self.describe()}
        missing, extra = sorted(set(mine) - set(saved)), sorted(set(saved) - set(mine))
        if missing:
            raise ValueError(f"it lacks the plugin array(s) {', '.join(missing)} that this run registers "
                             f"(by {', '.join(sorted({mine[n]['owner'] for n in missing}))})")
        if extra:
            raise ValueError(f"it holds plugin array(s) {', '.join(extra)} (of "
                             f"{', '.join(sorted({str(saved[n].get('owner')) for n in extra}))}) that no loaded plugin registers")
        for name, d in mine.items():
            s = saved[name]
            if any(s.get(k) != d[k] for k in ("kind", "shape", "dtype")):
                raise ValueError(f"plugin array {name!r} was saved as {s.get('kind')} {s.get('dtype')} "
                                 f"{s.get('shape')}, this run registers {d['kind']} {d['dtype']} {d['shape']}")
        for name, spec in self.specs.items():
            a = arrays.get(name)
            if a is None:
                raise ValueError(f"it lacks the data of plugin array {name!r}")
            rows = self.capacity if spec.kind == "slot" else self.n_species
            if a.shape != (rows, *spec.shape) or dtype_name(torch.from_numpy(a[:0].copy()).dtype) != dtype_name(spec.dtype):
                raise ValueError(f"plugin array {name!r} has {a.dtype} {list(a.shape)}, expected "
                                 f"{dtype_name(spec.dtype)} {[rows, *spec.shape]}")
            self._t[name] = torch.from_numpy(np.ascontiguousarray(a)).to(self.device).clone()
            self._store.pop(name, None)  # the next species grows a fresh store


def reproduce_energy_per_agent(sim: Any) -> torch.Tensor:
    """The per-agent reproduction threshold, ``[capacity]`` float32, for a plugin to set (in
    ``alife_setup``: a rule whose roles breed at different energies, a strategy that evolves its
    own threshold). Registered on the first call, filled with ``agent.reproduce_energy``; a child
    gets its first parent's; checkpointed like every plugin array. Several plugins may ask for it:
    they share one array. The built-in ``energy-threshold`` selection reads it (fused kernel
    included) where it is registered."""
    if REPRODUCE_ENERGY in sim.arrays:
        return sim.arrays[REPRODUCE_ENERGY]
    return sim.arrays.add_slot(REPRODUCE_ENERGY, dtype=torch.float32, inherit="first",
                               fill=float(sim.config.agent.reproduce_energy))


def reproduce_energy(sim: Any, slots: torch.Tensor | None = None) -> float | torch.Tensor:
    """The reproduction threshold of ``slots`` (all slots when None): the per-agent array where a
    plugin registered it, else the world's ``agent.reproduce_energy``."""
    if REPRODUCE_ENERGY in sim.arrays:
        t = sim.arrays[REPRODUCE_ENERGY]
        return t if slots is None else t[slots]
    return float(sim.config.agent.reproduce_energy)
