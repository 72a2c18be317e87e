"""The four ways a plugin is found (``-p NAME``, ``--plugins-dir DIR``, a world file's
``plugins = [...]``, the entry-point group ``alife``), ``-p no:NAME``, and that two simulations
in one process never share plugins."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from alife.plugins.manager import PluginError
from alife.simulation import Simulation

MakeSim = Callable[..., Simulation]

#: a plugin module that counts the steps it saw, per simulation (``sim.probe_steps``) and per
#: module object (``STEPS``), so tests can tell which copy of it fired
PROBE = '''
from alife.plugins import hookimpl

STEPS = []


@hookimpl
def alife_step_end(sim, step):
    STEPS.append(step)
    sim.probe_steps = getattr(sim, "probe_steps", {{}})
    sim.probe_steps["{name}"] = sim.probe_steps.get("{name}", 0) + 1
'''


def write_probe(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    path.write_text(PROBE.format(name=name))
    return path


def fired(sim: Simulation) -> dict[str, int]:
    return dict(getattr(sim, "probe_steps", {}))


def origins(sim: Simulation) -> dict[str, str]:
    return {p.name: p.origin for p in sim.hooks.plugins()}


def small_world(path: Path, plugins: list[str]) -> Path:
    items = ", ".join(f'"{p}"' for p in plugins)
    path.write_text(f'name = "probe"\nplugins = [{items}]\n\n[world]\nwidth = 32\nheight = 32\n'
                    "initial_agents = 100\ncapacity = 512\n")
    return path


# ------------------------------------------------------------------------------- -p NAME


def test_p_loads_a_module_by_name(make_sim: MakeSim, fresh_modules: Path) -> None:
    write_probe(fresh_modules, "probe_p_mod")
    sim = make_sim(modules=["probe_p_mod"])
    sim.run(3)
    assert origins(sim)["probe_p_mod"] == "-p probe_p_mod"
    assert fired(sim) == {"probe_p_mod": 3}


def test_p_with_a_module_that_does_not_import_names_it(make_sim: MakeSim, fresh_modules: Path) -> None:
    (fresh_modules / "probe_broken.py").write_text("import not_a_real_package_xyz\n")
    with pytest.raises(PluginError, match=r"plugin module 'probe_broken' could not be imported: ModuleNotFoundError"):
        make_sim(modules=["probe_broken"])
    with pytest.raises(PluginError, match=r"'probe_absent_xyz' could not be imported"):
        make_sim(modules=["probe_absent_xyz"])


# ------------------------------------------------------------------------------- --plugins-dir


def test_plugins_dir_loads_every_public_py_file(make_sim: MakeSim, tmp_path: Path) -> None:
    d = tmp_path / "drop-in"
    write_probe(d, "first")
    write_probe(d, "second")
    (d / "_helpers.py").write_text("raise RuntimeError('a private helper must not be loaded')\n")
    (d / "notes.txt").write_text("not a plugin\n")
    sim = make_sim(plugins_dirs=[d])
    sim.run(2)
    assert origins(sim)["first"] == origins(sim)["second"] == f"--plugins-dir {d}"
    assert fired(sim) == {"first": 2, "second": 2}


def test_a_plugin_file_may_use_dataclasses(make_sim: MakeSim, tmp_path: Path) -> None:
    d = tmp_path / "drop-in"
    d.mkdir()
    (d / "typed.py").write_text(
        "from __future__ import annotations\nfrom dataclasses import dataclass\nfrom typing import ClassVar\n"
        "from alife.plugins import hookimpl\n\n\n@dataclass\nclass Settings:\n    rate: float = 1.0\n"
        "    kinds: ClassVar[int] = 2\n\n\n@hookimpl\ndef alife_sim_start(sim):\n"
        "    sim.typed_settings = Settings(0.5)\n")
    sim = make_sim(plugins_dirs=[d])
    assert sim.typed_settings.rate == 0.5  # type: ignore[attr-defined]


def test_missing_plugins_dir_and_broken_file_are_named(make_sim: MakeSim, tmp_path: Path) -> None:
    with pytest.raises(PluginError, match="plugins directory .*nowhere.* does not exist"):
        make_sim(plugins_dirs=[tmp_path / "nowhere"])
    d = tmp_path / "broken"
    d.mkdir()
    (d / "oops.py").write_text("1 / 0\n")
    with pytest.raises(PluginError, match=r"plugin file .*oops.py.* failed to load: ZeroDivisionError"):
        make_sim(plugins_dirs=[d])


# ------------------------------------------------------------------------------- world files


def test_world_file_plugins_by_relative_path_and_by_module_name(
        make_sim: MakeSim, tmp_path: Path, fresh_modules: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_probe(tmp_path / "worlds" / "local", "by_path")
    write_probe(fresh_modules, "probe_world_mod")
    world = small_world(tmp_path / "worlds" / "w.toml", ["local/by_path.py", "probe_world_mod"])
    monkeypatch.chdir(tmp_path.parent)  # paths are relative to the world file, not the cwd
    sim = make_sim(str(world))
    sim.run(2)
    assert origins(sim)["by_path"] == origins(sim)["probe_world_mod"] == f"{world} plugins"
    assert fired(sim) == {"by_path": 2, "probe_world_mod": 2}


def test_world_file_naming_a_missing_plugin_file_is_an_error(make_sim: MakeSim, tmp_path: Path) -> None:
    world = small_world(tmp_path / "w.toml", ["plugins/nope.py"])
    with pytest.raises(PluginError, match=r"plugin file .*nope.py.* does not exist"):
        make_sim(str(world))


def test_one_file_from_two_sources_is_loaded_once(make_sim: MakeSim, tmp_path: Path) -> None:
    write_probe(tmp_path / "shared", "once")
    world = small_world(tmp_path / "w.toml", ["shared/once.py"])
    sim = make_sim(str(world), plugins_dirs=[tmp_path / "shared"])
    sim.run(2)
    assert fired(sim) == {"once": 2}


def test_two_different_plugins_with_one_name_are_refused_naming_both_origins(make_sim: MakeSim, tmp_path: Path) -> None:
    write_probe(tmp_path / "a", "twin")
    write_probe(tmp_path / "b", "twin")
    world = small_world(tmp_path / "w.toml", ["b/twin.py"])
    with pytest.raises(PluginError, match=rf"'twin' is loaded twice: from --plugins-dir {tmp_path / 'a'} and from {world} plugins"):
        make_sim(str(world), plugins_dirs=[tmp_path / "a"])


# ------------------------------------------------------------------------------- entry points


def make_distribution(root: Path, dist: str, entry_points: dict[str, str]) -> None:
    """A minimal installed distribution (a ``.dist-info`` folder) on ``root``."""
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[alife]\n{lines}")


def test_entry_point_group_alife_is_discovered(make_sim: MakeSim, fresh_modules: Path) -> None:
    write_probe(fresh_modules, "probe_ep_mod")
    make_distribution(fresh_modules, "alife-probe-dist", {"probe-ep": "probe_ep_mod"})
    sim = make_sim()
    sim.run(2)
    assert origins(sim)["probe-ep"] == "entry point of alife-probe-dist"
    assert fired(sim) == {"probe_ep_mod": 2}
    # -p no:NAME blocks it
    blocked = make_sim(blocked=["probe-ep"])
    blocked.run(2)
    assert "probe-ep" not in origins(blocked) and fired(blocked) == {}


def test_a_broken_entry_point_names_itself(make_sim: MakeSim, fresh_modules: Path) -> None:
    make_distribution(fresh_modules, "alife-broken-dist", {"broken-ep": "probe_missing_module_xyz"})
    with pytest.raises(PluginError, match=r"entry point 'broken-ep' \(probe_missing_module_xyz\) failed to load"):
        make_sim()
    make_sim(blocked=["broken-ep"])  # blocked: never imported, so it cannot break the run


# ------------------------------------------------------------------------------- -p no:NAME


def test_p_no_blocks_a_plugin_from_any_source(make_sim: MakeSim, tmp_path: Path, fresh_modules: Path) -> None:
    write_probe(tmp_path / "drop-in", "dropped")
    write_probe(fresh_modules, "probe_blocked_mod")
    world = small_world(tmp_path / "w.toml", ["drop-in/dropped.py", "probe_blocked_mod"])
    sim = make_sim(str(world), modules=["probe_blocked_mod"], plugins_dirs=[tmp_path / "drop-in"],
                   blocked=["dropped", "probe_blocked_mod"])
    sim.run(2)
    assert not {"dropped", "probe_blocked_mod"} & set(origins(sim))
    assert fired(sim) == {}


def test_p_no_blocks_a_plugin_object_passed_in_python(make_sim: MakeSim) -> None:
    from alife.plugins import hookimpl

    class Noisy:
        @hookimpl
        def alife_step_end(self, sim: Simulation, step: int) -> None:
            raise AssertionError("blocked plugins must not fire")

    make_sim(plugins=[Noisy()], blocked=["Noisy"]).run(2)


# ------------------------------------------------------------------------------- isolation


def test_two_simulations_do_not_share_plugins(make_sim: MakeSim, tmp_path: Path) -> None:
    from alife.plugins import hookimpl

    class Counter:
        def __init__(self) -> None:
            self.steps = 0

        @hookimpl
        def alife_step_end(self, sim: Simulation, step: int) -> None:
            self.steps += 1

    write_probe(tmp_path / "drop-in", "filed")
    counter = Counter()
    a = make_sim(plugins=[counter], plugins_dirs=[tmp_path / "drop-in"])
    b = make_sim()
    assert a.hooks is not b.hooks
    assert "Counter" in origins(a) and "Counter" not in origins(b)
    assert "filed" in origins(a) and "filed" not in origins(b)
    b.run(4)
    assert counter.steps == 0 and fired(b) == {}
    a.run(2)
    assert counter.steps == 2 and fired(a) == {"filed": 2}
    # the same file loaded by two simulations is two module objects: module state is not shared
    c = make_sim(plugins_dirs=[tmp_path / "drop-in"])
    c.run(1)
    mod_a, mod_c = a.hooks.get_plugin("filed"), c.hooks.get_plugin("filed")
    assert mod_a is not mod_c
    assert mod_a.STEPS == [0, 1] and mod_c.STEPS == [0]
