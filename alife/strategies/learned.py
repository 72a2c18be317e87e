"""Learned variation: the genome's own mutator network mutates, crosses over and speciates.

Every genome carries a mutator network (``mutator.w1 [Hm, 4]``, ``b1``, ``w2 [1, Hm]``, ``b2``)
whose inputs are :data:`alife.genome.MUTATOR_FEATURES`: a parameter's ``value``, a ``noise`` draw
``N(0, 1)``, the ``tensor_rms`` of the tensor it belongs to and ``is_bias`` (1 for bias vectors).
Three strategies put it to work:

**Mutation ``learned``.** The parent's mutator network reads the genome to vary through the layout,
parameter by parameter, and writes the change::

    delta_i = rate_seg(i) * (w2 . tanh(w1 @ [value_i, noise_i, rms_t(i), is_bias_t(i)] + b1) + b2)

The per-segment rates are the genome's ``mutator.log_sigma`` (one heritable log rate each for the
policy, mutator and compatibility segments, the tensor the Gaussian reads as its step sizes), so
the mutator changes itself at its own rate. A **Gaussian escape** keeps exploration alive: with the
heritable probability ``sigmoid(mutator.escape_p)`` a child also gets
``N(0, exp(mutator.escape_sigma)^2)`` on every parameter (two heritable tensors it adds). The rates and the escape are ordinary mutator-segment parameters: the network
varies them like the rest (clamped to ``[mutation] sigma_min..sigma_max`` and a probability in
``[1e-4, 1 - 1e-4]``). ``[plugin.learned] rate_scale_<segment>`` multiplies a segment's rate; 0
copies that segment unchanged, escape included (``rate_scale_mutator = 0`` is the frozen mutator
of the ablation). All the children of a step go through their parents' mutators in one batched
pass (``torch.baddbmm`` with per-child weights over ``[k, 4, genome_size]`` features, in blocks of
children that stay in cache), never a Python loop over children.

**Reproduction ``learned-crossover``.** For two parents, the first parent's mutator network looks
at each tensor of both (features: the rms of their difference, noise, the first parent's rms of the
tensor, is_bias) and a gate head (``mutator.gate_w [1, Hm]``, ``mutator.gate_b [1]``, heritable
tensors it adds) turns its hidden layer into a gate ``g = sigmoid(gate_w . h + gate_b)`` per tensor;
the child's tensor is ``g * first + (1 - g) * second`` (``g = 1``: the first parent's tensor,
``g = 0``: the second's). Then the ``mutation`` role varies the child. One parent: a copy, varied.

**Speciation ``compatibility-groups``.** Species are groups that would mate: each species keeps a
representative, its founder's compatibility segment (kin tag and network; per-species array
``compatibility-groups.rep``). A child stays in its first parent's species while it and the
representative accept each other (both networks, each reading its own tag and the difference to
the other's, as the mating role does): ``min(sigmoid(l_child->rep), sigmoid(l_rep->child)) >=
threshold``. Otherwise it founds a new species through ``sim.new_species`` and becomes its
representative. Ids never change: no relabelling, so lineage files and the viewer can follow a
species. The networks read the kin tags (``compatibility.tag``), so they need no projection of the
genome; none is stored per genome.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from alife.config import setting
from alife.genome import SEGMENTS, GenomeTensor, Layout, compatibility_logit
from alife.plugins import hookimpl
from alife.strategies.base import Strategy, read_params

ESCAPE_P, ESCAPE_SIGMA = "mutator.escape_p", "mutator.escape_sigma"
GATE_W, GATE_B = "mutator.gate_w", "mutator.gate_b"
#: children per block of the batched pass (its ``[block, Hm, genome_size]`` activations stay in cache)
BLOCK = 32
_BIAS = re.compile(r"(^|_)b\d*$")
P_MIN = 1e-4


def is_bias(name: str) -> bool:
    """Whether a tensor is a bias vector (``b1``, ``b2``, ``gate_b``): the ``is_bias`` feature."""
    return _BIAS.search(name) is not None


class LayoutConsts:
    """What the batched passes need from a layout, computed once per run."""

    def __init__(self, layout: Layout, device: Any):
        self.layout = layout
        self.tensor_index = layout.tensor_index().to(device)
        self.segment_index = layout.segment_index().to(device)
        self.sizes = torch.tensor([e.size for e in layout.entries], dtype=torch.float32, device=device)
        self.bias_t = torch.tensor([1.0 if is_bias(e.name) and len(e.shape) == 1 else 0.0 for e in layout.entries],
                                   device=device)
        self.bias = self.bias_t[self.tensor_index]
        self.n_tensors = len(layout.entries)
        #: ``(start, end)`` of each segment, in the order of ``SEGMENTS``
        self.segments = [layout.segment_range(seg) for seg in SEGMENTS]

    def tensor_rms(self, g: torch.Tensor) -> torch.Tensor:
        """``[k, T]``: the rms of each tensor of each row."""
        sq = torch.zeros(g.shape[0], self.n_tensors, dtype=g.dtype, device=g.device)
        sq.index_add_(1, self.tensor_index, g * g)
        return (sq / self.sizes).sqrt_()


def tanh_(t: torch.Tensor) -> torch.Tensor:
    """``tanh`` in place. On the CPU through numpy's ``tanh`` (vectorised; this torch build's CPU
    ``tanh`` costs about 8x more per element here, and it is most of the batched pass)."""
    if t.device.type == "cpu" and t.is_contiguous() and t.dtype == torch.float32 and not t.requires_grad:
        a = t.numpy()
        np.tanh(a, out=a)
        return t
    return t.tanh_()


def mutator_weights(layout: Layout, rows: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The mutator networks of ``rows`` (``[k, genome_size]``): ``w1 [k, Hm, 4]``, ``b1 [k, Hm]``,
    ``w2 [k, 1, Hm]``, ``b2 [k, 1]``, contiguous (one copy of the span they occupy)."""
    es = [layout[f"mutator.{n}"] for n in ("w1", "b1", "w2", "b2")]
    a = min(e.offset for e in es)
    span = rows[:, a:max(e.offset + e.size for e in es)].contiguous()
    return tuple(span[:, e.offset - a:e.offset - a + e.size].unflatten(1, e.shape) if len(e.shape) > 1
                 else span[:, e.offset - a:e.offset - a + e.size] for e in es)


def gather_rows(g: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``g[idx]`` (a copy); on the CPU through numpy's ``take``, which costs less there."""
    if g.device.type == "cpu" and not g.requires_grad:
        return torch.from_numpy(np.take(g.numpy(), idx.numpy(), axis=0))
    return g[idx]


def learned_delta(values: torch.Tensor, noise: torch.Tensor, c: LayoutConsts, w1: torch.Tensor, b1: torch.Tensor,
                  w2: torch.Tensor, b2: torch.Tensor, block: int = BLOCK) -> torch.Tensor:
    """The raw output of each row's mutator network for every parameter of ``values`` (``[k, G]``),
    before the segment rates: ``w2 . tanh(w1 @ x + b1) + b2`` with ``x = [value, noise, rms, is_bias]``.

    One batched pass per block of rows (``torch.baddbmm`` with per-row weights over ``[b, 4, G]``
    features); no loop over rows inside a block.
    """
    k, g = values.shape
    out = torch.empty(k, g, dtype=values.dtype, device=values.device)
    rms = c.tensor_rms(values)
    for a in range(0, k, block):
        e = min(k, a + block)
        x = torch.stack([values[a:e], noise[a:e], rms[a:e][:, c.tensor_index],
                         c.bias.expand(e - a, g)], dim=1)  # [b, 4, G]
        h = tanh_(torch.baddbmm(b1[a:e].unsqueeze(2), w1[a:e], x))  # [b, Hm, G]
        out[a:e] = torch.baddbmm(b2[a:e].unsqueeze(2), w2[a:e], h).squeeze(1)
    return out


def reference_delta(values: torch.Tensor, noise: torch.Tensor, layout: Layout, parents_rows: torch.Tensor) -> torch.Tensor:
    """:func:`learned_delta` computed child by child and parameter by tensor in plain Python, for
    tests: the definition, without batching."""
    out = torch.empty_like(values)
    for r in range(values.shape[0]):
        w1 = layout.view(parents_rows[r:r + 1], "mutator.w1")[0]
        b1 = layout.view(parents_rows[r:r + 1], "mutator.b1")[0]
        w2 = layout.view(parents_rows[r:r + 1], "mutator.w2")[0]
        b2 = layout.view(parents_rows[r:r + 1], "mutator.b2")[0]
        for e in layout.entries:
            v = values[r, e.offset:e.offset + e.size]
            rms = v.pow(2).mean().sqrt()
            fb = 1.0 if is_bias(e.name) and len(e.shape) == 1 else 0.0
            for i in range(e.size):
                x = torch.stack([v[i], noise[r, e.offset + i], rms, torch.tensor(fb)])
                out[r, e.offset + i] = w2[0] @ torch.tanh(w1 @ x + b1) + b2[0]
    return out


@dataclass
class LearnedParams:
    rate_scale_policy: float = setting(1.0, "multiplies the policy segment's heritable rate; 0 copies it unchanged", lo=0.0, hi=100.0)
    rate_scale_mutator: float = setting(1.0, "multiplies the mutator segment's heritable rate; 0: a frozen mutator", lo=0.0, hi=100.0)
    rate_scale_compatibility: float = setting(1.0, "multiplies the compatibility segment's heritable rate; 0 copies it unchanged", lo=0.0, hi=100.0)
    escape_p: float = setting(0.2, "initial probability of the Gaussian escape (heritable)", lo=P_MIN, hi=1 - P_MIN)
    escape_sigma: float = setting(0.0, "initial scale of the escape (heritable); 0: [mutation] sigma_init", lo=0.0, hi=10.0)
    block: int = setting(BLOCK, "children per block of the batched pass", lo=1, hi=1 << 20)


def learned_mutate(genomes: torch.Tensor, parent_rows: torch.Tensor, c: LayoutConsts, rate_scale: torch.Tensor,
                   sigma_min: float, sigma_max: float, generator: torch.Generator, block: int = BLOCK) -> torch.Tensor:
    """Vary ``genomes`` (``[k, G]``, modified in place) by the mutator networks of ``parent_rows``
    (the parents' genomes): the network's output times each segment's rate (``exp(log_sigma)``
    times ``rate_scale [3]``), plus the Gaussian escape where it fires. Draws, in order: the noise
    feature ``[k, G]``, one uniform per child (the escape), the escape noise of the children it
    fired for."""
    k = genomes.shape[0]
    if k == 0:
        return genomes
    lay = c.layout
    dev = genomes.device
    noise = torch.randn(genomes.shape, generator=generator, device=dev)
    w1, b1, w2, b2 = mutator_weights(lay, parent_rows)
    out = learned_delta(genomes, noise, c, w1, b1, w2, b2, block)
    rates = lay.view(parent_rows, "mutator.log_sigma").exp() * rate_scale  # [k, 3]
    for s, (a, b) in enumerate(c.segments):  # each segment is one contiguous span of the layout
        out[:, a:b].mul_(rates[:, s:s + 1])
    p = torch.sigmoid(lay.view(parent_rows, ESCAPE_P)[:, 0])
    fire = torch.rand(k, generator=generator, device=dev) < p
    idx = fire.nonzero().squeeze(1)
    if idx.numel():
        z = torch.randn(idx.numel(), genomes.shape[1], generator=generator, device=dev)
        z.mul_(lay.view(parent_rows, ESCAPE_SIGMA)[idx].exp())
        for s, (a, b) in enumerate(c.segments):
            if float(rate_scale[s]) == 0.0:
                z[:, a:b] = 0.0
        out[idx] += z
    genomes.add_(out)
    _clamp_controls(genomes, lay, rate_scale, sigma_min, sigma_max)
    return genomes


def _clamp_controls(g: torch.Tensor, lay: Layout, rate_scale: torch.Tensor, sigma_min: float, sigma_max: float) -> None:
    if float(rate_scale[SEGMENTS.index("mutator")]) == 0.0:
        return  # the mutator segment was copied unchanged
    lo, hi = math.log(sigma_min), math.log(sigma_max)
    lay.view(g, "mutator.log_sigma").clamp_(lo, hi)
    lim = math.log((1 - P_MIN) / P_MIN)
    lay.view(g, ESCAPE_P).clamp_(-lim, lim)
    lay.view(g, ESCAPE_SIGMA).clamp_(lo, hi)


class LearnedMutation(Strategy):
    role, name, Params = "mutation", "learned", LearnedParams

    def setup(self, sim: Any) -> None:
        self.consts = LayoutConsts(sim.layout, sim.device)
        p = self.params
        self.rate_scale = torch.tensor([p.rate_scale_policy, p.rate_scale_mutator, p.rate_scale_compatibility],
                                       dtype=torch.float32, device=sim.device)

    @hookimpl
    def alife_genome_tensors(self, config: Any) -> list[GenomeTensor]:
        p = read_params(LearnedParams, config, self.name)  # before alife_setup: from the configuration
        sigma = p.escape_sigma or config.mutation.sigma_init
        return [GenomeTensor("mutator", "escape_p", (1,), init=math.log(p.escape_p / (1 - p.escape_p))),
                GenomeTensor("mutator", "escape_sigma", (1,), init=math.log(sigma))]

    @hookimpl
    def alife_mutate(self, sim: Any, genomes: torch.Tensor, parents: torch.Tensor) -> torch.Tensor:
        m = sim.config.mutation
        return learned_mutate(genomes, gather_rows(sim.world.genomes, parents), self.consts, self.rate_scale,
                              m.sigma_min, m.sigma_max, sim.generator, self.params.block)


# ---------------------------------------------------------------------------------------- crossover
def crossover_gates(a: torch.Tensor, b: torch.Tensor, mut_rows: torch.Tensor, c: LayoutConsts,
                    noise: torch.Tensor) -> torch.Tensor:
    """``[k, T]``: the gate each row's mutator network (in ``mut_rows``) computes for each tensor
    of the parent pair ``a``, ``b``: ``sigmoid(gate_w . tanh(w1 @ x + b1) + gate_b)`` with ``x =
    [rms(b_t - a_t), noise, rms(a_t), is_bias]``. One batched pass over ``[k, 4, T]``."""
    lay = c.layout
    k = a.shape[0]
    x = torch.stack([c.tensor_rms(b - a), noise, c.tensor_rms(a), c.bias_t.expand(k, c.n_tensors)], dim=1)
    w1, b1, _, _ = mutator_weights(lay, mut_rows)
    h = tanh_(torch.baddbmm(b1.unsqueeze(2), w1, x))  # [k, Hm, T]
    gw = lay.view(mut_rows, GATE_W).contiguous()  # [k, 1, Hm]
    return torch.baddbmm(lay.view(mut_rows, GATE_B).unsqueeze(2), gw, h).squeeze(1).sigmoid_()


def learned_crossover(a: torch.Tensor, b: torch.Tensor, mut_rows: torch.Tensor, c: LayoutConsts,
                      generator: torch.Generator) -> torch.Tensor:
    """Children blending ``a`` and ``b`` tensor by tensor: ``g * a + (1 - g) * b`` with the gates
    of :func:`crossover_gates` (one noise draw ``[k, T]``)."""
    noise = torch.randn(a.shape[0], c.n_tensors, generator=generator, device=a.device)
    gate = crossover_gates(a, b, mut_rows, c, noise)[:, c.tensor_index]
    return torch.lerp(b, a, gate)


@dataclass
class GateParams:
    gate_init_std: float = setting(0.1, "spread of the initial gate weights (gate_w)", lo=0.0, hi=10.0)


class LearnedCrossover(Strategy):
    role, name, Params = "reproduction", "learned-crossover", GateParams

    def setup(self, sim: Any) -> None:
        self.consts = LayoutConsts(sim.layout, sim.device)

    @hookimpl
    def alife_genome_tensors(self, config: Any) -> list[GenomeTensor]:
        p = read_params(GateParams, config, self.name)
        hm = config.brain.mutator_hidden
        return [GenomeTensor("mutator", "gate_w", (1, hm), init_std=p.gate_init_std),
                GenomeTensor("mutator", "gate_b", (1,))]

    @hookimpl
    def alife_reproduce(self, sim: Any, parents: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
        g = sim.world.genomes
        child = gather_rows(g, parents)
        two = (partners >= 0).nonzero().squeeze(1)
        if two.numel():
            first = child[two]
            child[two] = learned_crossover(first, gather_rows(g, partners[two]), first, self.consts, sim.generator)
        return sim.hooks.mutate(sim, child, parents)


# ---------------------------------------------------------------------------------------- species
REP = "compatibility-groups.rep"


@dataclass
class GroupParams:
    threshold: float = setting(0.5, "mutual acceptance (the lower of the two sigmoids) below which a child founds a species",
                               lo=0.0, lo_open=True, hi=0.999)


class CompatibilityGroups(Strategy):
    role, name, Params = "speciation", "compatibility-groups", GroupParams

    def setup(self, sim: Any) -> None:
        lay = sim.layout
        self.start, end = lay.segment_range("compatibility")
        # the compatibility segment alone, offsets from 0: the representatives' rows
        self.sub = Layout([(e.segment, e.name, e.shape) for e in lay.entries if e.segment == "compatibility"])
        sim.arrays.add_species(REP, shape=(end - self.start,), inherit="parent")

    def _seg(self, genomes: torch.Tensor) -> torch.Tensor:
        return genomes[:, self.start:self.start + self.sub.size]

    @hookimpl
    def alife_sim_start(self, sim: Any) -> None:
        if sim.resume_step is not None:
            return  # the representatives come from the checkpoint
        st = sim.world
        live = st.alive_slots()
        if live.numel() == 0:
            return
        # each species' representative: its living member in the lowest slot
        sp = st.species[live]
        first = torch.full((sim.arrays.n_species,), -1, dtype=torch.long, device=sim.device)
        first.scatter_reduce_(0, sp, live, reduce="amin", include_self=False)
        have = (first >= 0).nonzero().squeeze(1)
        sim.arrays[REP][have] = self._seg(st.genomes[first[have]])

    def acceptance(self, child_seg: torch.Tensor, rep_seg: torch.Tensor) -> torch.Tensor:
        """``[k]``: mutual acceptance of each child and its representative, the lower of the two
        networks' sigmoids (each reads its own tag and the difference to the other's)."""
        a = compatibility_logit(child_seg, rep_seg, self.sub)
        b = compatibility_logit(rep_seg, child_seg, self.sub)
        return torch.minimum(a, b).sigmoid()

    @hookimpl
    def alife_speciate(self, sim: Any, genomes: torch.Tensor, parent_species: torch.Tensor, step: int) -> torch.Tensor:
        species = parent_species.clone()
        if genomes.shape[0] == 0:
            return species
        seg = self._seg(genomes)
        out = self.acceptance(seg, sim.arrays[REP][parent_species]) < self.params.threshold
        idx = out.nonzero().squeeze(1)
        if idx.numel():
            tags = self.sub.view(seg[idx], "compatibility.tag").clone()
            new = sim.new_species(tags, parent_species[idx], step)
            sim.arrays[REP][new] = seg[idx]
            species[idx] = new
        return species


ALIFE_PLUGINS = [LearnedMutation, LearnedCrossover, CompatibilityGroups]
