"""Selection ``energy-threshold``: ecology mode's implicit selection.

An agent reproduces when it has gathered ``agent.reproduce_energy`` (its own threshold where a
plugin registered the per-agent array: ``alife.world.arrays.reproduce_energy_per_agent``) and lived
``agent.min_reproduce_age`` steps; nothing else chooses. If it signalled readiness and its nearest
agent (within contact range) did too, that agent is proposed as its partner; the ``mating`` role
then decides whether the pair accepts each other.
"""

from __future__ import annotations

import torch

from alife.plugins import hookimpl
from alife.strategies.base import Strategy
from alife.strategies.kernels import on_cpu, select_cpu
from alife.world.arrays import reproduce_energy


class EnergyThreshold(Strategy):
    role, name = "selection", "energy-threshold"
    modes = ("world",)  # it reads energy and age, which a task run does not have
    #: the engine runs the four built-in reproduction roles fused on the CPU (alife.strategies.kernels)
    fused_kernel = "selection:energy-threshold"

    @hookimpl
    def alife_select_parents(self, sim, slots: torch.Tensor, neighbours: torch.Tensor, ready: torch.Tensor):
        st, a = sim.world, sim.config.agent
        if on_cpu(slots):
            return select_cpu(st, slots, neighbours, ready, reproduce_energy(sim), a.min_reproduce_age)
        return select_torch(st, a, slots, neighbours, ready, reproduce_energy(sim, slots))


ALIFE_PLUGINS = [EnergyThreshold]


def select_torch(st, a, slots: torch.Tensor, neighbours: torch.Tensor, ready: torch.Tensor,
                 min_energy: float | torch.Tensor | None = None):
    """``energy-threshold`` selection on tensors; ``min_energy`` the threshold of each of ``slots``
    (or one for all; default ``agent.reproduce_energy``)."""
    thr = a.reproduce_energy if min_energy is None else min_energy
    ok = (st.energy[slots] >= thr) & (st.age[slots] >= a.min_reproduce_age)
    parents = slots[ok]
    nb = neighbours[ok]
    has_partner = ready[ok] & (nb >= 0)
    nb_clamped = nb.clamp(min=0)
    partner_ready = st.ready[nb_clamped] & st.alive[nb_clamped]
    partners = torch.where(has_partner & partner_ready, nb, torch.full_like(nb, -1))
    return parents, partners
