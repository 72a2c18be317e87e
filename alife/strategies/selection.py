"""Selection ``energy-threshold``: ecology mode's implicit selection.

An agent reproduces when it has gathered ``agent.reproduce_energy`` and lived
``agent.min_reproduce_age`` steps; nothing else chooses. If it signalled readiness and its nearest
agent (within contact range) did too, that agent is proposed as its partner; the ``mating`` role
then decides whether the pair accepts each other.
"""

from __future__ import annotations

import torch

from alife.plugins import hookimpl
from alife.strategies.base import Strategy
from alife.strategies.kernels import on_cpu, select_cpu


class EnergyThreshold(Strategy):
    role, name = "selection", "energy-threshold"
    modes = ("world",)  # it reads energy and age, which a task run does not have
    #: the engine runs the four built-in reproduction roles fused on the CPU (alife.strategies.kernels)
    fused_kernel = "selection:energy-threshold"

    @hookimpl
    def alife_select_parents(self, sim, slots: torch.Tensor, neighbours: torch.Tensor, ready: torch.Tensor):
        st, a = sim.world, sim.config.agent
        if on_cpu(slots):
            return select_cpu(st, slots, neighbours, ready, a.reproduce_energy, a.min_reproduce_age)
        return select_torch(st, a, slots, neighbours, ready)


ALIFE_PLUGINS = [EnergyThreshold]


def select_torch(st, a, slots: torch.Tensor, neighbours: torch.Tensor, ready: torch.Tensor):
    ok = (st.energy[slots] >= a.reproduce_energy) & (st.age[slots] >= a.min_reproduce_age)
    parents = slots[ok]
    nb = neighbours[ok]
    has_partner = ready[ok] & (nb >= 0)
    nb_clamped = nb.clamp(min=0)
    partner_ready = st.ready[nb_clamped] & st.alive[nb_clamped]
    partners = torch.where(has_partner & partner_ready, nb, torch.full_like(nb, -1))
    return parents, partners
