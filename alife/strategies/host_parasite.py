"""Interaction ``host-parasite``: hosts that graze, parasites that feed on hosts without killing them.

The second rule with two heritable roles (:class:`alife.strategies.roles.TwoRoles`: role per slot
``host-parasite.role``, 0 host, 1 parasite, inherited from the first parent; ``parasite_share`` of
the founders are parasites). Where a predator's attack kills, a parasite's takes a little and
leaves its host alive, so a parasite lineage lives as long as its hosts do, and a host can fight
back. The rule, every step, for whole arrays:

- **what each role can do** (``alife_after_act``): parasites cannot graze (their ``eat`` output is
  switched off); a parasite's only income is its hosts;
- **what an attack does** (``alife_interact``): a parasite's attack on a host drains ``drain``
  energy and gives the parasite ``gain`` of it, never taking a host below ``host_floor`` (the
  drains of several parasites on one host in one step are scaled down together to what the host
  has above the floor; the world's other attacks on that host in that step are the world's); a
  host's attack on a parasite is its **defence**: it takes ``defence`` energy from the parasite
  (which can kill it, death cause ``eaten``) and gives the host nothing; a host's attack on a host
  is the world's own predation (``agent.attack_damage``, ``agent.attack_gain``); a parasite's
  attack on a parasite does nothing;
- **what each role costs** (``alife_step_start``): a parasite pays ``parasite_cost`` a step beyond
  ``agent.base_cost``.

So the arms race runs both ways: parasites are selected to reach hosts and drain them, hosts to
keep parasites off (to attack them, or to flee). Counts go to ``lineage.h5`` (``host-parasite.hosts``,
``host-parasite.parasites``), to the progress bar and to ``summary.json``; ``alife lineage FILE
summary`` reports the lag of the cross-correlation between the two counts, ``alife arms-race RUN
--role-array host-parasite.role --names parasites,hosts`` the CIAO matrix.
``worlds/host_parasite.toml`` uses it; ``[plugin.host-parasite]`` holds the parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from alife.config import setting
from alife.plugins import hookimpl
from alife.strategies.roles import TwoRoles

ROLE = "host-parasite.role"
HOST, PARASITE = 0, 1
EAT = 2  # action column of eating (alife.genome.ACTIONS: turn, speed, eat, attack, mate)


@dataclass
class HostParasiteParams:
    parasite_share: float = setting(0.2, "share of the founders that are parasites", lo=0.0, hi=1.0)
    drain: float = setting(0.5, "energy a parasite's attack takes from a host", lo=0.0, hi=1e6)
    gain: float = setting(1.0, "share of the energy drained that the parasite gains", lo=0.0, hi=1.0)
    host_floor: float = setting(1.0, "energy a parasite always leaves its host (parasites never kill)", lo=0.0, hi=1e6)
    defence: float = setting(1.0, "energy a host's attack takes from a parasite (the host gains none)", lo=0.0, hi=1e6)
    parasite_cost: float = setting(0.0, "energy a parasite pays per step beyond agent.base_cost", lo=0.0, hi=1e6)
    parasite_reproduce_energy: float = setting(0.0, "energy at which a parasite reproduces (0: agent.reproduce_energy, as for the other role)", lo=0.0, hi=1e6)
    sense_roles: bool = setting(False, "brains sense their own role and the nearest agent of the other role "
                                "(5 more policy inputs; alife.strategies.roles)")
    record_every: int = setting(100, "steps between the counts kept for summary.json", lo=1, hi=1 << 30)


class HostParasite(TwoRoles):
    name, Params = "host-parasite", HostParasiteParams
    array, names, share_param = ROLE, ("hosts", "parasites"), "parasite_share"
    threshold_param = "parasite_reproduce_energy"

    @hookimpl
    def alife_after_act(self, sim: Any, slots: torch.Tensor, actions: torch.Tensor) -> None:
        par = self.roles[slots] == PARASITE
        actions[:, EAT] = torch.where(par, -1.0, actions[:, EAT])

    @hookimpl
    def alife_interact(self, sim: Any, attackers: torch.Tensor, targets: torch.Tensor):
        p, a = self.params, sim.config.agent
        ra, rt = self.roles[attackers], self.roles[targets]
        infect = (ra == PARASITE) & (rt == HOST)
        defend = (ra == HOST) & (rt == PARASITE)
        fight = (ra == HOST) & (rt == HOST)
        energy = sim.world.energy
        want = torch.where(infect, p.drain, 0.0).to(energy.dtype)
        asked = torch.zeros_like(energy).index_add_(0, targets, want)[targets]
        room = (energy[targets] - p.host_floor).clamp(min=0.0)
        drained = torch.where(asked > 0, want * (room / asked.clamp(min=1e-12)).clamp(max=1.0), 0.0)
        damage = torch.where(infect, drained,
                             torch.where(defend, p.defence, torch.where(fight, a.attack_damage, 0.0)))
        gain = torch.where(infect, drained * p.gain, torch.where(fight, damage * a.attack_gain, 0.0))
        return damage.to(torch.float32), gain.to(torch.float32)

    @hookimpl
    def alife_step_start(self, sim: Any, step: int) -> None:
        if self.params.parasite_cost > 0:
            st = sim.world
            par = st.alive[: st.hw] & (self.roles[: st.hw] == PARASITE)
            st.energy[: st.hw] -= torch.where(par, self.params.parasite_cost, 0.0)


ALIFE_PLUGINS = [HostParasite]
