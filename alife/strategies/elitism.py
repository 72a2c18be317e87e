"""Elitism wrapper around any selection rule: the ``k`` best are parents.

Enable it from a world file (it is not a built-in, so a world without it keeps the fused CPU
path of the built-in roles, which any wrapper turns off)::

    plugins = ["alife.strategies.elitism"]

    [plugin.elitism]
    k = 2

It wraps ``alife_select_parents`` (``@hookimpl(wrapper=True)``): whatever rule the world chose
answers first, then each of the ``k`` best genomes that the rule left out of the parents takes the
place of the proposed child whose first parent ranks lowest (never one of the ``k`` best's own),
as that child's only parent. The number of children is unchanged. Which genomes are the best:

* **task runs**: by fitness (the ``fitness`` argument of ``alife_select_parents``: the mean
  seeded-episode return). The runner already carries ``task.elite`` genomes over unchanged; this wrapper is a
  different thing, elitist *breeding*: the ``k`` best are sure to have a (mutated) child this
  generation, however the rule draws (a small tournament, novelty search, fitness sharing).
* **the world**: the living by lifetime energy so far (the ``fitness`` argument; what the fitness
  event reports for them at death), among those that can pay for a child (``agent.child_energy + agent.birth_cost``), so
  the engine's energy check holds. Each step, the ``k`` most successful foragers that can pay
  reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from alife.config import setting
from alife.plugins import hookimpl
from alife.strategies.base import Strategy


@dataclass
class ElitismParams:
    k: int = setting(1, "best genomes made parents at every selection (0: off)", lo=0, hi=1 << 20)


class Elitism(Strategy):
    """Not a role: a wrapper any selection strategy runs inside."""

    name, Params = "elitism", ElitismParams

    @staticmethod
    def eligible(sim: Any, slots: torch.Tensor) -> torch.Tensor:
        """Who may be an elite: on a task every genome; in the world those that can pay for a child."""
        if sim.mode == "task":
            return torch.ones_like(slots, dtype=torch.bool)
        a = sim.config.agent
        return sim.world.energy[slots] >= a.child_energy + a.birth_cost

    @hookimpl(wrapper=True)
    def alife_select_parents(self, sim: Any, slots: torch.Tensor, neighbours: torch.Tensor, ready: torch.Tensor,
                             fitness: torch.Tensor):
        out = yield
        if out is None or self.params.k == 0 or out[0].numel() == 0:
            return out
        return keep_best(out[0], out[1], slots, fitness.double(), self.eligible(sim, slots), self.params.k)


def keep_best(parents: torch.Tensor, partners: torch.Tensor, slots: torch.Tensor, score: torch.Tensor,
              eligible: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(parents, partners)`` with the ``k`` best eligible of ``slots`` (by ``score``) among the
    parents: each one missing replaces the proposal whose parent scores lowest (proposals of the
    best are never replaced), with no partner. Ties in score go to the lower position in ``slots``."""
    cand = eligible.nonzero().squeeze(1)
    order = torch.argsort(score[cand], descending=True, stable=True)
    best = slots[cand[order[:k]]]
    missing = best[~torch.isin(best, parents)]
    # proposals that may give way: parent not among the best, lowest score first
    by_slot = torch.full((int(slots.max()) + 1,), float("inf"), dtype=torch.float64, device=slots.device)
    by_slot[slots] = score.double()
    free = (~torch.isin(parents, best)).nonzero().squeeze(1)
    free = free[torch.argsort(by_slot[parents[free]], stable=True)]
    m = min(missing.numel(), free.numel())
    if m == 0:
        return parents, partners
    parents, partners = parents.clone(), partners.clone()
    rows = free[:m]
    parents[rows] = missing[:m]
    partners[rows] = -1
    return parents, partners


ALIFE_PLUGINS = [Elitism]
