"""Selection rules as strategies: ``tournament``, ``rank`` (linear ranking), ``fitness-sharing``
(rank-based, by species) and ``novelty`` (novelty search with a behaviour archive).

How fitness reaches a rule: as the ``fitness`` argument of ``alife_select_parents`` (on a task,
each genome's training fitness, its mean seeded-episode return; in the world, the energy each
agent has gathered so far), never an attribute of ``sim`` by convention. The rules keep no copy.

Modes:

* ``tournament``, ``rank``, ``fitness-sharing``: task runs only. In the world a parent must also
  pay for its child, and the world's selection is implicit (``energy-threshold``: who gathered
  enough energy reproduces).
* ``novelty``: both. On a task: every genome's novelty among the population and the archive, then
  a tournament on novelty. In the world: the agents that ``energy-threshold`` would let reproduce
  (energy and age) reproduce with probability (their novelty's rank among them) / (their number),
  so the most novel always does and the least novel rarely.

Partners (task runs): with probability ``task.crossover`` a child gets a second parent drawn by
the same rule independently; where it is the first parent itself, the child has one parent. The
``mating`` role then decides whether the pair accepts. Elites are kept by the runner
(``task.elite``); the elitism wrapper (:mod:`alife.strategies.elitism`) makes the best breed.

Randomness: only ``sim.generator``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from alife.config import setting
from alife.plugins import hookimpl
from alife.strategies.base import Strategy
from alife.world.arrays import reproduce_energy

# -------------------------------------------------------------------------------------------------
# Pure rules: known answers in tests/test_selection_rules.py
# -------------------------------------------------------------------------------------------------


def tied_ranks(values: torch.Tensor) -> torch.Tensor:
    """``[n]`` float64 ranks 1..n, the highest value ranked n; equal values share the mean of
    their ranks (so the ranks always sum to n (n + 1) / 2)."""
    n = values.numel()
    if n == 0:
        return torch.zeros(0, dtype=torch.float64, device=values.device)
    _, inverse, counts = torch.unique(values, sorted=True, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()  # the last rank of each distinct value
    mean_rank = ends - (counts.double() - 1) / 2
    return mean_rank[inverse]


def tournament(score: torch.Tensor, count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """``[count]`` indices into ``score``: each the best of ``size`` uniform draws with
    replacement (ties to the earlier draw)."""
    n = score.numel()
    draws = torch.randint(n, (count, size), generator=generator, device=score.device)
    best = torch.argmax(score[draws], dim=1)
    return draws.gather(1, best.unsqueeze(1)).squeeze(1)


def linear_ranking_probs(score: torch.Tensor, pressure: float) -> torch.Tensor:
    """Baker's linear ranking: ``p_i = ((2 - s) + 2 (s - 1) (r_i - 1) / (n - 1)) / n`` with
    ``r_i`` the rank (1 worst, n best; ties share their mean rank) and ``s`` in [1, 2] the
    expected number of children of the best per the average genome. Sums to 1."""
    n = score.numel()
    if n == 1:
        return torch.ones(1, dtype=torch.float64, device=score.device)
    r = tied_ranks(score)
    return ((2.0 - pressure) + 2.0 * (pressure - 1.0) * (r - 1.0) / (n - 1)) / n


def shared_rank_scores(fitness: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
    """Fitness sharing that is safe with any sign: each genome's fitness *rank* (1..n, ties
    shared) divided by the number of genomes of its species. Ranks are positive, so no negative
    number is ever divided; a species' total share is its mean rank, whatever its size, so crowding
    into one species earns it nothing."""
    r = tied_ranks(fitness)
    _, inverse, counts = torch.unique(species, return_inverse=True, return_counts=True)
    return r / counts[inverse].double()


def novelty_scores(query: torch.Tensor, reference: torch.Tensor, k: int,
                   self_index: torch.Tensor | None = None) -> torch.Tensor:
    """``[m]`` novelty of each ``query`` row: its mean Euclidean distance to its ``k`` nearest rows
    of ``reference`` (the population and the archive). ``self_index[i]``: the row of
    ``reference`` that is query ``i`` itself (left out of its neighbours), or -1."""
    m, r = query.shape[0], reference.shape[0]
    if m == 0:
        return torch.zeros(0, device=query.device)
    d = torch.cdist(query.float(), reference.float())
    if self_index is not None:
        rows = (self_index >= 0).nonzero().squeeze(1)
        d[rows, self_index[rows]] = float("inf")
    kk = min(k, r - (1 if self_index is not None else 0))
    if kk <= 0:
        return torch.zeros(m, device=query.device)
    near = torch.topk(d, kk, dim=1, largest=False).values
    return near.mean(1)


def draw_partners(sim: Any, parents: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """With probability ``task.crossover``, ``second`` (a second parent the rule drew); -1 where
    the draw failed or chose the first parent itself."""
    k = parents.numel()
    out = torch.full((k,), -1, dtype=torch.long, device=parents.device)
    if sim.config.task.crossover <= 0 or k == 0:
        return out
    two = torch.rand(k, generator=sim.generator, device=parents.device) < sim.config.task.crossover
    return torch.where(two & (second != parents), second, out)


# -------------------------------------------------------------------------------------------------
# The rules
# -------------------------------------------------------------------------------------------------


@dataclass
class TournamentParams:
    size: int = setting(3, "genomes drawn (uniformly, with replacement) per tournament; the best wins", lo=1, hi=1 << 16)


class Tournament(Strategy):
    """Each parent the best of ``size`` uniform draws, by fitness."""

    role, name, Params = "selection", "tournament", TournamentParams
    modes = ("task",)

    @hookimpl
    def alife_select_parents(self, sim: Any, slots: torch.Tensor, neighbours: torch.Tensor, ready: torch.Tensor,
                             fitness: torch.Tensor):
        f = fitness
        k, g, size = int(sim.offspring_count), sim.generator, self.params.size
        parents = slots[tournament(f, k, size, g)]
        return parents, draw_partners(sim, parents, slots[tournament(f, k, size, g)])


@dataclass
class RankParams:
    pressure: float = setting(1.5, "children expected of the best genome per average genome (linear ranking: 1 uniform, 2 the most)",
                              lo=1.0, hi=2.0)


class LinearRanking(Strategy):
    """Rank-proportional selection: linear ranking (Baker 1985) by fitness."""

    role, name, Params = "selection", "rank", RankParams
    modes = ("task",)

    @hookimpl
    def alife_select_parents(self, sim: Any, slots: torch.Tensor, neighbours: torch.Tensor, ready: torch.Tensor,
                             fitness: torch.Tensor):
        p = linear_ranking_probs(fitness, self.params.pressure)
        return proportional(sim, slots, p)


def proportional(sim: Any, slots: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``offspring_count`` parents drawn with probabilities ``p`` (and partners likewise)."""
    k, g = int(sim.offspring_count), sim.generator
    if k == 0:
        empty = torch.zeros(0, dtype=torch.long, device=slots.device)
        return empty, empty
    parents = slots[torch.multinomial(p.float(), k, replacement=True, generator=g)]
    second = slots[torch.multinomial(p.float(), k, replacement=True, generator=g)]
    return parents, draw_partners(sim, parents, second)


class FitnessSharing(Strategy):
    """Fitness sharing by species, rank-based: a genome's chance is proportional to its fitness
    rank over its species' size (:func:`shared_rank_scores`), safe with negative fitness."""

    role, name = "selection", "fitness-sharing"
    modes = ("task",)

    @hookimpl
    def alife_select_parents(self, sim: Any, slots: torch.Tensor, neighbours: torch.Tensor, ready: torch.Tensor,
                             fitness: torch.Tensor):
        shared = shared_rank_scores(fitness, sim.world.species[slots])
        return proportional(sim, slots, shared / shared.sum())


@dataclass
class NoveltyParams:
    k: int = setting(10, "nearest behaviours (population and archive) a genome's novelty averages the distance to", lo=1, hi=1 << 12)
    archive_size: int = setting(500, "behaviours the archive holds (the oldest are replaced beyond)", lo=1, hi=1 << 20)
    archive_add: int = setting(2, "most novel behaviours added to the archive at each selection (task: a generation; world: a step)",
                               lo=0, hi=1 << 12)
    size: int = setting(3, "task runs: tournament size on novelty", lo=1, hi=1 << 16)
    probes: int = setting(16, "task runs, default behaviour: probe observations the policy is shown", lo=1, hi=4096)
    probe_scale: float = setting(1.0, "task runs, default behaviour: spread of the probe observations (normal)", lo=0.0, lo_open=True, hi=1e6)
    behaviour: str = setting("probes", "task runs, default behaviour: the policy's outputs on fixed probe observations "
                             "(probes), or where its training episodes ended (final-observation: the last observation, "
                             "mean over the genome's episodes; task.workers = 1)",
                             choices=("probes", "final-observation"))


class NoveltySearch(Strategy):
    """Novelty search (Lehman and Stanley 2011) with a bounded behaviour archive (the state)."""

    role, name, Params = "selection", "novelty", NoveltyParams
    modes = ("world", "task")

    def setup(self, sim: Any) -> None:
        self.archive = torch.zeros(self.params.archive_size, 0, device=sim.device)
        self.filled = 0      # rows of the archive in use
        self.next = 0        # the row the next behaviour goes to (a ring once full)
        self.added = 0       # behaviours ever added
        self.last_novelty: torch.Tensor | None = None
        self.probe_obs: torch.Tensor | None = None
        if sim.mode == "task":
            n_in = sim.layout["policy.w1"].shape[1]
            # a fixed probe set, drawn once from the run's generator
            self.probe_obs = self.params.probe_scale * torch.randn(
                self.params.probes, n_in, generator=sim.generator, device=sim.device)

    # ------------------------------------------------------------------ the task default behaviour
    @hookimpl(trylast=True)
    def alife_behaviour(self, sim: Any, slots: torch.Tensor):
        """Task runs: the policy's outputs (tanh) on the fixed probe observations, concatenated
        (``probes x actions`` numbers). Answered last: any other behaviour plugin replaces it."""
        if sim.mode != "task" or self.probe_obs is None:
            return None
        if self.params.behaviour == "final-observation":
            fin = getattr(sim, "final_obs", None)
            if fin is None:
                raise RuntimeError("selection 'novelty': behaviour = 'final-observation' needs the training "
                                   "episodes' last observations, which a process pool (task.workers > 1) does not "
                                   "bring back: set task.workers = 1")
            return fin[slots]
        if "policy.conv0.w" in sim.layout:
            raise RuntimeError("selection 'novelty': the default task behaviour shows the policy flat probe "
                               "observations; an image task needs a plugin answering alife_behaviour")
        from alife.genome import mlp_forward

        n, p = slots.numel(), self.probe_obs.shape[0]
        genomes = sim.world.genomes[slots].repeat_interleave(p, dim=0)
        x = self.probe_obs.repeat(n, 1)
        with torch.no_grad():
            y = mlp_forward(genomes, sim.layout, "policy", x, out_act="linear").tanh()
        return y.reshape(n, -1)

    # ------------------------------------------------------------------ selection
    @hookimpl
    def alife_select_parents(self, sim: Any, slots: torch.Tensor, neighbours: torch.Tensor, ready: torch.Tensor):
        if sim.mode == "task":
            return self._select_task(sim, slots)
        return self._select_world(sim, slots, neighbours, ready)

    def _select_task(self, sim: Any, slots: torch.Tensor):
        b = sim.behaviour(slots)
        nov = self.novelty(b, torch.arange(slots.numel(), device=slots.device))
        k, g = int(sim.offspring_count), sim.generator
        parents = slots[tournament(nov, k, self.params.size, g)]
        partners = draw_partners(sim, parents, slots[tournament(nov, k, self.params.size, g)])
        self.remember(b, nov)
        return parents, partners

    def _select_world(self, sim: Any, slots: torch.Tensor, neighbours: torch.Tensor, ready: torch.Tensor):
        st, a = sim.world, sim.config.agent
        ok = (st.energy[slots] >= reproduce_energy(sim, slots)) & (st.age[slots] >= a.min_reproduce_age)
        idx = ok.nonzero().squeeze(1)
        m = idx.numel()
        if m == 0:
            empty = torch.zeros(0, dtype=torch.long, device=slots.device)
            return empty, empty
        b = sim.behaviour(slots)  # the living: the population the novelty is measured in
        nov = self.novelty(b, idx)
        chance = tied_ranks(nov) / m
        go = torch.rand(m, generator=sim.generator, device=slots.device).double() < chance
        self.remember(b[idx], nov)
        chosen = idx[go]
        parents = slots[chosen]
        nb = neighbours[chosen]
        nbc = nb.clamp(min=0)
        paired = ready[chosen] & (nb >= 0) & st.ready[nbc] & st.alive[nbc]
        return parents, torch.where(paired, nb, torch.full_like(nb, -1))

    # ------------------------------------------------------------------ novelty and the archive
    def novelty(self, population: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Novelty of ``population[rows]`` among the whole population and the archive (each
        row's own behaviour left out of its neighbours)."""
        return novelty_scores(population[rows], self._reference(population), self.params.k, rows)

    def _reference(self, population: torch.Tensor) -> torch.Tensor:
        self._fit_width(population.shape[1])
        return torch.cat([population.float(), self.archive[: self.filled]])

    def _fit_width(self, d: int) -> None:
        if self.archive.shape[1] == d:
            return
        if self.filled:
            raise RuntimeError(f"selection 'novelty': behaviours changed width from {self.archive.shape[1]} to {d}")
        self.archive = torch.zeros(self.archive.shape[0], d, device=self.archive.device)

    def remember(self, behaviours: torch.Tensor, novelty: torch.Tensor) -> None:
        """Add the ``archive_add`` most novel of ``behaviours`` to the archive (a ring of
        ``archive_size`` rows)."""
        self.last_novelty = novelty
        add = min(self.params.archive_add, behaviours.shape[0])
        if add == 0:
            return
        self._fit_width(behaviours.shape[1])
        top = torch.topk(novelty, add).indices
        size = self.archive.shape[0]
        rows = (self.next + torch.arange(add, device=self.archive.device)) % size
        self.archive[rows] = behaviours[top].float()
        self.next = (self.next + add) % size
        self.filled = min(size, self.filled + add)
        self.added += add

    # ------------------------------------------------------------------ state (checkpoints)
    def state_dict(self) -> dict[str, Any]:
        return {"archive": self.archive[: self.filled].cpu().numpy(), "width": int(self.archive.shape[1]),
                "next": self.next, "added": self.added}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        rows = np.asarray(state["archive"], dtype=np.float32).reshape(-1, int(state["width"]))
        size = self.archive.shape[0]
        if rows.shape[0] > size:
            raise ValueError(f"selection 'novelty': the saved archive holds {rows.shape[0]} behaviours, "
                             f"more than plugin.novelty.archive_size = {size}")
        self.archive = torch.zeros(size, rows.shape[1], device=self.archive.device)
        self.archive[: rows.shape[0]] = torch.from_numpy(rows).to(self.archive.device)
        self.filled, self.next, self.added = rows.shape[0], int(state["next"]), int(state["added"])


ALIFE_PLUGINS = [Tournament, LinearRanking, FitnessSharing, NoveltySearch]
