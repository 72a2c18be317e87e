"""``alife plugins``: each plugin, its origin and its hooks; ``--hooks`` lists every hook."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alife.cli.main import main
from alife.plugins import hookspecs

REPO = Path(__file__).resolve().parents[2]


def listing(out: str) -> dict[str, dict[str, str]]:
    """Parse the command's output into ``{plugin: {"state", "origin", "strategy", "hooks"}}``."""
    plugins: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in out.splitlines():
        if line.startswith("strategies in use:"):
            break
        if not line.startswith(" "):
            name, _, state = line.partition("  ")
            current = plugins.setdefault(name.strip(), {"state": state.strip()})
        else:
            key, _, value = line.strip().partition(": ")
            current[key] = value
    return plugins


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_lists_the_built_ins_with_origin_strategy_and_hooks(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["plugins"], capsys)
    assert code == 0
    plugins = listing(out)
    # the strategy object the module offers (ALIFE_PLUGINS) is listed and plays the role
    assert "alife.strategies.mutation" not in plugins
    assert plugins["gaussian"] == {"state": "", "origin": "builtin, class Gaussian",
                                   "strategy": "mutation=gaussian", "hooks": "alife_mutate, alife_setup"}
    for role, hook in hookspecs.ROLE_HOOKS.items():
        playing = [n for n, p in plugins.items() if p.get("strategy", "").startswith(f"{role}=") and not p["state"]]
        assert len(playing) == 1, (role, playing)
        assert hook in plugins[playing[0]]["hooks"]
    last = out.strip().splitlines()[-1]
    assert last == ("strategies in use: selection=energy-threshold, reproduction=crossover-mutate, "
                    "mutation=gaussian, mating=compatibility, interaction=predation, speciation=kin-drift")


def test_lists_a_world_files_plugins_and_marks_unchosen_strategies(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    d = tmp_path / "extra"
    d.mkdir()
    (d / "cauchy.py").write_text(
        "from alife.plugins import hookimpl\n\nALIFE_STRATEGIES = {'mutation': 'cauchy'}\n\n\n"
        "@hookimpl\ndef alife_mutate(sim, genomes, parents):\n    return genomes\n")
    code, out, _ = run(["plugins", "worlds/seasons.toml", "--plugins-dir", str(d)], capsys)
    assert code == 0
    plugins = listing(out)
    assert plugins["seasons"] == {"state": "", "origin": "worlds/seasons.toml plugins",
                                  "hooks": "alife_resource_regrowth, alife_sim_start"}
    assert plugins["cauchy"]["state"] == "(inactive: not chosen)"
    assert plugins["cauchy"]["origin"] == f"--plugins-dir {d}"
    assert plugins["cauchy"]["strategy"] == "mutation=cauchy"


def test_p_and_p_no(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO / "plugins"))
    code, out, _ = run(["plugins", "-p", "motor_noise"], capsys)
    assert code == 0
    assert listing(out)["motor_noise"] == {"state": "", "origin": "-p motor_noise",
                                           "hooks": "alife_after_act, alife_sim_start"}
    code, out, _ = run(["plugins", "-p", "motor_noise", "-p", "no:motor_noise"], capsys)
    assert code == 0 and "motor_noise" not in listing(out)


def test_hooks_lists_every_hook_with_its_kind(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["plugins", "--hooks"], capsys)
    assert code == 0
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^(alife_\w+)\s+(decision|event)\s", out, re.M)}
    specs = {n for n in dir(hookspecs) if n.startswith("alife_")}
    assert set(rows) == specs
    assert {n for n, kind in rows.items() if kind == "decision"} == set(hookspecs.ROLE_HOOKS.values())


def test_a_broken_plugin_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "broken"
    d.mkdir()
    (d / "typo.py").write_text("from alife.plugins import hookimpl\n\n\n@hookimpl\ndef alife_sim_strat(sim):\n    pass\n")
    code, out, err = run(["plugins", "--plugins-dir", str(d)], capsys)
    assert code == 2
    assert err.splitlines() == ["alife: error: plugin 'typo' implements unknown hook 'alife_sim_strat'; "
                                "did you mean 'alife_sim_start'?"]
