"""Interaction ``predation``: an attack takes energy from its target; the attacker eats part of it.

A target whose energy falls to zero dies with cause ``eaten``. Anyone may attack anyone; whether
to spare kin is left to evolution (agents see each other's kin tags).
"""

from __future__ import annotations

import torch

from alife.plugins import hookimpl
from alife.strategies.base import Strategy


class Predation(Strategy):
    role, name = "interaction", "predation"

    @hookimpl
    def alife_interact(self, sim, attackers: torch.Tensor, targets: torch.Tensor):
        a = sim.config.agent
        damage = torch.full((attackers.numel(),), a.attack_damage, device=attackers.device)
        return damage, damage * a.attack_gain


ALIFE_PLUGINS = [Predation]
