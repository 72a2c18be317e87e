"""The drop-in examples in ``plugins/``: seasons (and ``worlds/seasons.toml``) and motor noise."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from alife.cli.main import main
from alife.cli.run import cli_plugins
from alife.plugins.manager import PluginError
from alife.simulation import Simulation

MakeSim = Callable[..., Simulation]

REPO = Path(__file__).resolve().parents[2]
SEASONS_WORLD = REPO / "worlds" / "seasons.toml"
PLUGINS = REPO / "plugins"
R0 = 0.3  # the resource level every measured step starts from


def still(sim: Simulation) -> torch.Tensor:
    """Actions for every slot: nobody moves, eats, attacks or courts, so only regrowth changes
    the resource field."""
    act = torch.full((sim.config.world.capacity, 5), -1.0)
    act[:, 0] = 0.0
    return act


def regrowth_per_step(sim: Simulation, steps: int) -> list[torch.Tensor]:
    """The ``[height, width]`` regrowth of each of ``steps`` steps, each starting from ``R0``."""
    grown = []
    for _ in range(steps):
        sim.world.resource.fill_(R0)
        sim.step(actions=still(sim))
        grown.append(sim.world.resource - R0)
    return grown


def seasons_sim(make_sim: MakeSim, **settings: Any) -> Simulation:
    return make_sim(str(SEASONS_WORLD), overrides={f"plugin.seasons.{k}": v for k, v in settings.items()})


# ------------------------------------------------------------------------------- seasons


def test_the_seasons_world_loads_the_drop_in_and_runs(make_sim: MakeSim) -> None:
    sim = make_sim(str(SEASONS_WORLD))
    info = {p.name: p for p in sim.hooks.plugins()}["seasons"]
    assert info.origin == f"{SEASONS_WORLD} plugins"
    assert info.hooks == ["alife_resource_regrowth", "alife_sim_start"]
    sim.run(30)
    assert sim.population > 0 and sim.totals["births"] > 0


def test_regrowth_follows_the_season(make_sim: MakeSim) -> None:
    # a year of 8 steps: step 0 is spring (x1), step 2 summer (x1.5), step 4 autumn, step 6 winter (x0.5)
    grown = regrowth_per_step(seasons_sim(make_sim, period=8, amplitude=0.5, latitude=False), 8)
    base = regrowth_per_step(make_sim(str(SEASONS_WORLD), blocked=["seasons"]), 8)
    spring, summer, autumn, winter = (grown[i].mean().item() for i in (0, 2, 4, 6))
    normal = base[0].mean().item()
    assert normal > 0 and all(torch.allclose(b, base[0]) for b in base)  # without seasons: constant
    assert summer == pytest.approx(1.5 * normal, rel=1e-4)
    assert winter == pytest.approx(0.5 * normal, rel=1e-4)
    assert spring == pytest.approx(normal, rel=1e-4) and autumn == pytest.approx(normal, rel=1e-3)
    assert torch.allclose(grown[2], grown[2].mean().expand_as(grown[2]))  # the same everywhere


def test_latitude_gives_the_two_halves_opposite_seasons(make_sim: MakeSim) -> None:
    sim = seasons_sim(make_sim, period=8, amplitude=0.5, latitude=True)
    grown = regrowth_per_step(sim, 3)
    normal = grown[0].mean().item()  # spring: no swing anywhere
    summer = grown[2]
    h = summer.shape[0]
    assert summer.shape == tuple(sim.world.resource.shape)
    assert summer[0].mean().item() == pytest.approx(1.5 * normal, rel=1e-4)        # summer here...
    assert summer[h // 2].mean().item() == pytest.approx(0.5 * normal, rel=1e-4)   # ...winter there
    assert summer[h // 4].mean().item() == pytest.approx(normal, rel=1e-4)         # no seasons at the equator
    assert torch.allclose(summer[:, 0], summer[:, -1])  # the pattern runs along rows


def test_each_simulation_keeps_its_own_seasons(make_sim: MakeSim, monkeypatch: pytest.MonkeyPatch) -> None:
    # loaded with -p, the plugin is one module object shared by both simulations
    monkeypatch.syspath_prepend(str(PLUGINS))
    world = {"plugin": {"seasons": {"period": 8, "latitude": False}}}
    strong = make_sim(world, modules=["seasons"], overrides={"plugin.seasons.amplitude": 0.5})
    weak = make_sim(world, modules=["seasons"], overrides={"plugin.seasons.amplitude": 0.1})
    assert strong.hooks.get_plugin("seasons") is weak.hooks.get_plugin("seasons")
    g_strong, g_weak = regrowth_per_step(strong, 3), regrowth_per_step(weak, 3)
    normal = g_strong[0].mean().item()
    assert g_strong[2].mean().item() == pytest.approx(1.5 * normal, rel=1e-4)
    assert g_weak[2].mean().item() == pytest.approx(1.1 * normal, rel=1e-4)


@pytest.mark.parametrize("key, value, expected", [
    ("period", 0, "plugin.seasons.period: expected a value in (0.0, inf), got 0"),
    ("period", "long", "plugin.seasons.period: expected a number, got 'long'"),
    ("amplitude", 1.5, "plugin.seasons.amplitude: expected a value in [0.0, 1.0], got 1.5"),
    ("phase", 1.0, "plugin.seasons.phase: expected a value in [0.0, 1.0), got 1.0"),
    ("latitude", "yes", "plugin.seasons.latitude: expected true or false, got 'yes'"),
    ("perod", 10, "plugin.seasons.perod: unknown key; did you mean 'period'?"),
])
def test_bad_seasons_settings_are_refused_naming_the_key(make_sim: MakeSim, key: str, value: Any, expected: str) -> None:
    with pytest.raises(PluginError) as e:
        seasons_sim(make_sim, **{key: value})
    assert str(e.value) == (f"plugin 'seasons' raised in hook alife_sim_start: ConfigError: "
                            f"{SEASONS_WORLD}: {expected}")


def small_run_args(tmp_path: Path) -> list[str]:
    argv = ["--out", str(tmp_path / "run"), "--no-progress", "--device", "cpu", "--set", "world.width=32",
            "--set", "world.height=32", "--set", "world.initial_agents=100", "--set", "world.capacity=512"]
    for name in cli_plugins().recorder_names():
        argv += ["--no-record", name]
    return argv


def test_alife_run_with_the_seasons_world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(SEASONS_WORLD), "--steps", "10", *small_run_args(tmp_path)]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    plugins = {p["name"]: p for p in summary["plugins"]}
    assert plugins["seasons"]["origin"] == f"{SEASONS_WORLD} plugins"
    assert plugins["seasons"]["active"] is True
    assert summary["steps"] == 10


def test_alife_run_with_a_bad_season_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", str(SEASONS_WORLD), "--steps", "10", "--set", "plugin.seasons.amplitude=2", *small_run_args(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "plugin.seasons.amplitude: expected a value in [0.0, 1.0], got 2" in err[0]


# ------------------------------------------------------------------------------- motor noise


def fixed_actions(sim: Simulation) -> torch.Tensor:
    act = torch.zeros(sim.config.world.capacity, 5)
    act[:, 2:] = -1.0  # no eating, attacking or courting: only the motor columns matter here
    return act


def test_motor_noise_perturbs_turn_and_speed_by_sigma(make_sim: MakeSim) -> None:
    sim = make_sim(overrides={"plugin.motor_noise.sigma": 0.2}, plugins_dirs=[PLUGINS],
                   blocked=["seasons"])
    quiet = make_sim(plugins_dirs=[PLUGINS], blocked=["seasons", "motor_noise"])
    deltas = []
    for _ in range(3):
        first_new_id = sim.world.next_id
        for s in (sim, quiet):
            s.step(actions=fixed_actions(s))
        acted = sim.world.alive & (sim.world.ids < first_new_id)  # not this step's newborns
        deltas.append(sim.world.last_action[acted])
        q = quiet.world.last_action[quiet.world.alive]
        assert torch.equal(q, fixed_actions(quiet)[: q.shape[0]])  # without the plugin: as given
    d = torch.cat(deltas)
    assert d.shape[0] > 200
    assert d[:, :2].std().item() == pytest.approx(0.2, rel=0.15)
    assert abs(d[:, :2].mean().item()) < 0.05
    assert torch.equal(d[:, 2:], torch.full_like(d[:, 2:], -1.0))  # the switches are untouched


def test_motor_noise_is_reproducible_from_the_seed(make_sim: MakeSim) -> None:
    runs = []
    for blocked in (["seasons"], ["seasons"], ["seasons", "motor_noise"]):
        sim = make_sim(seed=5, plugins_dirs=[PLUGINS], blocked=blocked)
        sim.run(5)
        runs.append(sim.state())
    assert all((runs[0][k] == runs[1][k]).all() for k in ("ids", "pos", "energy"))
    # the noise did change the run: without it the same seed goes elsewhere
    assert not (runs[0]["pos"].shape == runs[2]["pos"].shape and (runs[0]["pos"] == runs[2]["pos"]).all())


def test_motor_noise_refuses_a_negative_sigma(make_sim: MakeSim) -> None:
    with pytest.raises(PluginError, match=r"plugin.motor_noise.sigma: expected a number >= 0, got -1"):
        make_sim(overrides={"plugin.motor_noise.sigma": -1}, plugins_dirs=[PLUGINS], blocked=["seasons"])
