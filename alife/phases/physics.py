"""The physics phases of a step: clean the actions, turn, move and eat; fight; metabolism and the
deaths it causes; regrowth of the resource field.

Two implementations that agree (tests/test_physics.py): :class:`TorchPhysics`, whole-array torch
operations (CUDA, or a CPU without numba; the reference), and :class:`CpuPhysics`, fused numba
passes over the slot arrays (:mod:`alife.world.kernels`), which replace about a hundred small torch
operations per step. The simulation holds one and calls it in :meth:`alife.Simulation.step`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from alife.events import CAUSE_CODE
from alife.world.kernels import act_move_eat_cpu, fight_cpu, metabolism_cpu, regrow_cpu

if TYPE_CHECKING:
    from alife.simulation import Simulation


class TorchPhysics:
    """The physics phases as whole-array torch operations."""

    def __init__(self, sim: Simulation):
        self.sim = sim

    def move_eat(self, act: torch.Tensor, alive: torch.Tensor, nb: torch.Tensor, dist: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Clean the actions, turn and move, eat; returns ``(speed, invalid, attacking)``."""
        sim = self.sim
        cfg, st, a, n = sim.config, sim.world, sim.config.agent, alive.shape[0]
        # genomes are checked where they change (birth, learning): see _bad_genome
        invalid = (~torch.isfinite(act).all(1) | sim._bad_genome[:n]) & alive
        act = torch.nan_to_num(act, 0.0, 0.0, 0.0).clamp_(-1.0, 1.0)
        st.last_action[:n] = act
        st.ready[:n] = (act[:, 4] > 0) & alive
        speed = (act[:, 1] + 1.0) * 0.5 * alive.float()
        hd = torch.remainder(st.heading[:n] + act[:, 0] * a.max_turn, 2 * math.pi)
        st.heading[:n] = hd
        pos = st.pos[:n]
        step_len = speed * a.max_speed
        pos[:, 0].add_(hd.cos() * step_len).remainder_(cfg.world.width)
        pos[:, 1].add_(hd.sin() * step_len).remainder_(cfg.world.height)
        # agents in one cell share what it holds in proportion to their bites
        res = st.resource.view(-1)
        wdt, hgt = cfg.world.width, cfg.world.height
        cell = pos[:, 1].long().clamp_(0, hgt - 1) * wdt + pos[:, 0].long().clamp_(0, wdt - 1)
        demand = ((act[:, 2] > 0) & alive).float() * a.bite
        total = torch.bincount(cell, weights=demand, minlength=res.numel()).to(res.dtype)
        frac = torch.where(total > 0, (res / total.clamp(min=1e-12)).clamp(max=1.0), torch.zeros_like(res))
        res.sub_(total * frac)
        food = demand * frac[cell] * a.food_energy
        st.energy[:n] += food
        st.lifetime_energy[:n] += food
        attacking = (act[:, 3] > 0) & alive & (nb >= 0) & (dist <= a.contact_radius)
        return speed, invalid, attacking

    def fight(self, attacking: torch.Tensor, nb: torch.Tensor) -> torch.Tensor:
        """Attacks on each attacker's nearest agent; returns who was killed."""
        sim = self.sim
        st, a, n = sim.world, sim.config.agent, attacking.shape[0]
        energy = st.energy[:n]
        killed = torch.zeros(n, dtype=torch.bool, device=sim.device)
        attackers = attacking.nonzero().squeeze(1)
        if attackers.numel():
            damage, gain, targets = sim.hooks.interact(sim, attackers, nb[attackers])
            want = torch.zeros(n, device=sim.device).index_add_(0, targets, damage)
            have = energy.clamp(min=0)
            scale = torch.where(want > have, have / want.clamp(min=1e-12), torch.ones_like(want))[targets]
            taken = damage * scale
            energy.index_add_(0, targets, -taken)
            energy.index_add_(0, attackers, gain * scale)
            st.lifetime_energy.index_add_(0, attackers, gain * scale)
            killed[targets] = energy[targets] <= 1e-6
            energy.sub_(attacking.float() * a.attack_cost)
        return killed

    def metabolism(self, alive: torch.Tensor, speed: torch.Tensor, invalid: torch.Tensor,
                    killed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pay the step's cost and age; returns the slots that die and their causes."""
        sim = self.sim
        st, a, n = sim.world, sim.config.agent, alive.shape[0]
        energy = st.energy[:n]
        cost = a.base_cost + a.move_cost * speed * speed + a.brain_cost * sim.policy_params
        energy.sub_(cost * alive.float()).clamp_(max=a.max_energy)
        st.age[:n] += alive.long()
        killed = killed & alive
        starved = alive & (energy <= 0)
        old = alive & (st.age[:n] >= a.max_age)
        invalid = invalid | (alive & ~torch.isfinite(energy))
        slots = (invalid | killed | starved | old).nonzero().squeeze(1)
        # one cause each, by precedence: invalid > eaten > starved > old age
        cause = torch.full((slots.numel(),), CAUSE_CODE["old_age"], dtype=torch.uint8, device=sim.device)
        cause[starved[slots]] = CAUSE_CODE["starved"]
        cause[killed[slots]] = CAUSE_CODE["eaten"]
        cause[invalid[slots]] = CAUSE_CODE["invalid"]
        return slots, cause

    def regrow(self, step: int) -> None:
        sim = self.sim
        r, rc = sim.world.resource, sim.config.resource
        factor: Any = 1.0
        if sim._regrowth:
            for f in sim.hooks.resource_regrowth(sim, step):
                if f is not None:
                    factor = factor * f
        if sim._cpu and isinstance(factor, (int, float)):
            regrow_cpu(r.numpy(), rc.regrowth, rc.max, rc.seed_growth, float(factor))
            return
        growth = (rc.regrowth * r * (1.0 - r / rc.max) + rc.seed_growth) * factor
        r.add_(growth).clamp_(0.0, rc.max)


class CpuPhysics(TorchPhysics):
    """The physics phases as fused numba passes (the CPU with numba)."""

    def move_eat(self, act: torch.Tensor, alive: torch.Tensor, nb: torch.Tensor, dist: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        sim = self.sim
        a, n, v, sc = sim.config.agent, alive.shape[0], sim.world.np, sim._scratch
        speed, invalid, attacking = sc["speed"][:n], sc["invalid"][:n], sc["attacking"][:n]
        act_move_eat_cpu(
            act.contiguous().numpy(), alive.numpy(), sim._bad_genome[:n].numpy(), nb.numpy(),
            dist.numpy(), v.heading[:n], v.pos[:n, 0], v.pos[:n, 1], v.energy[:n],
            v.lifetime_energy[:n], v.last_action[:n], v.ready[:n], v.resource, sc["total"],
            sc["cell"][:n], speed, invalid, attacking, max_turn=a.max_turn, max_speed=a.max_speed,
            bite=a.bite, food_energy=a.food_energy, contact=a.contact_radius)
        return torch.from_numpy(speed), torch.from_numpy(invalid), torch.from_numpy(attacking)

    def fight(self, attacking: torch.Tensor, nb: torch.Tensor) -> torch.Tensor:
        sim = self.sim
        n, v = attacking.shape[0], sim.world.np
        killed = np.zeros(n, dtype=np.bool_)
        att = np.flatnonzero(attacking.numpy())
        if att.size:
            damage, gain, to = sim.hooks.interact(sim, torch.from_numpy(att), torch.from_numpy(nb.numpy()[att]))
            fight_cpu(att, np.ascontiguousarray(to.numpy()), damage.float().contiguous().numpy(),
                      gain.float().contiguous().numpy(), v.energy, v.lifetime_energy, killed,
                      sim._scratch["want"], sim.config.agent.attack_cost)
        return torch.from_numpy(killed)

    def metabolism(self, alive: torch.Tensor, speed: torch.Tensor, invalid: torch.Tensor,
                        killed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sim = self.sim
        a, n, v, sc = sim.config.agent, alive.shape[0], sim.world.np, sim._scratch
        k = metabolism_cpu(alive.numpy(), v.energy[:n], v.age[:n], speed.numpy(), invalid.numpy(),
                           killed.numpy(), sc["slots"], sc["cause"], base_cost=a.base_cost,
                           move_cost=a.move_cost, brain=a.brain_cost * sim.policy_params,
                           max_energy=a.max_energy, max_age=a.max_age, codes=sim._cause_codes)
        # copies: the scratch is rewritten next step, and hooks may keep what they are given
        return torch.from_numpy(sc["slots"][:k].copy()), torch.from_numpy(sc["cause"][:k].copy())
