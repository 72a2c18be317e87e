"""Base of interaction rules with two heritable roles (``predator-prey``, ``host-parasite``).

A rule of this kind keeps each agent's role per slot (an int8 plugin array, 0 or 1, inherited from
the first parent, so a role is a lineage's and never a slot's previous occupant's), makes a share
of the founders role 1 at the start (drawn with the run's generator; skipped on a resume, whose
arrays come back from the checkpoint), and records each role's count: as plugin series every
lineage sample (``<rule>.<name0>``, ``<rule>.<name1>``: into ``lineage.h5`` and onto the progress
bar), and into ``summary.json`` (the counts every ``record_every`` steps, their extremes and each
role's extinction step). Agents refilled after an extinction of the whole population get role 0.

Role 1 may breed at its own energy: where ``threshold_param`` names a field of ``Params`` that is
above 0, the rule registers the per-agent reproduction threshold
(:func:`alife.world.arrays.reproduce_energy_per_agent`) and gives role 1's founders that value;
children inherit their first parent's threshold with its role, so each role keeps its own.

With ``sense_roles = true`` in its parameters, the rule gives brains two observation channels
(``alife_observations``; the genome's policy input grows by 5): ``<rule>.role`` (the agent's own
role, 0 or 1) and ``<rule>.other`` (the nearest living agent of the other role within
``agent.sense_radius``: seen, distance over the radius, bearing as lateral and forward components,
as the world's nearest-agent senses), found with the senses' grid, two searches a step.

A subclass sets ``array`` (the role array's name), ``names`` (role 0's and role 1's, plural),
``share_param`` (the field of its ``Params`` holding role 1's share of the founders; ``Params``
also needs ``record_every``) and optionally ``threshold_param``, and implements what the roles do:
``alife_interact`` and, as it needs, ``alife_after_act`` and ``alife_step_start``. ``alife arms-race`` (:mod:`alife.armsrace`)
plays its roles from different checkpoints against each other through the same array.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import torch

from alife.config import ConfigError
from alife.plugins import hookimpl
from alife.strategies.base import Strategy, read_params
from alife.world.arrays import reproduce_energy_per_agent


class TwoRoles(Strategy):
    """Two heritable roles per slot: founders, counts, records (see the module docstring)."""

    role = "interaction"
    modes = ("world",)
    array: ClassVar[str] = ""
    names: ClassVar[tuple[str, str]] = ("", "")
    share_param: ClassVar[str] = ""
    threshold_param: ClassVar[str] = ""

    def setup(self, sim: Any) -> None:
        self.roles = sim.arrays.add_slot(self.array, dtype=torch.int8, inherit="first", fill=0)
        self.threshold = float(getattr(self.params, self.threshold_param, 0.0)) if self.threshold_param else 0.0
        if self.threshold > sim.config.agent.max_energy:
            raise ConfigError(sim.config.source, f"plugin.{self.name}.{self.threshold_param}",
                              f"{self.threshold} can never be reached with agent.max_energy = "
                              f"{sim.config.agent.max_energy}")
        self.thresholds = reproduce_energy_per_agent(sim) if self.threshold > 0 else None
        self.history: dict[str, list[int]] = {"step": [], self.names[0]: [], self.names[1]: []}
        self.extinct: dict[str, int | None] = {self.names[0]: None, self.names[1]: None}

    @hookimpl
    def alife_sim_start(self, sim: Any) -> None:
        if sim.resume_step is not None:  # the roles came back with the checkpoint's arrays
            return
        live = sim.world.alive_slots()
        k = round(float(getattr(self.params, self.share_param)) * live.numel())
        pick = torch.randperm(live.numel(), generator=sim.generator, device=live.device)[:k]
        self.roles[live[pick]] = 1
        if self.thresholds is not None:
            self.thresholds[live[pick]] = self.threshold

    # ------------------------------------------------------------------ senses
    @hookimpl
    def alife_observations(self, config: Any) -> list[tuple[str, int]] | None:
        p = read_params(self.Params, config, self.name)
        if not getattr(p, "sense_roles", False):
            return None
        return [(f"{self.name}.role", 1), (f"{self.name}.other", 4)]

    @hookimpl
    def alife_observe(self, sim: Any, n: int, obs: torch.Tensor) -> None:
        st = sim.world
        role = self.roles[:n].long()
        obs[:, sim.observation_columns(f"{self.name}.role")] = role.to(obs.dtype).unsqueeze(1)
        alive, pos, r = st.alive[:n], st.pos[:n], float(sim.config.agent.sense_radius)
        nb1, off1, d1 = sim.grid.nearest(pos, alive & (role == 1), r, query=alive)  # nearest of role 1, for role 0
        nb0, off0, d0 = sim.grid.nearest(pos, alive & (role == 0), r, query=alive)  # nearest of role 0, for role 1
        one = role == 1
        nb = torch.where(one, nb0, nb1)
        off = torch.where(one.unsqueeze(1), off0, off1)
        dist = torch.where(one, d0, d1)
        #: this step's nearest agent of the other role within the sense radius (-1: none) and its
        #: distance, per slot, as sensed (a rule may strike it: ``predator-prey``'s ``hunt``)
        self.other, self.other_dist = nb, dist
        seen = (nb >= 0).to(obs.dtype)
        hd = st.heading[:n]
        ch, sh = hd.cos(), hd.sin()
        inv = 1.0 / dist.clamp(min=1e-6)
        cols = sim.observation_columns(f"{self.name}.other")
        obs[:, cols] = torch.stack([seen, torch.where(nb >= 0, dist / r, torch.ones_like(dist)),
                                    (-off[:, 0] * sh + off[:, 1] * ch) * inv * seen,
                                    (off[:, 0] * ch + off[:, 1] * sh) * inv * seen], dim=1).to(obs.dtype)

    def counts(self, sim: Any) -> tuple[int, int]:
        """(role 0, role 1) among the living."""
        r = self.roles[sim.world.alive_slots()]
        ones = int((r == 1).sum())
        return int(r.numel()) - ones, ones

    def role_of(self, slots: torch.Tensor) -> torch.Tensor:
        return self.roles[slots]

    # ------------------------------------------------------------------ records
    @hookimpl
    def alife_step_end(self, sim: Any, step: int) -> None:
        n = self.counts(sim)
        for name, c in zip(self.names, n, strict=True):
            if c == 0 and self.extinct[name] is None:
                self.extinct[name] = int(step)
        if step % self.params.record_every == 0:
            self.history["step"].append(int(step))
            for name, c in zip(self.names, n, strict=True):
                self.history[name].append(c)

    @hookimpl
    def alife_series(self, sim: Any, step: int) -> dict[str, float]:
        return dict(zip(self.names, self.counts(sim), strict=True))

    @hookimpl
    def alife_summary(self, sim: Any) -> dict[str, Any]:
        h = self.history
        return {"final": dict(zip(self.names, self.counts(sim), strict=True)),
                "min": {k: min(h[k], default=None) for k in self.names},
                "max": {k: max(h[k], default=None) for k in self.names},
                "extinct_at_step": dict(self.extinct),
                "record_every": self.params.record_every, "counts": h}

    def state_dict(self) -> dict[str, Any]:
        return {"history": json.dumps(self.history), "extinct": json.dumps(self.extinct)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = json.loads(str(state["history"]))
        self.extinct = json.loads(str(state["extinct"]))
