"""The world's default behaviour characterisation (hook ``alife_behaviour``).

A per-agent vector for novelty search and evolvability ES: the agent's last action (turn, speed,
eat, attack, mate, each in [-1, 1]), its energy over ``agent.max_energy`` and its age over
``agent.max_age``. It is answered last (registered first), so any plugin implementing
``alife_behaviour`` replaces it.
"""

from __future__ import annotations

import torch

from alife.plugins import hookimpl


@hookimpl(trylast=True)
def alife_behaviour(sim, slots: torch.Tensor):
    st, a = sim.world, sim.config.agent
    if not hasattr(st, "last_action") or not hasattr(a, "max_age"):
        return None  # not a world (a task runner answers with its own default)
    return torch.cat([st.last_action[slots], (st.energy[slots] / a.max_energy).unsqueeze(1),
                      (st.age[slots].float() / a.max_age).unsqueeze(1)], dim=1)
