"""Fixtures for generational tests, and a tiny image task for the CNN policy.

The image task shows an 8x8 noisy grey image whose left or right half is bright.

Action 0 means "left", 1 "right"; each of 8 steps pays 1 for the right answer, so returns lie in
[0, 8] and a random policy scores about 4.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

ENV_ID = "AlifeTest/TinyImage-v0"


class TinyImageEnv(gym.Env):
    observation_space = spaces.Box(0, 255, (8, 8, 1), np.uint8)
    action_space = spaces.Discrete(2)

    def _draw(self) -> np.ndarray:
        self.side = int(self.np_random.integers(2))
        img = self.np_random.integers(0, 60, size=(8, 8, 1)).astype(np.uint8)
        img[:, 4 * self.side:4 * self.side + 4] += 150
        return img

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self._draw(), {}

    def step(self, action):
        reward = float(int(action) == self.side)
        self.t += 1
        return self._draw(), reward, self.t >= 8, False, {}


def register() -> None:
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point=TinyImageEnv)


@pytest.fixture
def tiny_image_env_id() -> str:
    register()
    return ENV_ID


@pytest.fixture
def cartpole_world():
    """A factory of small CartPole worlds (dicts); keyword arguments override ``[task]`` keys."""
    return _cartpole_world


def _cartpole_world(**task) -> dict:
    t = {"env_id": "CartPole-v1", "generations": 6, "population": 16, "episodes": 1, "elite": 2,
         "parents": 4, "hidden": 8, "heldout_episodes": 10, "stop_at_threshold": False}
    t.update(task)
    return {"name": "cartpole-test", "task": t, "mutation": {"sigma_init": 0.1}}
