"""A spy plugin for the two-role rules' tests (predator-prey, host-parasite)."""

from __future__ import annotations

import torch

from alife.plugins import hookimpl


class RoleWatch:
    """Records every birth's role (array ``array``) against its first parent's, and the highest
    ``eat`` output of any agent of role 1 that has acted (``ate``: -1.0 when none ever tried)."""

    def __init__(self, array: str):
        self.array = array
        self.births = self.mismatch = 0
        self.ate = -float("inf")

    @hookimpl
    def alife_agents_born(self, sim, births):
        roles = sim.arrays[self.array]
        kids = torch.as_tensor(births.slots)
        first = torch.as_tensor(births.parent_slots[:, 0])
        has = first >= 0
        self.births += int(has.sum())
        self.mismatch += int((roles[kids[has]] != roles[first[has]]).sum())

    @hookimpl
    def alife_step_end(self, sim, step):
        st = sim.world
        one = st.alive & (sim.arrays[self.array] == 1) & (st.age > 0)  # newborns have not acted
        self.ate = max(self.ate, float(st.last_action[one, 2].max()) if one.any() else -1.0)
