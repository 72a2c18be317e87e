"""Motor noise: agents do not quite do what their brains chose.

A drop-in plugin that edits the chosen actions in place in ``alife_after_act``: Gaussian noise on
the turn and speed outputs (the motor commands), none on the eat, attack and mate switches. The
noise is drawn from ``sim.generator``, so a seed still reproduces a run. Noisy actuation rewards
policies that are robust to it, a standard way to keep evolved controllers from exploiting exact
dynamics (Jakobi, "Evolutionary robotics and the radical envelope-of-noise hypothesis", 1997).

The same file runs on a gymnasium task (``alife run worlds/cartpole.toml -p plugins/motor_noise.py``):
there the hook sees the policy's outputs before they become the task's action, and the noise goes
on the first two of them (the logits of CartPole's two actions, say). No branch on the mode.

Settings, in the world file::

    [plugin.motor_noise]
    sigma = 0.1   # standard deviation of the noise on turn and speed, in action units (>= 0)
"""

from __future__ import annotations

import math
from typing import Any

import torch

from alife.config import ConfigError
from alife.plugins import hookimpl

SETTINGS = "motor_noise"
MOTOR_COLUMNS = 2  # turn, speed


def sigma_of(sim: Any) -> float:
    """``[plugin.motor_noise] sigma``, checked; an error names the file and the key."""
    table = sim.config.plugin.get(SETTINGS, {})
    unknown = sorted(set(table) - {"sigma"})
    if unknown:
        raise ConfigError(sim.config.source, f"plugin.{SETTINGS}.{unknown[0]}", "unknown key; known keys: sigma")
    sigma = table.get("sigma", 0.1)
    if isinstance(sigma, bool) or not isinstance(sigma, int | float) or not math.isfinite(sigma) or sigma < 0:
        raise ConfigError(sim.config.source, f"plugin.{SETTINGS}.sigma", f"expected a number >= 0, got {sigma!r}")
    return float(sigma)


@hookimpl
def alife_sim_start(sim: Any) -> None:
    sigma_of(sim)  # refuse a bad setting before the first step


@hookimpl
def alife_after_act(sim: Any, slots: torch.Tensor, actions: torch.Tensor) -> None:
    sigma = sigma_of(sim)
    if sigma == 0.0 or slots.numel() == 0:
        return
    cols = min(MOTOR_COLUMNS, actions.shape[1])  # on a task: the first policy outputs
    noise = torch.randn(slots.numel(), cols, generator=sim.generator, device=actions.device)
    actions[:, :cols] += sigma * noise
