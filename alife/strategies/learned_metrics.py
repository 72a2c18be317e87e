"""Metrics of heredity for learned (and any other) mutation, recorded beside a run.

Load it with ``plugins = ["alife.strategies.learned_metrics"]`` in a world file (or
``-p alife.strategies.learned_metrics``). It watches the reproduction role (a ``wrapper=True``
implementation of ``alife_reproduce``: the parents' genomes before, the children after, whatever
strategy made them) and measures, per child:

- **Replication fidelity of the mutator segment** (:func:`fidelity`): ``1 - |c - p| / (|c| + |p|)``
  over the mutator segment of the child ``c`` and its first parent ``p`` (Euclidean norms). 1 is an
  exact copy, 0 a child whose mutator is as far from its parent's as two unrelated vectors
  pointing opposite ways can be (the triangle inequality bounds it to [0, 1]). It measures how
  faithfully a mutator is copied, not whether it is good.
- **Mutation effects on the policy's output** (:func:`policy_effect`): child and first parent act
  on one fixed probe set of observations (``probes`` observations uniform in [-1, 1], drawn from
  a generator seeded from the run seed, shared by every measurement and stored nowhere); their
  action outputs (``tanh`` of the policy's output layer) are compared probe by probe. ``changed``
  is the share of probes on which some action output moves by more than ``tol``; ``effect`` is the
  RMS output difference over probes and actions. A child identical to its parent has 0 for both.
- **Drift of a lineage's mutator** (:func:`drift`): ``|m - m_root| / |m_root|`` between an agent's
  mutator segment and its lineage root's. Each agent carries its root's mutator segment in the
  per-slot array ``learned-metrics.root``, which a child receives from its first parent at birth
  (the engine copies the first parent's row, so it follows ids and parent ids, never a slot's
  previous occupant); initial agents and refilled agents are their own roots.

Every ``every`` steps (generations on a task) it appends one row: the births of the window and
their fidelity, ``changed`` and ``effect`` (means and quantiles; per strategy in a ``[mixture]``),
the living agents' drift (mean and quantiles) and mean generation. It keeps a histogram of
``log10(effect)`` over the run. At the end it writes ``learned_metrics.json`` into the run folder
(when there is one); :func:`plot` draws it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from alife.config import setting
from alife.genome import Layout
from alife.plugins import hookimpl
from alife.strategies.base import Strategy

ROOT = "learned-metrics.root"
#: log10(effect) histogram edges; effects of exactly 0 go to the first bin
EDGES = np.linspace(-6.0, 1.0, 29)
QS = (0.1, 0.5, 0.9)


def fidelity(parent_seg: torch.Tensor, child_seg: torch.Tensor) -> torch.Tensor:
    """``[k]``: ``1 - |c - p| / (|c| + |p|)`` per row (1 when both are zero)."""
    d = (child_seg - parent_seg).norm(dim=1)
    s = child_seg.norm(dim=1) + parent_seg.norm(dim=1)
    return torch.where(s > 0, 1 - d / s.clamp(min=1e-30), torch.ones_like(d))


def drift(root_seg: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
    """``[k]``: ``|m - m_root| / |m_root|`` per row (0 when both are zero)."""
    d = (seg - root_seg).norm(dim=1)
    r = root_seg.norm(dim=1)
    return torch.where(r > 0, d / r.clamp(min=1e-30), torch.where(d > 0, torch.inf, 0.0))


def policy_outputs(rows: torch.Tensor, layout: Layout, probes: torch.Tensor) -> torch.Tensor:
    """``[k, P, n_out]``: ``tanh`` of each row's policy on every probe (one batched pass)."""
    w1 = layout.view(rows, "policy.w1").contiguous()  # [k, H, n_obs]
    b1 = layout.view(rows, "policy.b1")
    w2 = layout.view(rows, "policy.w2").contiguous()  # [k, n_out, H]
    b2 = layout.view(rows, "policy.b2")
    x = probes.t().unsqueeze(0).expand(rows.shape[0], -1, -1)  # [k, n_obs, P]
    h = torch.baddbmm(b1.unsqueeze(2), w1, x).tanh_()
    return torch.baddbmm(b2.unsqueeze(2), w2, h).tanh_().transpose(1, 2)


def policy_effect(parent_rows: torch.Tensor, child_rows: torch.Tensor, layout: Layout, probes: torch.Tensor,
                  tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(changed, effect)``, two ``[k]`` tensors: the share of probes on which the child's action
    output differs from its parent's by more than ``tol`` in some action, and the RMS difference."""
    d = policy_outputs(child_rows, layout, probes) - policy_outputs(parent_rows, layout, probes)
    changed = (d.abs().amax(2) > tol).float().mean(1)
    return changed, d.pow(2).mean((1, 2)).sqrt()


@dataclass
class MetricsParams:
    every: int = setting(100, "steps (generations on a task) per recorded row", lo=1, hi=1 << 30)
    probes: int = setting(32, "observations in the fixed probe set", lo=1, hi=4096)
    tol: float = setting(0.05, "an action output moving by more than this counts as acting differently", lo=0.0, hi=2.0)
    max_children: int = setting(512, "children measured per step at most (the first ones of the step)", lo=1, hi=1 << 20)


class LearnedMetrics(Strategy):
    name, Params = "learned-metrics", MetricsParams

    def setup(self, sim: Any) -> None:
        lay = sim.layout
        self.m0, self.m1 = lay.segment_range("mutator")
        sim.arrays.add_slot(ROOT, shape=(self.m1 - self.m0,), inherit="first")
        self.ok = all(k in lay for k in ("policy.w1", "policy.b1", "policy.w2", "policy.b2"))
        g = torch.Generator().manual_seed((int(sim.seed) * 1_000_003 + 0x5EED) % (1 << 63))
        n_obs = lay["policy.w1"].shape[1] if self.ok else 0
        self.probes = (torch.rand(self.params.probes, n_obs, generator=g) * 2 - 1).to(sim.device)
        self.names = list(getattr(sim, "strategy_names", ()))
        self.rows: list[dict[str, Any]] = []
        self.hist = np.zeros(EDGES.size - 1, np.int64)
        self._reset()

    def _reset(self) -> None:
        self.acc: dict[str, list[np.ndarray]] = {"fidelity": [], "changed": [], "effect": [], "strategy": []}

    # ------------------------------------------------------------------ roots
    @hookimpl
    def alife_sim_start(self, sim: Any) -> None:
        if sim.resume_step is not None:
            return
        live = sim.world.alive_slots()
        sim.arrays[ROOT][live] = sim.world.genomes[live, self.m0:self.m1]

    @hookimpl
    def alife_agents_born(self, sim: Any, births: Any) -> None:
        slots = torch.as_tensor(births.slots, device=sim.device)
        root = torch.as_tensor(births.parent_ids[:, 0] < 0, device=sim.device)
        if str(births.strategy).startswith("extinction"):
            root[:] = True
        if bool(root.any()):
            s = slots[root]
            sim.arrays[ROOT][s] = sim.world.genomes[s, self.m0:self.m1]

    # ------------------------------------------------------------------ measuring
    @hookimpl(wrapper=True)
    def alife_reproduce(self, sim: Any, parents: torch.Tensor, partners: torch.Tensor):
        n = min(parents.numel(), self.params.max_children)
        before = sim.world.genomes[parents[:n]].clone()
        child = yield
        if n:
            self.measure(sim, before, child[:n], parents[:n])
        return child

    def measure(self, sim: Any, parent_rows: torch.Tensor, child_rows: torch.Tensor, parents: torch.Tensor) -> None:
        fid = fidelity(parent_rows[:, self.m0:self.m1], child_rows[:, self.m0:self.m1])
        self.acc["fidelity"].append(fid.cpu().numpy())
        if self.ok:
            changed, effect = policy_effect(parent_rows, child_rows, sim.layout, self.probes, self.params.tol)
            e = effect.cpu().numpy()
            self.acc["changed"].append(changed.cpu().numpy())
            self.acc["effect"].append(e)
            b = np.clip(np.searchsorted(EDGES, np.log10(np.maximum(e, 1e-30)), side="right") - 1, 0, self.hist.size - 1)
            self.hist += np.bincount(b, minlength=self.hist.size)
        self.acc["strategy"].append(sim.world.strategy[parents].cpu().numpy().astype(np.int64))

    @hookimpl
    def alife_step_end(self, sim: Any, step: int) -> None:
        if (step + 1) % self.params.every == 0:
            self.rows.append(self.row(sim, step))
            self._reset()

    def row(self, sim: Any, step: int) -> dict[str, Any]:
        """One recorded row: this window's births, and the living agents' drift now."""
        out: dict[str, Any] = {"step": int(step)}
        cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in self.acc.items()}
        out["children"] = int(cat["fidelity"].size)
        out.update(_summary(cat))
        if len(self.names) > 1:
            out["by_strategy"] = {name: _summary({k: v[cat["strategy"] == code] for k, v in cat.items()
                                                  if k != "strategy" and v.size == cat["strategy"].size})
                                  for code, name in enumerate(self.names)}
        live = sim.world.alive_slots()
        if live.numel():
            d = drift(sim.arrays[ROOT][live], sim.world.genomes[live, self.m0:self.m1]).cpu().numpy()
            d = d[np.isfinite(d)]
            out["drift_mean"] = float(d.mean()) if d.size else None
            out["drift_q"] = [float(x) for x in np.quantile(d, QS)] if d.size else None
            out["generation_mean"] = float(sim.world.generation[live].float().mean())
            out["population"] = int(live.numel())
        return out

    # ------------------------------------------------------------------ output
    #: the latest row's numbers that go to the lineage file's plugin series (``alife_series``)
    SERIES = ("fidelity_mean", "changed_mean", "acts_differently", "effect_median", "drift_mean", "children")

    def latest(self) -> dict[str, float] | None:
        """The latest recorded row as plain numbers (None before the first row)."""
        if not self.rows:
            return None
        r = self.rows[-1]
        q = r.get("effect_q")
        vals = {**r, "effect_median": q[1] if q else None}
        return {k: (math.nan if vals.get(k) is None else float(vals[k])) for k in self.SERIES}

    @hookimpl
    def alife_series(self, sim: Any, step: int) -> dict[str, float] | None:
        """The latest row (every ``every`` steps) into ``lineage.h5``: read back with
        ``alife.lineage.open(path).plugin_series``, columns ``learned-metrics.<name>``."""
        return self.latest()

    @hookimpl
    def alife_summary(self, sim: Any) -> dict[str, Any] | None:
        latest = self.latest()
        return {"rows": len(self.rows), "every": self.params.every,
                "latest": None if latest is None else {k: None if math.isnan(v) else v for k, v in latest.items()}}

    def result(self) -> dict[str, Any]:
        return {"definitions": __doc__, "every": self.params.every, "tol": self.params.tol,
                "probes": self.params.probes, "strategies": self.names, "rows": self.rows,
                "effect_hist": {"log10_edges": EDGES.tolist(), "counts": self.hist.tolist()}}

    @hookimpl
    def alife_sim_end(self, sim: Any) -> None:
        if sim.run_dir is not None and Path(sim.run_dir).is_dir():
            (Path(sim.run_dir) / "learned_metrics.json").write_text(json.dumps(self.result()))

    def state_dict(self) -> dict[str, Any]:
        return {"rows": json.dumps(self.rows), "hist": self.hist,
                "acc": json.dumps({k: [a.tolist() for a in v] for k, v in self.acc.items()})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = json.loads(str(state["rows"]))
        self.hist = np.asarray(state["hist"], dtype=np.int64).copy()
        acc = json.loads(str(state["acc"]))
        self.acc = {k: [np.asarray(a, dtype=np.int64 if k == "strategy" else np.float32) for a in v] for k, v in acc.items()}


def _summary(cat: dict[str, np.ndarray]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in ("fidelity", "changed", "effect"):
        v = cat.get(k, np.zeros(0))
        out[f"{k}_mean"] = float(v.mean()) if v.size else None
        out[f"{k}_q"] = [float(x) for x in np.quantile(v, QS)] if v.size else None
    ch = cat.get("changed", np.zeros(0))
    out["acts_differently"] = float((ch > 0).mean()) if ch.size else None
    return out


# ---------------------------------------------------------------------- plot
def plot(data: dict[str, Any] | str | Path, out: str | Path, title: str = "") -> Path:
    """Four panels from a ``learned_metrics.json`` (or its dict): fidelity of the mutator segment,
    how often and how much children act differently, the distribution of ``log10(effect)``, and
    the lineage drift of the mutator against the mean generation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not isinstance(data, dict):
        data = json.loads(Path(data).read_text())
    rows = [r for r in data["rows"] if r.get("children")]
    x = np.array([r["step"] for r in rows])
    fig, ax = plt.subplots(2, 2, figsize=(11, 7.5))
    a = ax[0, 0]
    names = data.get("strategies") or []
    if len(names) > 1:
        for name in names:
            y = [(r["by_strategy"][name]["fidelity_mean"] if r.get("by_strategy") else None) for r in rows]
            a.plot(x, [math.nan if v is None else v for v in y], label=name)
        a.legend()
    else:
        q = np.array([r["fidelity_q"] for r in rows])
        a.plot(x, [r["fidelity_mean"] for r in rows], label="mean")
        a.fill_between(x, q[:, 0], q[:, 2], alpha=0.3, label="10-90%")
        a.legend()
    a.set_title("mutator replication fidelity (1 = exact copy)")
    a.set_xlabel("step")
    a = ax[0, 1]
    a.plot(x, [r["acts_differently"] for r in rows], label="share of children acting differently")
    a.plot(x, [r["changed_mean"] for r in rows], label="mean share of probes changed")
    a.plot(x, [r["effect_q"][1] for r in rows], label="median RMS output change")
    a.set_ylim(0, None)
    a.legend(fontsize=8)
    a.set_title(f"mutation effects on the policy (tol {data['tol']}, {data['probes']} probes)")
    a.set_xlabel("step")
    a = ax[1, 0]
    e = np.array(data["effect_hist"]["log10_edges"])
    c = np.array(data["effect_hist"]["counts"])
    a.bar(e[:-1], c, width=np.diff(e), align="edge")
    a.set_title("distribution of mutation effects over the run")
    a.set_xlabel("log10 RMS change of the policy's action outputs")
    a.set_ylabel("children")
    a = ax[1, 1]
    dr = [r for r in rows if r.get("drift_q")]
    xd = np.array([r["step"] for r in dr])
    q = np.array([r["drift_q"] for r in dr]) if dr else np.zeros((0, 3))
    a.plot(xd, [r["drift_mean"] for r in dr], label="mean")
    if dr:
        a.fill_between(xd, q[:, 0], q[:, 2], alpha=0.3, label="10-90%")
    a.set_title("mutator drift from its lineage root")
    a.set_xlabel("step")
    a.set_ylabel("|m - m_root| / |m_root|")
    a2 = a.twinx()
    a2.plot(xd, [r["generation_mean"] for r in dr], color="grey", ls="--", label="mean generation")
    a2.set_ylabel("mean generation (dashed)")
    a.legend(loc="upper left")
    fig.suptitle(title or "learned mutation metrics")
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


ALIFE_PLUGINS = [LearnedMetrics]
