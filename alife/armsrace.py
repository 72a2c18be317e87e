"""Arms races between two heritable roles: CIAO matrices from a run's checkpoints.

CIAO ("current individual vs ancestral opponents": Cliff & Miller 1995, "Tracking the Red Queen:
measurements of adaptive progress in co-evolutionary simulations", ECAL 1995, LNCS 929:
200-218) plays the agents of one role taken at moment ``i`` of a run against the agents of the
other role taken at moment ``j``, for every pair of moments, in fresh arenas. Reading the matrix
of role A's score (rows: A's moment, columns: B's moment):

* down a column (A gets later, B fixed): A's progress against one opponent;
* along a row (B gets later, A fixed): B's progress against one opponent (A's score falls);
* an arms race shows both at once: later A beat every B better, later B resist every A better,
  and the diagonal (contemporaries) stays level while the off-diagonal corners pull apart.

**Moments** are checkpoints (the living at each saved step, ``--keep-checkpoints 0`` keeps them
all); the agents' role is a per-slot plugin array the checkpoint holds (``predator-prey.role`` for
the built-in rule: 1 predators, 0 prey). Nothing a checkpoint names is imported: the arena world
is the run's own (:func:`alife.assay.run_world`) with the code the caller gives.

**Arenas** are foraging trials of :func:`alife.assay.run_replicate` (nobody reproduces, so what is
measured is the encounter, not who breeds faster): ``agents`` agents, a share ``share_a`` of role A,
``steps`` steps, seeds ``seed .. seed + replicates - 1``; every cell of the matrix uses the same
seeds, so two cells differ only by the genomes placed (an arena of identical genomes gives
identical numbers). The roles are written from the pools in ``alife_sim_start``, after the rule's
own founder draw (``trylast``), so every placed agent has the role it had in its checkpoint.

**Scores** per cell and replicate: each role's energy gain rate (energy gathered per agent-step
alive; a predator's only income is prey) and each role's survival (living at the end over placed).
Trends, each with a 95% Student-t interval over replicates (cells of one replicate share a seed, so
the differences are paired): A's progress = mean over B's moments of (A's score at the last moment
minus at the first), B's progress = mean over A's moments of (A's score against B's first moment
minus against B's last).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alife.assay import POOL_ARRAY, Pool, mean_interval, run_replicate
from alife.errors import UserError
from alife.plugins import hookimpl

#: the built-in predator-prey rule: its role array and role codes
PREDATOR_PREY = {"array": "predator-prey.role", "roles": (1, 0), "names": ("predators", "prey")}


def role_pools(path: str | Path, array: str, roles: Sequence[int], names: Sequence[str]) -> tuple[Pool, ...]:
    """The living agents of a checkpoint split by the per-slot plugin array ``array``: one pool per
    role code in ``roles`` (named ``names``, suffixed with the checkpoint's step)."""
    from alife.checkpoint import open_checkpoint

    ck = open_checkpoint(path)
    if array not in ck.plugin_arrays:
        have = ", ".join(sorted(ck.plugin_arrays)) or "none"
        raise UserError(f"{path}: no per-slot array {array!r} in this checkpoint (its plugin arrays: {have})")
    alive = ck.arrays["alive"].astype(bool)
    role = ck.plugin_arrays[array]
    if role.shape[0] != alive.shape[0]:
        raise UserError(f"{path}: plugin array {array!r} has {role.shape[0]} rows, the slots {alive.shape[0]}")
    role = role.reshape(role.shape[0], -1)[:, 0]
    out = []
    for code, name in zip(roles, names, strict=True):
        keep = alive & (role == code)
        if not keep.any():
            raise UserError(f"{path}: no living agent with {array} = {code} ({name}) at step {ck.step}")
        out.append(Pool(f"{name}@{ck.step}", ck.arrays["genomes"][keep], ck.arrays["species"][keep], None,
                        f"{path} ({name}, living at step {ck.step})", ck.meta.get("layout")))
    return tuple(out)


class RoleSetter:
    """Writes the role array from the assay's pool array at the start: pool ``k`` gets ``codes[k]``."""

    def __init__(self, array: str, codes: Sequence[int]):
        self.array, self.codes = array, list(codes)

    @hookimpl(trylast=True)
    def alife_sim_start(self, sim: Any) -> None:
        if self.array not in sim.arrays:
            raise UserError(f"the arena world has no per-slot array {self.array!r} (its arrays: "
                            f"{', '.join(sim.arrays.names()) or 'none'}): give the world and plugins the run used")
        pool = sim.arrays[POOL_ARRAY].long()
        role = sim.arrays[self.array]
        codes = torch.tensor(self.codes, dtype=role.dtype, device=role.device)
        have = pool >= 0
        role[have] = codes[pool[have]]


@dataclass
class ArmsRace:
    """A CIAO matrix: ``gain[r, i, j, k]`` role ``k``'s energy gain rate and ``survival[r, i, j, k]``
    its share alive at the end, replicate ``r``, role A from moment ``i``, role B from moment ``j``."""

    steps_a: list[int]
    steps_b: list[int]
    names: tuple[str, str]
    gain: np.ndarray
    survival: np.ndarray
    seeds: list[int]
    arena: dict[str, Any] = field(default_factory=dict)

    def mean(self, what: str = "gain", role: int = 0) -> np.ndarray:
        return getattr(self, what)[..., role].mean(axis=0)

    def trends(self, what: str = "gain") -> dict[str, dict[str, float]]:
        """A's progress (later A against the same B) and B's progress (later B against the same A)
        on A's score, paired per replicate, with 95% intervals."""
        s = getattr(self, what)[..., 0]  # [r, i, j]
        a_prog = (s[:, -1, :] - s[:, 0, :]).mean(axis=1)
        b_prog = (s[:, :, 0] - s[:, :, -1]).mean(axis=1)
        diag = np.einsum("rii->ri", s) if s.shape[1] == s.shape[2] else None
        out = {f"{self.names[0]}_progress": mean_interval(a_prog.tolist()),
               f"{self.names[1]}_progress": mean_interval(b_prog.tolist())}
        if diag is not None:
            out["contemporaries_change"] = mean_interval((diag[:, -1] - diag[:, 0]).tolist())
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"method": METHOD, "names": list(self.names), "steps_a": self.steps_a, "steps_b": self.steps_b,
                "seeds": self.seeds, "arena": self.arena,
                "gain_mean": self.mean("gain", 0).tolist(), "gain_b_mean": self.mean("gain", 1).tolist(),
                "survival_b_mean": self.mean("survival", 1).tolist(),
                "gain": self.gain.tolist(), "survival": self.survival.tolist(),
                "trends": {"gain": self.trends("gain")}}

    def markdown(self) -> str:
        a, b = self.names

        def table(m: np.ndarray, title: str) -> list[str]:
            rows = [f"**{title}** (rows: {a} from step, columns: {b} from step)", "",
                    "| | " + " | ".join(str(s) for s in self.steps_b) + " |",
                    "| --- " * (len(self.steps_b) + 1) + "|"]
            for i, s in enumerate(self.steps_a):
                rows.append(f"| {s} | " + " | ".join(f"{v:.4f}" for v in m[i]) + " |")
            return rows + [""]

        lines = [f"# CIAO: {a} against {b}", "", METHOD, "",
                 f"{len(self.seeds)} replicate arenas per cell (seeds {self.seeds[0]}..{self.seeds[-1]}), "
                 f"{self.arena.get('agents')} agents, {self.arena.get('steps')} steps, share of {a} "
                 f"{self.arena.get('share_a')}", ""]
        lines += table(self.mean("gain", 0), f"{a}: energy gain rate")
        lines += table(self.mean("survival", 1), f"{b}: survival")
        lines += ["| trend on the energy gain rate | mean | 95% interval |", "| --- | --- | --- |"]
        for k, d in self.trends("gain").items():
            lines.append(f"| {k} | {d['mean']:+.4f} | [{d['lo']:+.4f}, {d['hi']:+.4f}] |")
        return "\n".join(lines) + "\n"

    def plot(self, path: str | Path) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        a, b = self.names
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
        for ax, m, title in ((axes[0], self.mean("gain", 0), f"{a}: energy gain rate"),
                             (axes[1], self.mean("survival", 1), f"{b}: survival")):
            im = ax.imshow(m, origin="lower", cmap="viridis", aspect="auto")
            ax.set_xticks(range(len(self.steps_b)), [str(s) for s in self.steps_b], rotation=45)
            ax.set_yticks(range(len(self.steps_a)), [str(s) for s in self.steps_a])
            ax.set_xlabel(f"{b} taken at step")
            ax.set_ylabel(f"{a} taken at step")
            ax.set_title(title)
            fig.colorbar(im, ax=ax, shrink=0.85)
        fig.suptitle(f"CIAO, {len(self.seeds)} arenas per cell, {self.arena.get('steps')} steps, no reproduction")
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path

    def write(self, out: str | Path, stem: str = "ciao") -> dict[str, Path]:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"md": out / f"{stem}.md", "json": out / f"{stem}.json", "png": out / f"{stem}.png"}
        paths["md"].write_text(self.markdown())
        paths["json"].write_text(json.dumps(self.to_dict(), indent=1))
        self.plot(paths["png"])
        return paths


METHOD = ("Foraging arenas (no reproduction) of the run's world; each cell places the living of "
          "role A from one checkpoint and of role B from another; gain = energy gathered per "
          "agent-step alive; survival = living at the end over placed; the same seeds in every cell.")


def ciao(moments: Sequence[str | Path], world: Any, *, array: str = PREDATOR_PREY["array"],
         roles: Sequence[int] = PREDATOR_PREY["roles"], names: Sequence[str] = PREDATOR_PREY["names"],
         replicates: int = 3, steps: int = 300,
         agents: int | None = None, share_a: float = 0.3, seed: int = 0,
         overrides: dict[str, Any] | None = None, plugins: Iterable[Any] = (), modules: Iterable[str] = (),
         plugins_dirs: Iterable[str | Path] = (), device: str | None = "cpu",
         progress: Callable[[str], None] | None = None) -> ArmsRace:
    """Play role A of every checkpoint in ``moments`` against role B of every one (see the module
    docstring)."""
    if len(moments) < 2:
        raise UserError("an arms race needs at least two moments (checkpoints)")
    if replicates < 1 or steps < 1:
        raise UserError("replicates and steps must be >= 1")
    if not 0.0 < share_a < 1.0:
        raise UserError(f"share_a must be between 0 and 1 (exclusive), got {share_a}")
    pools = [role_pools(m, array, roles, names) for m in moments]
    steps_at = [int(p[0].name.rpartition("@")[2]) for p in pools]
    ov = dict(overrides or {})
    extra = [*plugins, RoleSetter(array, roles)]
    n = len(pools)
    gain = np.zeros((replicates, n, n, 2))
    survival = np.zeros((replicates, n, n, 2))
    seeds = [seed + r for r in range(replicates)]
    for i in range(n):
        for j in range(n):
            pair = [pools[i][0], pools[j][1]]
            for r, s in enumerate(seeds):
                rep = run_replicate(pair, world, s, steps, steps, [0, 1], agents=agents, foraging=True,
                                    overrides=ov, plugins=extra, modules=modules, plugins_dirs=plugins_dirs,
                                    device=device, shares=[share_a, 1.0 - share_a])
                gain[r, i, j] = rep.gained / np.maximum(rep.agent_steps, 1.0)
                survival[r, i, j] = rep.counts[-1] / np.maximum(rep.counts[0], 1)
            if progress is not None:
                progress(f"{names[0]}@{steps_at[i]} vs {names[1]}@{steps_at[j]}: gain "
                         f"{gain[:, i, j, 0].mean():.4f}, {names[1]} survival {survival[:, i, j, 1].mean():.3f}")
    arena = {"agents": agents, "steps": steps, "share_a": share_a, "array": array, "roles": list(roles),
             "moments": [str(m) for m in moments]}
    return ArmsRace(steps_at, steps_at, (names[0], names[1]), gain, survival, seeds, arena)
