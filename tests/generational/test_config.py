"""The [task] table: parsed when present, absent otherwise, and every mistake named."""

from __future__ import annotations

import numpy as np
import pytest

from alife import config as config_mod
from alife.config import ConfigError
from alife.generational import TaskRun
from alife.generational.policy import SpaceError, policy_spec


def test_task_table_is_parsed_and_absent_stays_none():
    cfg = config_mod.load({"task": {"env_id": "CartPole-v1", "population": 12, "threshold": 400}})
    assert cfg.task.env_id == "CartPole-v1"
    assert cfg.task.population == 12 and cfg.task.threshold == 400.0
    assert config_mod.load(None).task is None
    assert config_mod.load({"name": "x"}).task is None


def test_shipped_task_worlds_load():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "worlds"
    for name in ("cartpole", "lunar_lander", "acrobot", "pendulum", "taxi"):
        cfg = config_mod.load(root / f"{name}.toml")
        assert cfg.task is not None and cfg.task.env_id


@pytest.mark.parametrize("key,value,needle", [
    ("populaton", 10, "task.populaton: unknown key; did you mean 'population'"),
    ("episodes", "three", "task.episodes: expected an integer"),
    ("population", 1, "task.population: expected a value >= 2"),
    ("eval_seeds", "sometimes", "task.eval_seeds: expected one of"),
    ("action_mapping", "softmax", "task.action_mapping"),
])
def test_bad_task_keys_are_named(key, value, needle):
    with pytest.raises(ConfigError) as e:
        config_mod.load({"task": {"env_id": "CartPole-v1", key: value}})
    assert needle in str(e.value)


def test_task_must_be_a_table():
    with pytest.raises(ConfigError, match=r"task: expected a table \[task\]"):
        config_mod.load({"task": "CartPole-v1"})


def test_inconsistent_task_keys_are_named(cartpole_world):
    with pytest.raises(ConfigError, match="task.elite"):
        TaskRun(cartpole_world(population=4, elite=4))
    with pytest.raises(ConfigError, match="task.parents"):
        TaskRun(cartpole_world(population=4, parents=5))


def test_unknown_env_id_is_a_clear_error(cartpole_world):
    with pytest.raises(ConfigError, match=r"task.env_id: 'NoSuchTask-v9' is not a gymnasium environment"):
        TaskRun(cartpole_world(env_id="NoSuchTask-v9"))
    with pytest.raises(ConfigError, match="task.env_id: empty"):
        TaskRun(cartpole_world(env_id=""))


def test_unsupported_spaces_are_refused():
    from gymnasium import spaces

    text = spaces.Text(5)
    with pytest.raises(SpaceError, match=r"^observation space Text\(.*cannot be driven") as e:
        policy_spec(text, spaces.Discrete(2))
    assert "\n" not in str(e.value)
    with pytest.raises(SpaceError, match=r"observation space Dict.*its part Text"):
        policy_spec(spaces.Dict({"a": spaces.Discrete(2), "b": text}), spaces.Discrete(2))
    with pytest.raises(SpaceError, match=r"observation space Sequence"):
        policy_spec(spaces.Sequence(spaces.Discrete(2)), spaces.Discrete(2))
    with pytest.raises(SpaceError, match=r"observation space Graph"):
        policy_spec(spaces.Graph(spaces.Box(-1, 1, (2,)), None), spaces.Discrete(2))
    with pytest.raises(SpaceError, match=r"^action space Tuple.*cannot be driven"):
        policy_spec(spaces.Box(-1, 1, (3,)), spaces.Tuple((spaces.Discrete(2), spaces.Discrete(3))))
    with pytest.raises(SpaceError, match=r"^action space Text"):
        policy_spec(spaces.Box(-1, 1, (3,)), text)
    with pytest.raises(SpaceError, match="unbounded"):
        policy_spec(spaces.Box(-1, 1, (3,)), spaces.Box(-float("inf"), float("inf"), (1,)))
    with pytest.raises(SpaceError, match="unbounded"):
        policy_spec(spaces.Box(-1, 1, (3,)), spaces.Box(np.array([-1.0, 0.0]), np.array([1.0, np.inf])))


def test_truncation_refuses_an_ecology_world():
    from alife.plugins.manager import PluginError
    from alife.simulation import Simulation

    # refused at start, before a single step, naming the strategy and both modes
    with pytest.raises(PluginError, match=r"strategy selection='truncation' \(plugin 'truncation'\) runs only in "
                                          r"a task run \(a world with a \[task\] table\), not in the persistent world"):
        Simulation({"world": {"initial_agents": 50, "capacity": 200, "width": 16, "height": 16},
                    "strategies": {"selection": "truncation"}}, seed=0)


def test_energy_threshold_is_refused_in_a_task_run_instead_of_swapped():
    from alife.generational.runner import TaskRun
    from alife.plugins.manager import PluginError

    with pytest.raises(PluginError, match=r"selection='energy-threshold'.*runs only in the persistent world, not in "
                                          r"a task run.*set \[strategies\] selection = \"truncation\""):
        TaskRun("worlds/cartpole.toml", overrides={"strategies.selection": "energy-threshold"})
