"""A task world (a ``[task]`` table) given to the ecology API is refused at once, in one line
that says what to call instead; no ecology world is built in its place."""

from __future__ import annotations

from pathlib import Path

import pytest

import alife
from alife.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TASK_WORLDS = ["cartpole.toml", "pendulum.toml"]


@pytest.fixture
def no_world_built(monkeypatch):
    """Fails the test if a WorldState is allocated (the meadow built in place of the task)."""
    import alife.simulation as sim_mod

    def refuse(*a, **k):
        raise AssertionError("an ecology world was built for a task world")

    monkeypatch.setattr(sim_mod, "WorldState", refuse)


@pytest.mark.parametrize("name", TASK_WORLDS)
def test_simulation_refuses_a_task_world(name, no_world_built):
    path = str(ROOT / "worlds" / name)
    with pytest.raises(ConfigError) as e:
        alife.Simulation(path)
    msg = str(e.value)
    assert "\n" not in msg
    assert "[task]" in msg
    assert "alife.generational.runner.TaskRun(" in msg
    assert f"alife run {path}" in msg


def test_simulation_refuses_a_task_table_from_a_dict(no_world_built):
    with pytest.raises(ConfigError, match="TaskRun"):
        alife.Simulation({"task": {"env_id": "CartPole-v1"}})


@pytest.mark.parametrize("name", TASK_WORLDS)
def test_make_env_refuses_a_task_world(name, no_world_built):
    path = str(ROOT / "worlds" / name)
    with pytest.raises(ConfigError) as e:
        alife.make_env(path)
    msg = str(e.value)
    assert "\n" not in msg
    assert "make_env" in msg
    assert "alife.generational.runner.TaskRun(" in msg
    assert f"alife run {path}" in msg


def test_an_ecology_world_is_still_built():
    sim = alife.Simulation(str(ROOT / "worlds" / "meadow.toml"),
                           overrides={"world.width": 32, "world.height": 32, "world.initial_agents": 20,
                                      "world.capacity": 256})
    sim.step()
    assert sim.step_count == 1
    sim.close()
