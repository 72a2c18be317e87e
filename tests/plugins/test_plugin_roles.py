"""Roles and refusals: exactly one strategy per role, and every way of getting that wrong is
stopped at start with a message that names the plugin (and the hook) at fault."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from alife.cli.main import main
from alife.cli.run import cli_plugins
from alife.config import ROLES
from alife.plugins import hookimpl
from alife.plugins.hookspecs import ROLE_HOOKS
from alife.plugins.manager import PluginError
from alife.simulation import Simulation

MakeSim = Callable[..., Simulation]


class Cauchy:
    """A mutation strategy called ``cauchy`` (declared), counting its calls."""

    ALIFE_STRATEGIES = {"mutation": "cauchy"}

    def __init__(self) -> None:
        self.calls = 0
        self.steps = 0

    @hookimpl
    def alife_mutate(self, sim: Simulation, genomes: torch.Tensor, parents: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return genomes

    @hookimpl
    def alife_step_end(self, sim: Simulation, step: int) -> None:
        self.steps += 1


def test_each_role_has_exactly_one_strategy_by_default(make_sim: MakeSim) -> None:
    sim = make_sim()
    assert set(ROLE_HOOKS) == set(ROLES)
    assert sim.hooks.chosen == {"selection": "energy-threshold", "reproduction": "crossover-mutate",
                                "mutation": "gaussian", "mating": "compatibility", "interaction": "predation",
                                "speciation": "kin-drift"}
    active = [p for p in sim.hooks.plugins() if p.active and p.strategies]
    assert sorted(role for p in active for role in p.strategies) == sorted(ROLES)  # one each
    assert all(p.origin.startswith("builtin, class ") for p in active)
    # a built-in for a role the world did not choose is loaded but switched off
    offered = [p for p in sim.hooks.plugins() if p.strategies and not p.active]
    assert all(sim.hooks.get_plugin(p.name) is None for p in offered)


def test_an_unchosen_strategy_is_switched_off_whole(make_sim: MakeSim) -> None:
    plug = Cauchy()
    sim = make_sim(plugins=[plug])
    sim.run(20)
    assert sim.totals["births"] > 0
    assert plug.calls == 0 and plug.steps == 0  # not even its event hook fires
    info = {p.name: p for p in sim.hooks.plugins()}["Cauchy"]
    assert not info.active and sim.hooks.get_plugin("Cauchy") is None


def test_the_chosen_strategy_replaces_the_built_in(make_sim: MakeSim) -> None:
    plug = Cauchy()
    sim = make_sim(plugins=[plug], overrides={"strategies.mutation": "cauchy"})
    sim.run(20)
    assert plug.calls > 0 and plug.steps == 20
    assert sim.hooks.chosen["mutation"] == "cauchy"
    active = {p.name: p.active for p in sim.hooks.plugins()}
    assert active["Cauchy"] and not active["gaussian"]  # the built-in strategy object


def test_two_plugins_claiming_one_strategy_are_refused_naming_both(make_sim: MakeSim) -> None:
    class Other(Cauchy):
        pass

    with pytest.raises(PluginError) as e:
        make_sim(plugins=[Cauchy(), Other()], overrides={"strategies.mutation": "cauchy"})
    msg = str(e.value)
    assert "'Cauchy'" in msg and "'Other'" in msg and "'cauchy'" in msg and "mutation" in msg
    # refused even when the world chose something else: the name is ambiguous either way
    with pytest.raises(PluginError, match="'Cauchy', 'Other'"):
        make_sim(plugins=[Cauchy(), Other()])


def test_a_plugin_claiming_a_built_in_strategy_name_is_refused(make_sim: MakeSim) -> None:
    class Impostor(Cauchy):
        ALIFE_STRATEGIES = {"mutation": "gaussian"}

    with pytest.raises(PluginError, match=r"'gaussian', 'Impostor' all claim strategy 'gaussian'"):
        make_sim(plugins=[Impostor()])


def test_blocking_a_built_in_lets_a_plugin_take_its_name(make_sim: MakeSim) -> None:
    class Replacement(Cauchy):
        ALIFE_STRATEGIES = {"mutation": "gaussian"}

    plug = Replacement()
    sim = make_sim(plugins=[plug], blocked=["alife.strategies.mutation"])
    sim.run(20)
    assert plug.calls > 0
    assert "alife.strategies.mutation" not in {p.name for p in sim.hooks.plugins()}


def test_an_undeclared_decision_hook_is_refused_unless_chosen_by_its_name(make_sim: MakeSim) -> None:
    class Sneaky:
        @hookimpl
        def alife_mutate(self, sim: Simulation, genomes: torch.Tensor, parents: torch.Tensor) -> torch.Tensor:
            return genomes

    with pytest.raises(PluginError) as e:
        make_sim(plugins=[Sneaky()])
    msg = str(e.value)
    assert "'Sneaky'" in msg and "alife_mutate" in msg and "strategies.mutation = 'gaussian'" in msg
    # chosen by its plugin name, it plays the role
    sim = make_sim(plugins=[Sneaky()], overrides={"strategies.mutation": "Sneaky"})
    assert sim.hooks.chosen["mutation"] == "Sneaky"


def test_choosing_a_strategy_nobody_offers_lists_the_offered_ones(make_sim: MakeSim) -> None:
    with pytest.raises(PluginError, match=r"strategies.mutation = 'cauchy': no loaded plugin provides it \(offered: [^)]*gaussian"):
        make_sim(overrides={"strategies.mutation": "cauchy"})
    with pytest.raises(PluginError, match=r"offered: none"):
        make_sim(blocked=["alife.strategies.interaction", "alife.strategies.predator_prey",
                          "alife.strategies.host_parasite"])


def test_a_declared_strategy_without_its_hook_is_refused(make_sim: MakeSim) -> None:
    class Hollow:
        ALIFE_STRATEGIES = {"mating": "hollow"}

    with pytest.raises(PluginError, match=r"'Hollow' declares strategy mating='hollow'.*no alife_mate"):
        make_sim(plugins=[Hollow()])


@pytest.mark.parametrize("strategies, fragment", [
    ({"mutation": 3}, "dict of role -> strategy name"),
    ({"mutator": "x"}, "unknown role"),
])
def test_malformed_strategy_declarations_are_refused(make_sim: MakeSim, strategies: Any, fragment: str) -> None:
    class Bad:
        ALIFE_STRATEGIES = strategies

    with pytest.raises(PluginError, match=fragment):
        make_sim(plugins=[Bad()])


# ------------------------------------------------------------------------------- hook names


def test_a_misspelled_hook_is_refused_with_a_suggestion(make_sim: MakeSim) -> None:
    class Typo:
        @hookimpl
        def alife_step_ned(self, sim: Simulation, step: int) -> None:
            pass

    with pytest.raises(PluginError, match=r"'Typo' implements unknown hook 'alife_step_ned'; did you mean 'alife_step_end'\?"):
        make_sim(plugins=[Typo()])


def test_a_hook_without_the_marker_is_refused_not_ignored(make_sim: MakeSim) -> None:
    class Unmarked:
        def alife_step_end(self, sim: Simulation, step: int) -> None:
            pass

    with pytest.raises(PluginError, match=r"'Unmarked'.*alife_step_end is not decorated with @alife.plugins.hookimpl"):
        make_sim(plugins=[Unmarked()])


def test_a_hook_with_a_wrong_argument_name_is_refused(make_sim: MakeSim) -> None:
    class WrongArgs:
        @hookimpl
        def alife_step_end(self, sim: Simulation, stp: int) -> None:
            pass

    with pytest.raises(PluginError, match=r"'WrongArgs'.*alife_step_end.*stp"):
        make_sim(plugins=[WrongArgs()])


# ------------------------------------------------------------------------------- errors in hooks


class Exploding:
    def __init__(self, at: int = 2) -> None:
        self.at = at

    def _helper(self, step: int) -> None:
        if step == self.at:
            raise ZeroDivisionError("division by zero in my statistics")

    @hookimpl
    def alife_step_end(self, sim: Simulation, step: int) -> None:
        self._helper(step)  # raised one call deeper than the hook


def test_a_plugin_raising_in_a_hook_is_named_with_the_hook(make_sim: MakeSim) -> None:
    sim = make_sim(plugins=[Exploding()])
    sim.run(2)
    with pytest.raises(PluginError) as e:
        sim.step()
    assert str(e.value) == ("plugin 'Exploding' raised in hook alife_step_end: "
                            "ZeroDivisionError: division by zero in my statistics")
    assert isinstance(e.value.__cause__, ZeroDivisionError)


def test_blame_falls_on_the_instance_that_raised(make_sim: MakeSim) -> None:
    sim = make_sim(plugins=[Exploding(at=99), Exploding(at=0)])
    assert {"Exploding", "Exploding#2"} <= {p.name for p in sim.hooks.plugins()}
    with pytest.raises(PluginError, match=r"^plugin 'Exploding#2' raised in hook alife_step_end"):
        sim.step()


def test_a_strategy_raising_is_named_with_its_hook(make_sim: MakeSim) -> None:
    class Faulty:
        ALIFE_STRATEGIES = {"mutation": "faulty"}

        @hookimpl
        def alife_mutate(self, sim: Simulation, genomes: torch.Tensor, parents: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("shape mismatch")

    sim = make_sim(plugins=[Faulty()], overrides={"strategies.mutation": "faulty"})
    # called from inside the built-in reproduction strategy: the innermost plugin is blamed
    with pytest.raises(PluginError, match=r"^plugin 'Faulty' raised in hook alife_mutate: RuntimeError: shape mismatch"):
        sim.run(30)


@pytest.mark.parametrize("answer, fragment", [
    (None, "returned None from alife_interact"),
    (lambda m: torch.zeros(m), r"returned a float32 tensor of shape \[\d+\] from alife_interact; expected \(damage, gain\)"),
    (lambda m: (torch.zeros(m + 1), torch.zeros(m + 1)), "expected \\(damage, gain\\) or \\(damage, gain, targets\\): two"),
    # redirected targets must be integer slots
    (lambda m: (torch.zeros(m), torch.zeros(m), torch.zeros(m)), "and optionally \\[\\d+\\] integer slots"),
])
def test_a_strategy_answer_of_the_wrong_form_is_refused_naming_it(make_sim: MakeSim, answer: Any, fragment: str) -> None:
    class Odd:
        ALIFE_STRATEGIES = {"interaction": "odd"}

        @hookimpl
        def alife_interact(self, sim: Simulation, attackers: torch.Tensor, targets: torch.Tensor) -> Any:
            return answer(attackers.numel()) if answer else None

    sim = make_sim(plugins=[Odd()], overrides={"strategies.interaction": "odd"})
    with pytest.raises(PluginError, match=f"'Odd'.*{fragment}" if answer else fragment):
        sim.run(30)


EXPLODING_FILE = '''
from alife.plugins import hookimpl


@hookimpl
def alife_step_end(sim, step):
    if step == 1:
        raise KeyError("species")
'''


def test_alife_run_reports_a_plugin_error_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plugdir = tmp_path / "plugs"
    plugdir.mkdir()
    (plugdir / "exploding.py").write_text(EXPLODING_FILE)
    argv = ["run", "--steps", "5", "--out", str(tmp_path / "run"), "--no-progress", "--plugins-dir", str(plugdir),
            "--set", "world.width=32", "--set", "world.height=32", "--set", "world.initial_agents=100",
            "--set", "world.capacity=512", "--device", "cpu"]
    for name in cli_plugins().recorder_names():
        argv += ["--no-record", name]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["alife: error: plugin 'exploding' raised in hook alife_step_end: KeyError: 'species'"]
    assert "Traceback" not in err


def test_alife_run_refuses_a_conflict_before_the_first_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plugdir = tmp_path / "plugs"
    plugdir.mkdir()
    (plugdir / "typo.py").write_text("from alife.plugins import hookimpl\n\n\n@hookimpl\n"
                                     "def alife_agents_dead(sim, deaths):\n    pass\n")
    assert main(["run", "--steps", "5", "--out", str(tmp_path / "run"), "--no-progress",
                 "--plugins-dir", str(plugdir)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["alife: error: plugin 'typo' implements unknown hook 'alife_agents_dead'; "
                                "did you mean 'alife_agents_died'?"]
