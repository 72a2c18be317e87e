"""The plugin manager: one per simulation, a typed method per hook.

Modelled on tox 4's manager class: call sites are type-checked, roles are resolved once at start
(exactly one strategy per role, refused when two claim one), and a misspelled hook is an error
(``check_pending``). There is no module-global manager, so two simulations in one process never
share plugins.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pluggy

from alife.plugins import hookspecs
from alife.plugins.hookspecs import ROLE_HOOKS

if TYPE_CHECKING:
    import torch

    from alife.config import StrategiesSection
    from alife.events import Births, Deaths

#: the built-in strategies and recorders, registered through the same hookimpl as any plugin
BUILTIN_PLUGINS = (
    "alife.strategies.selection",
    "alife.strategies.truncation",
    "alife.strategies.reproduction",
    "alife.strategies.mutation",
    "alife.strategies.mating",
    "alife.strategies.interaction",
)


class PluginError(RuntimeError):
    """A plugin could not be loaded, conflicts with another, or raised inside a hook."""


@dataclass
class PluginInfo:
    name: str
    origin: str
    strategies: dict[str, str] = field(default_factory=dict)
    hooks: list[str] = field(default_factory=list)
    active: bool = True


def _declared_strategies(plugin: Any) -> dict[str, str]:
    d = getattr(plugin, "ALIFE_STRATEGIES", None) or {}
    if not isinstance(d, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in d.items()):
        raise PluginError(f"plugin {plugin!r}: ALIFE_STRATEGIES must be a dict of role -> strategy name")
    bad = set(d) - set(ROLE_HOOKS)
    if bad:
        raise PluginError(f"plugin {plugin!r}: unknown role(s) {sorted(bad)} in ALIFE_STRATEGIES; roles are {list(ROLE_HOOKS)}")
    return dict(d)


class PluginManager:
    """Loads plugins, resolves roles, and calls hooks with whole-population arrays."""

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager("alife")
        self._pm.add_hookspecs(hookspecs)
        self._info: dict[str, PluginInfo] = {}
        self._blocked: set[str] = set()
        self._role_callers: dict[str, Any] = {}
        self.chosen: dict[str, str] = {}
        self._impl_code: dict[Any, tuple[str, str]] = {}

    # ------------------------------------------------------------------ loading
    def register(self, plugin: Any, name: str | None = None, origin: str = "python") -> str:
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        if name in self._blocked:
            return name
        if self._pm.has_plugin(name) or self._pm.get_name(plugin) is not None:
            prev = self._info.get(name)
            if prev is not None and prev.origin != origin:
                raise PluginError(f"plugin {name!r} is loaded twice: from {prev.origin} and from {origin}")
            return name
        strategies = _declared_strategies(plugin)
        try:
            self._pm.register(plugin, name=name)
        except ValueError as e:
            raise PluginError(f"plugin {name!r} ({origin}): {e}") from None
        hooks = sorted(h.name for h in self._pm.get_hookcallers(plugin) or [])
        self._info[name] = PluginInfo(name, origin, strategies, hooks)
        return name

    def block(self, name: str) -> None:
        """``-p no:NAME``: never load (or unload) the plugin called NAME."""
        self._blocked.add(name)
        if self._pm.has_plugin(name):
            self._pm.unregister(name=name)
            self._info.pop(name, None)

    def load_builtins(self) -> None:
        for modname in BUILTIN_PLUGINS:
            self.register(importlib.import_module(modname), modname, "builtin")

    def load_entry_points(self) -> None:
        for ep in importlib.metadata.entry_points(group="alife"):
            if ep.name in self._blocked:
                continue
            try:
                plugin = ep.load()
            except Exception as e:  # a broken third-party package must name itself
                raise PluginError(f"entry point {ep.name!r} ({ep.value}) failed to load: {type(e).__name__}: {e}") from None
            dist = getattr(ep, "dist", None)
            self.register(plugin, ep.name, f"entry point of {dist.name if dist else '?'}")

    def load_module(self, name: str, origin: str | None = None) -> str:
        """Import ``name`` (``-p NAME``, or a world file's ``plugins``) and register it."""
        if name in self._blocked:
            return name
        try:
            mod = importlib.import_module(name)
        except Exception as e:
            raise PluginError(f"plugin module {name!r} could not be imported: {type(e).__name__}: {e}") from None
        return self.register(mod, name, origin or f"-p {name}")

    def load_path(self, path: str | Path, origin: str | None = None) -> str:
        """Load a single-file plugin from a ``.py`` path."""
        path = Path(path)
        name = path.stem
        if name in self._blocked:
            return name
        if not path.is_file():
            raise PluginError(f"plugin file {str(path)!r} does not exist")
        modname = f"alife_plugin_{name}_{abs(hash(str(path.resolve()))):x}"
        spec = importlib.util.spec_from_file_location(modname, path)
        if spec is None or spec.loader is None:
            raise PluginError(f"plugin file {str(path)!r} is not a Python module")
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
        except Exception as e:
            raise PluginError(f"plugin file {str(path)!r} failed to load: {type(e).__name__}: {e}") from None
        return self.register(mod, name, origin or str(path))

    def load_dir(self, directory: str | Path) -> list[str]:
        """``--plugins-dir DIR``: every ``*.py`` in DIR that does not start with ``_``."""
        d = Path(directory)
        if not d.is_dir():
            raise PluginError(f"plugins directory {str(d)!r} does not exist")
        return [self.load_path(p, f"--plugins-dir {d}") for p in sorted(d.glob("*.py")) if not p.name.startswith("_")]

    def load_spec(self, spec: str, base_dir: str | Path = ".", origin: str | None = None) -> str:
        """A world file entry: a ``.py`` path (relative to the world file) or a module name."""
        if spec.endswith(".py") or "/" in spec:
            p = Path(spec)
            if not p.is_absolute():
                p = Path(base_dir) / p
            return self.load_path(p, origin)
        return self.load_module(spec, origin)

    # ------------------------------------------------------------------ roles
    def resolve(self, strategies: StrategiesSection) -> None:
        """Pick one strategy per role; refuse unknown hooks, missing and doubly claimed roles."""
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as e:
            raise PluginError(f"plugin {e.plugin_name!r}: {e} (is a hook name misspelled? see `alife plugins --hooks`)") from None
        self._role_callers.clear()
        for role, hookname in ROLE_HOOKS.items():
            chosen = getattr(strategies, role)
            claims: dict[str, list[str]] = {}
            for impl in getattr(self._pm.hook, hookname).get_hookimpls():
                if impl.hookwrapper or impl.wrapper:
                    continue
                info = self._info[impl.plugin_name]
                claim = info.strategies.get(role, impl.plugin_name)
                claims.setdefault(claim, []).append(impl.plugin_name)
            if chosen not in claims:
                offered = ", ".join(sorted(claims)) or "none"
                raise PluginError(f"strategies.{role} = {chosen!r}: no loaded plugin provides it (offered: {offered})")
            if len(claims[chosen]) > 1:
                raise PluginError(f"role {role!r}: plugins {', '.join(claims[chosen])} all claim strategy {chosen!r}; only one may")
            for claim, names in claims.items():
                for n in names:
                    if claim != chosen and role not in self._info[n].strategies:
                        raise PluginError(
                            f"role {role!r}: plugin {n!r} implements {hookname} but the world chose "
                            f"strategies.{role} = {chosen!r}; two plugins cannot play one role. "
                            f"Set strategies.{role} = {n!r}, or declare ALIFE_STRATEGIES = {{{role!r}: ...}} in it.")
            winner = claims[chosen][0]
            others = [self._pm.get_plugin(n) for c, ns in claims.items() for n in ns if n != winner]
            self._role_callers[role] = self._pm.subset_hook_caller(hookname, remove_plugins=others)
            self.chosen[role] = chosen
        for info in self._info.values():
            info.active = not info.strategies or any(self.chosen.get(r) == s for r, s in info.strategies.items())
        self._impl_code = {}
        for hc in self._pm.hook.__dict__.values():
            if isinstance(hc, pluggy.HookCaller):
                for impl in hc.get_hookimpls():
                    code = getattr(impl.function, "__code__", None)
                    if code is not None:
                        self._impl_code[code] = (impl.plugin_name, hc.name)

    def plugins(self) -> list[PluginInfo]:
        return list(self._info.values())

    # ------------------------------------------------------------------ calling
    def _blame(self, tb: TracebackType | None) -> tuple[str, str] | None:
        found = None
        while tb is not None:
            hit = self._impl_code.get(tb.tb_frame.f_code)
            if hit:
                found = hit
            tb = tb.tb_next
        return found

    def _call(self, caller: Any, hookname: str, **kwargs: Any) -> Any:
        try:
            return caller(**kwargs)
        except PluginError:
            raise
        except Exception as e:
            who = self._blame(sys.exc_info()[2])
            where = f"plugin {who[0]!r} raised in hook {who[1]}" if who else f"hook {hookname} raised"
            raise PluginError(f"{where}: {type(e).__name__}: {e}") from e

    def _role(self, role: str, **kwargs: Any) -> Any:
        return self._call(self._role_callers[role], ROLE_HOOKS[role], **kwargs)

    def sim_start(self, sim: Any) -> None:
        self._call(self._pm.hook.alife_sim_start, "alife_sim_start", sim=sim)

    def sim_end(self, sim: Any) -> None:
        self._call(self._pm.hook.alife_sim_end, "alife_sim_end", sim=sim)

    def step_start(self, sim: Any, step: int) -> None:
        self._call(self._pm.hook.alife_step_start, "alife_step_start", sim=sim, step=step)

    def step_end(self, sim: Any, step: int) -> None:
        self._call(self._pm.hook.alife_step_end, "alife_step_end", sim=sim, step=step)

    def resource_regrowth(self, sim: Any, step: int) -> list[Any]:
        return self._call(self._pm.hook.alife_resource_regrowth, "alife_resource_regrowth", sim=sim, step=step)

    def after_act(self, sim: Any, slots: torch.Tensor, actions: torch.Tensor) -> None:
        self._call(self._pm.hook.alife_after_act, "alife_after_act", sim=sim, slots=slots, actions=actions)

    def learn(self, sim: Any, slots: torch.Tensor, observations: torch.Tensor, actions: torch.Tensor,
              rewards: torch.Tensor) -> None:
        self._call(self._pm.hook.alife_learn, "alife_learn", sim=sim, slots=slots,
                   observations=observations, actions=actions, rewards=rewards)

    def has_impls(self, hookname: str) -> bool:
        return bool(getattr(self._pm.hook, hookname).get_hookimpls())

    def select_parents(self, sim: Any, slots: torch.Tensor, neighbours: torch.Tensor,
                       ready: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._required("selection", sim=sim, slots=slots, neighbours=neighbours, ready=ready)

    def mate(self, sim: Any, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self._required("mating", sim=sim, a=a, b=b)

    def reproduce(self, sim: Any, parents: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
        return self._required("reproduction", sim=sim, parents=parents, partners=partners)

    def mutate(self, sim: Any, genomes: torch.Tensor, parents: torch.Tensor) -> torch.Tensor:
        return self._required("mutation", sim=sim, genomes=genomes, parents=parents)

    def interact(self, sim: Any, attackers: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._required("interaction", sim=sim, attackers=attackers, targets=targets)

    def _required(self, role: str, **kwargs: Any) -> Any:
        out = self._role(role, **kwargs)
        if out is None:
            raise PluginError(f"role {role!r}: strategy {self.chosen[role]!r} returned None ({ROLE_HOOKS[role]})")
        return out

    def agents_born(self, sim: Any, births: Births) -> None:
        self._call(self._pm.hook.alife_agents_born, "alife_agents_born", sim=sim, births=births)

    def agents_died(self, sim: Any, deaths: Deaths) -> None:
        self._call(self._pm.hook.alife_agents_died, "alife_agents_died", sim=sim, deaths=deaths)


def build_manager(strategies: StrategiesSection, *, world_plugins: list[str] = (),
                  world_base_dir: str | Path = ".", world_source: str = "world file",
                  modules: list[str] = (), plugins_dirs: list[str | Path] = (),
                  blocked: list[str] = (), extra: list[Any] = (), entry_points: bool = True) -> PluginManager:
    """Load every plugin source in a fixed order and resolve roles."""
    pm = PluginManager()
    for b in blocked:
        pm.block(b)
    pm.load_builtins()
    if entry_points:
        pm.load_entry_points()
    for d in plugins_dirs:
        pm.load_dir(d)
    for m in modules:
        pm.load_module(m)
    for spec in world_plugins:
        pm.load_spec(spec, world_base_dir, f"{world_source} plugins")
    for p in extra:
        pm.register(p, getattr(p, "__name__", None) or type(p).__name__, "python")
    pm.resolve(strategies)
    return pm

