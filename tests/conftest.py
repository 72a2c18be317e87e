import os

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

#: a small, fast world for tests
SMALL = {"world.width": 32, "world.height": 32, "world.initial_agents": 120, "world.capacity": 1024}


@pytest.fixture
def small_overrides():
    return dict(SMALL)
