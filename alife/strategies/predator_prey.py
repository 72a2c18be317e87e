"""Interaction ``predator-prey``: two heritable roles, prey that graze and predators that eat them.

Each agent has a role, kept per slot (``predator-prey.role``: 0 prey, 1 predator) and inherited
from its first parent, so a role is a lineage's, never a slot's previous occupant's. At the start
``predator_share`` of the founders (drawn from the run's generator) are predators; agents refilled
after an extinction of the whole population are prey. The rule, every step, for whole arrays:

- **what each role can do** (``alife_after_act``, on the chosen actions): predators cannot graze
  (their ``eat`` output is switched off), so a predator's only income is prey; with
  ``prey_attack = false`` prey cannot attack either (``attack`` off); with ``prey_max_speed``
  below 1 a prey's ``speed`` output is capped there, so prey cannot outrun predators;
- **what an attack strikes**: the world's rule, the attacker's nearest agent in contact range
  (``hunt = "nearest-agent"``; a predator whose nearest neighbour is another predator strikes it,
  to no effect), or with ``hunt = "nearest-prey"`` (and ``sense_roles``) a predator strikes the
  nearest prey within ``agent.contact_radius`` when there is one (the interaction redirects the
  attack: a third tensor of targets);
- **what an attack does** (``alife_interact``, the interaction role): a predator's attack on a prey
  takes ``damage`` energy from it and gives the predator ``gain`` of that, except on a prey inside
  the refuge (the band ``x < refuge * world.width``: there a predator's attack does nothing, the
  classic stabiliser of predator-prey cycles, a prey stock no predator can exhaust); a prey's attack on a
  prey is the world's own predation (``agent.attack_damage``, ``agent.attack_gain``: without it a
  prey population that nothing else thins overshoots its grass and crashes); a prey's attack on a
  predator does nothing, and so does a predator's unless ``predator_attack`` (then predators fight
  and eat predators as the world's agents do: cannibalism, which limits predators where they crowd). An agent whose energy reaches 0 dies ``eaten``;
- **what each role costs** (``alife_step_start``): a predator pays ``predator_cost`` energy a step
  on top of the world's ``agent.base_cost`` (a bigger body), so predators starve without prey.

Reproduction is the world's (``energy-threshold`` unless the world names another selection):
each role reproduces when it has gathered ``agent.reproduce_energy``; a predator that reproduces
makes a predator. Senses are the world's own: an agent sees its nearest agent's offset, energy and
kin tag, and the roles are separate lineages with separate kin tags from the first step, so the
two roles can tell each other apart by the tags they evolve.

Roles, founders and records come from :class:`alife.strategies.roles.TwoRoles`: each role's count
(``predator-prey.prey``, ``predator-prey.predators``) goes to the lineage file (and the progress
bar) and, every ``record_every`` steps, with its extremes and extinction step into ``summary.json``.
``alife lineage FILE summary`` reports the lag of the cross-correlation between the two counts
(:func:`alife.lineage.analysis.role_cycles`).

``worlds/predator_prey.toml`` uses it; ``[plugin.predator-prey]`` holds the parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from alife.config import setting
from alife.plugins import hookimpl
from alife.strategies.roles import TwoRoles

ROLE = "predator-prey.role"
PREY, PREDATOR = 0, 1
SPEED, EAT, ATTACK = 1, 2, 3  # action columns (alife.genome.ACTIONS: turn, speed, eat, attack, mate)


@dataclass
class PredatorPreyParams:
    predator_share: float = setting(0.2, "share of the founders that are predators", lo=0.0, hi=1.0)
    damage: float = setting(1.5, "energy a predator's attack takes from a prey", lo=0.0, hi=1e6)
    gain: float = setting(0.8, "share of the energy taken that the predator gains", lo=0.0, hi=1.0)
    predator_cost: float = setting(0.01, "energy a predator pays per step beyond agent.base_cost", lo=0.0, hi=1e6)
    prey_attack: bool = setting(True, "prey may attack prey (the world's own predation: agent.attack_damage, attack_gain); "
                                "false: prey cannot attack")
    predator_attack: bool = setting(False, "predators' attacks on predators do the world's predation (agent.attack_damage, "
                                    "attack_gain): fighting and cannibalism, a predator density limit; false: they do nothing")
    predator_reproduce_energy: float = setting(0.0, "energy at which a predator reproduces (0: agent.reproduce_energy, as for the other role)", lo=0.0, hi=1e6)
    prey_max_speed: float = setting(1.0, "fastest a prey moves, as a share of agent.max_speed (predators keep 1): "
                                    "below 1, prey cannot outrun predators", lo=0.0, hi=1.0)
    refuge: float = setting(0.0, "share of the world's width, a band from x = 0, where predators' attacks on prey do nothing "
                            "(a prey refuge; 0: none)", lo=0.0, hi=1.0)
    sense_roles: bool = setting(False, "brains sense their own role and the nearest agent of the other role "
                                "(5 more policy inputs; alife.strategies.roles)")
    hunt: str = setting("nearest-agent", "what a predator's attack strikes: its nearest agent (the world's rule; "
                        "another predator there absorbs it) or nearest-prey (the nearest prey within "
                        "agent.contact_radius, as sensed; needs sense_roles)",
                        choices=("nearest-agent", "nearest-prey"))
    record_every: int = setting(100, "steps between the counts kept for summary.json", lo=1, hi=1 << 30)


class PredatorPrey(TwoRoles):
    name, Params = "predator-prey", PredatorPreyParams
    array, names, share_param = ROLE, ("prey", "predators"), "predator_share"
    threshold_param = "predator_reproduce_energy"

    # ------------------------------------------------------------------ what each role does
    @hookimpl
    def alife_after_act(self, sim: Any, slots: torch.Tensor, actions: torch.Tensor) -> None:
        pred = self.roles[slots] == PREDATOR
        actions[:, EAT] = torch.where(pred, -1.0, actions[:, EAT])
        if not self.params.prey_attack:
            actions[:, ATTACK] = torch.where(pred, actions[:, ATTACK], -1.0)
        if self.params.prey_max_speed < 1.0:  # speed = (action + 1) / 2 of agent.max_speed
            cap = 2.0 * self.params.prey_max_speed - 1.0
            actions[:, SPEED] = torch.where(pred, actions[:, SPEED], actions[:, SPEED].clamp(max=cap))

    def setup(self, sim: Any) -> None:
        super().setup(sim)
        if self.params.hunt == "nearest-prey" and not self.params.sense_roles:
            from alife.config import ConfigError

            raise ConfigError(sim.config.source, "plugin.predator-prey.hunt",
                              "'nearest-prey' needs sense_roles = true (the nearest prey is what predators sense)")

    @hookimpl
    def alife_interact(self, sim: Any, attackers: torch.Tensor, targets: torch.Tensor):
        ra = self.roles[attackers]
        redirect = self.params.hunt == "nearest-prey"
        if redirect:  # a predator strikes the nearest prey in its contact range, if there is one
            prey, d = self.other[attackers], self.other_dist[attackers]
            take = (ra == PREDATOR) & (prey >= 0) & (d <= sim.config.agent.contact_radius)
            targets = torch.where(take, prey, targets)
        rt = self.roles[targets]
        hunt = (ra == PREDATOR) & (rt == PREY)
        if self.params.refuge > 0:  # prey inside the refuge band cannot be hunted
            hunt &= sim.world.pos[targets, 0] >= self.params.refuge * sim.config.world.width
        a = sim.config.agent
        # prey on prey (when prey_attack): the world's own predation; anything else does nothing
        fight = (ra == PREY) & (rt == PREY)
        if self.params.predator_attack:  # predators fight (and eat) predators as the world's agents do
            fight |= (ra == PREDATOR) & (rt == PREDATOR)
        damage = torch.where(hunt, self.params.damage, torch.where(fight, a.attack_damage, 0.0)).to(torch.float32)
        gain = damage * torch.where(hunt, self.params.gain, a.attack_gain).to(torch.float32)
        return (damage, gain, targets) if redirect else (damage, gain)

    @hookimpl
    def alife_step_start(self, sim: Any, step: int) -> None:
        if self.params.predator_cost > 0:
            st = sim.world
            pred = st.alive[: st.hw] & (self.roles[: st.hw] == PREDATOR)
            st.energy[: st.hw] -= torch.where(pred, self.params.predator_cost, 0.0)


ALIFE_PLUGINS = [PredatorPrey]
