"""The plugin manager: one per simulation, a typed method per hook.

Modelled on tox 4's manager class: call sites are type-checked, roles are resolved once at start
(exactly one strategy per role, refused when two claim one), and a misspelled hook is an error
(``check_pending``). There is no module-global manager, so two simulations in one process never
share plugins.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import numbers
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pluggy

from alife.plugins import hookspecs
from alife.plugins.hookspecs import HOOK_MODES, ROLE_HOOKS, ROLE_MODES

if TYPE_CHECKING:
    import torch

    from alife.config import MixtureSection, StrategiesSection
    from alife.events import Births, Deaths, Fitness

#: the built-in strategies and recorders, registered through the same hookimpl as any plugin
BUILTIN_PLUGINS = (
    "alife.strategies.selection",
    "alife.strategies.truncation",
    "alife.strategies.selection_rules",
    "alife.strategies.reproduction",
    "alife.strategies.mutation",
    "alife.strategies.mating",
    "alife.strategies.interaction",
    "alife.strategies.speciation",
    "alife.strategies.behaviour",
    "alife.strategies.nes",
    "alife.strategies.learned",
    "alife.strategies.predator_prey",
    "alife.strategies.host_parasite",
)


def _torch() -> Any:
    import torch

    return torch


def _is_tensor(x: Any) -> bool:
    return isinstance(x, _torch().Tensor)


def _describe(x: Any) -> str:
    """A short description of a hook's return value for an error message."""
    if _is_tensor(x):
        return f"a {str(x.dtype).removeprefix('torch.')} tensor of shape {list(x.shape)}"
    if isinstance(x, tuple):
        return "(" + ", ".join(_describe(v) for v in x) + ")"
    return f"{type(x).__name__} {x!r}"[:120]


#: role -> the strategy a mode plays when the world file leaves the role empty
MODE_DEFAULTS = {"selection": {"world": "energy-threshold", "task": "truncation"}}


#: a plugin series name (``alife_series``)
_SERIES_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


class PluginError(RuntimeError):
    """A plugin could not be loaded, conflicts with another, or raised inside a hook."""


@dataclass
class PluginInfo:
    name: str
    origin: str
    strategies: dict[str, str] = field(default_factory=dict)
    hooks: list[str] = field(default_factory=list)
    active: bool = True
    #: names of the plugins made from this module's ``ALIFE_PLUGINS`` classes
    offers: list[str] = field(default_factory=list)


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
        #: per role, its one implementation (function, argument names) when it has no wrappers;
        #: filled on first call, emptied whenever a plugin is registered or roles are resolved
        self._direct: dict[str, tuple] = {}
        self.chosen: dict[str, str] = {}
        self._impl_code: dict[Any, list[tuple[Any, str, str]]] = {}
        self._paths: dict[str, str] = {}
        self._winner: dict[str, str] = {}
        #: role -> the strategy names a ``[mixture]`` gives it, in order (index = strategy code)
        self.mix: dict[str, tuple[str, ...]] = {}
        #: role -> per strategy code, a caller of that strategy's implementation (and wrappers)
        self._mix_callers: dict[str, list[Any]] = {}

    # ------------------------------------------------------------------ loading
    def register(self, plugin: Any, name: str | None = None, origin: str = "python") -> str:
        """Register ``plugin`` under ``name``; the same object twice is registered once.

        A different object under a name already taken is refused, naming both origins. Hook
        functions are checked here, so a wrong argument name or a missing ``@hookimpl`` is
        reported with the plugin's name instead of being ignored.
        """
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        if name in self._blocked:
            return name
        existing = self._pm.get_name(plugin)
        if existing is not None:
            return existing
        if self._pm.has_plugin(name):
            prev = self._info.get(name)
            prev_origin = prev.origin if prev is not None else "?"
            raise PluginError(f"plugin {name!r} is loaded twice: from {prev_origin} and from {origin}")
        strategies = _declared_strategies(plugin)
        for attr in dir(plugin):
            if attr.startswith("alife_") and callable(getattr(plugin, attr, None)) \
                    and self._pm.parse_hookimpl_opts(plugin, attr) is None:
                raise PluginError(f"plugin {name!r} ({origin}): {attr} is not decorated with "
                                  "@alife.plugins.hookimpl, so it would never be called")
        self._direct.clear()
        try:
            self._pm.register(plugin, name=name)
        except pluggy.PluginValidationError as e:
            detail = " ".join(str(e).split())
            raise PluginError(f"plugin {name!r} ({origin}): {detail}") from None
        except ValueError as e:
            raise PluginError(f"plugin {name!r} ({origin}): {e}") from None
        hooks = sorted(h.name for h in self._pm.get_hookcallers(plugin) or [])
        self._info[name] = PluginInfo(name, origin, strategies, hooks)
        self._register_classes(plugin, name, origin)
        return name

    def _register_classes(self, plugin: Any, name: str, origin: str) -> None:
        """A module's ``ALIFE_PLUGINS = [Class, ...]``: one instance of each, made for this
        manager (so two simulations never share a strategy's state), registered under its
        ``name`` attribute (a strategy's name) or its class name."""
        classes = getattr(plugin, "ALIFE_PLUGINS", None)
        if classes is None or not isinstance(plugin, type(sys)):
            return
        if not isinstance(classes, list | tuple) or not all(isinstance(c, type) for c in classes):
            raise PluginError(f"plugin {name!r} ({origin}): ALIFE_PLUGINS must be a list of classes "
                              "(the manager makes one instance of each per simulation)")
        for cls in classes:
            try:
                obj = cls()
            except Exception as e:
                raise PluginError(f"plugin {name!r} ({origin}): {cls.__name__}() failed: {type(e).__name__}: {e}") from None
            got = self.register(obj, getattr(obj, "name", "") or cls.__name__, f"{origin}, class {cls.__name__}")
            self._info[name].offers.append(got)

    def free_name(self, name: str, plugin: Any) -> str:
        """``name``, or ``name#2``, ``name#3``... when another object (a second instance of one
        plugin class, say) already holds it."""
        base, i = name, 1
        while self._pm.has_plugin(name) and self._pm.get_plugin(name) is not plugin:
            i += 1
            name = f"{base}#{i}"
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
        key = str(path.resolve())
        if key in self._paths:  # the same file from two sources (say --plugins-dir and a world file)
            return self._paths[key]
        modname = f"alife_plugin_{name}_{abs(hash(key)):x}"
        spec = importlib.util.spec_from_file_location(modname, path)
        if spec is None or spec.loader is None:
            raise PluginError(f"plugin file {str(path)!r} is not a Python module")
        mod = importlib.util.module_from_spec(spec)
        # a module must be in sys.modules while it runs (dataclasses, typing and pickle look it up);
        # each load gets a fresh module object, so two simulations never share a file's state
        sys.modules[modname] = mod
        try:
            spec.loader.exec_module(mod)
        except Exception as e:
            sys.modules.pop(modname, None)
            raise PluginError(f"plugin file {str(path)!r} failed to load: {type(e).__name__}: {e}") from None
        self._paths[key] = self.register(mod, name, origin or str(path))
        return self._paths[key]

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
    def resolve(self, strategies: StrategiesSection, mixture: MixtureSection | None = None, mode: str = "") -> None:
        """Pick one strategy per role (several for the role of a ``[mixture]``); refuse unknown
        hooks, missing and doubly claimed roles.

        A strategy plugin the world did not choose is unregistered, so none of its hooks (events
        and wrappers included) fire: choosing a strategy switches the whole plugin on or off.
        """
        self._check_pending()
        claims_by_role: dict[str, dict[str, list[str]]] = {}
        self.mix = {mixture.role: tuple(mixture.strategies)} if mixture is not None else {}
        for role, hookname in ROLE_HOOKS.items():
            chosen = getattr(strategies, role) or MODE_DEFAULTS.get(role, {}).get(mode or "world", "")
            wanted = self.mix.get(role, (chosen,))
            if role in self.mix:
                chosen = wanted[0]
            claims: dict[str, list[str]] = {}
            for impl in getattr(self._pm.hook, hookname).get_hookimpls():
                if impl.hookwrapper or impl.wrapper:
                    continue
                info = self._info[impl.plugin_name]
                claim = info.strategies.get(role, impl.plugin_name)
                claims.setdefault(claim, []).append(impl.plugin_name)
            if mode and mode not in ROLE_MODES.get(role, (mode,)):
                # a role this mode does not play: its strategies are switched off in _check_mode
                claims_by_role[role] = claims
                self.chosen[role] = chosen
                continue
            for claim, names in claims.items():
                if len(names) > 1:
                    raise PluginError(
                        f"role {role!r}: plugins {', '.join(repr(n) for n in names)} all claim strategy "
                        f"{claim!r}; only one may (rename one, or leave one out with -p no:NAME)")
            for info in self._info.values():
                declared = info.strategies.get(role)
                if declared is not None and info.name not in claims.get(declared, []):
                    raise PluginError(f"plugin {info.name!r} declares strategy {role}={declared!r} in "
                                      f"ALIFE_STRATEGIES but implements no {hookname}")
            for want in wanted:
                if want not in claims:
                    offered = ", ".join(sorted(claims)) or "none"
                    key = f"mixture.strategies: {role} strategy" if role in self.mix else f"strategies.{role} ="
                    raise PluginError(f"{key} {want!r}: no loaded plugin provides it (offered: {offered})")
            for claim, names in claims.items():
                for n in names:
                    if claim not in wanted and role not in self._info[n].strategies:
                        raise PluginError(
                            f"role {role!r}: plugin {n!r} implements {hookname} but the world chose "
                            f"strategies.{role} = {chosen!r}; two plugins cannot play one role. "
                            f"Set strategies.{role} = {n!r}, or declare ALIFE_STRATEGIES = {{{role!r}: ...}} in it.")
            claims_by_role[role] = claims
            self.chosen[role] = chosen
            self._winner[role] = claims[chosen][0]
        for info in self._info.values():
            info.active = not info.strategies or any(
                s in self.mix.get(r, (self.chosen.get(r),)) for r, s in info.strategies.items())
            if not info.active and self._pm.has_plugin(info.name):
                self._pm.unregister(name=info.name)
        if mode:
            self._check_mode(mode, claims_by_role)
        self._role_callers.clear()
        self._direct.clear()
        for role, claims in claims_by_role.items():
            if role not in self._winner:  # not played in this mode
                continue
            others = [self._pm.get_plugin(n) for ns in claims.values() for n in ns
                      if n != self._winner[role] and self._pm.has_plugin(n)]
            self._role_callers[role] = self._pm.subset_hook_caller(ROLE_HOOKS[role], remove_plugins=others)
            if role in self.mix:
                every = [n for ns in claims.values() for n in ns if self._pm.has_plugin(n)]
                self._mix_callers[role] = [
                    self._pm.subset_hook_caller(ROLE_HOOKS[role], remove_plugins=[
                        self._pm.get_plugin(n) for n in every if n != claims[want][0]])
                    for want in self.mix[role]]
        self._impl_code = {}
        for hc in self._pm.hook.__dict__.values():
            if isinstance(hc, pluggy.HookCaller):
                for impl in hc.get_hookimpls():
                    code = getattr(impl.function, "__code__", None)
                    if code is not None:
                        self._impl_code.setdefault(code, []).append((impl.plugin, impl.plugin_name, hc.name))

    def _check_mode(self, mode: str, claims_by_role: dict[str, dict[str, list[str]]]) -> None:
        """Switch off the strategies of roles the mode does not play; refuse a chosen strategy
        made for the other mode (its ``modes`` attribute) and an active plugin implementing a
        hook the mode never fires (``hookspecs.HOOK_MODES``), naming plugin, hook and mode."""
        where = {"world": "the persistent world", "task": "a task run (a world with a [task] table)"}
        for role, modes in ROLE_MODES.items():
            if mode not in modes:
                for names in claims_by_role.get(role, {}).values():
                    for n in names:
                        declared = set(self._info[n].strategies)
                        if self._pm.has_plugin(n) and declared and declared <= {role}:
                            self._pm.unregister(name=n)
                            self._info[n].active = False
        for info in self._info.values():
            plugin = self._pm.get_plugin(info.name)
            if plugin is None:
                continue
            modes = getattr(plugin, "modes", None)
            if modes is not None and mode not in modes and info.strategies:
                role, name = next(iter(info.strategies.items()))
                hint = " (task runs select with `truncation`: set [strategies] selection = \"truncation\")" \
                    if role == "selection" and mode == "task" else ""
                raise PluginError(f"strategy {role}={name!r} (plugin {info.name!r}) runs only in "
                                  f"{' and '.join(where.get(m, m) for m in modes)}, not in {where[mode]}{hint}")
            for hc in self._pm.get_hookcallers(plugin) or []:
                fires = HOOK_MODES.get(hc.name)
                if fires is not None and mode not in fires:
                    raise PluginError(f"plugin {info.name!r} implements {hc.name}, which {where[mode]} never fires "
                                      f"(it fires in {' and '.join(where[m] for m in fires)}); leave the plugin out "
                                      f"of this run (-p no:{info.name}) or drop that hook")

    def _check_pending(self) -> None:
        """A hookimpl whose name matches no hookspec is a misspelling: refuse it, suggesting one."""
        for name in dir(self._pm.hook):
            hc = getattr(self._pm.hook, name)
            if not isinstance(hc, pluggy.HookCaller) or hc.has_spec():
                continue
            for impl in hc.get_hookimpls():
                if impl.optionalhook:
                    continue
                close = difflib.get_close_matches(name, [h for h in dir(hookspecs) if h.startswith("alife_")], n=1)
                hint = f"did you mean {close[0]!r}?" if close else "see `alife plugins --hooks`"
                raise PluginError(f"plugin {impl.plugin_name!r} implements unknown hook {name!r}; {hint}")

    def get_plugin(self, name: str) -> Any:
        """The plugin object registered as ``name`` (``None`` if absent, blocked or inactive)."""
        return self._pm.get_plugin(name)

    def plugins(self) -> list[PluginInfo]:
        """Every plugin loaded (inactive strategies included), in load order; a module that only
        offers classes (``ALIFE_PLUGINS``) is listed through them."""
        return [i for i in self._info.values() if i.hooks or i.strategies or not i.offers]

    # ------------------------------------------------------------------ calling
    def _blame(self, tb: TracebackType | None) -> tuple[str, str] | None:
        """The innermost hook implementation in a traceback: ``(plugin name, hook name)``."""
        found = None
        while tb is not None:
            hits = self._impl_code.get(tb.tb_frame.f_code)
            if hits:
                # one function can serve several plugins (two instances of a class): ``self`` tells
                me = tb.tb_frame.f_locals.get("self")
                hit = next((h for h in hits if h[0] is me), hits[0])
                found = (hit[1], hit[2])
            tb = tb.tb_next
        return found

    def _call(self, caller: Any, hookname: str, **kwargs: Any) -> Any:
        try:
            return caller(**kwargs)
        except PluginError:
            raise
        except Exception as e:
            self._reraise(e, hookname)

    def _reraise(self, e: Exception, hookname: str) -> None:
        who = self._blame(sys.exc_info()[2])
        where = f"plugin {who[0]!r} raised in hook {who[1]}" if who else f"hook {hookname} raised"
        raise PluginError(f"{where}: {type(e).__name__}: {e}") from e

    def _role(self, role: str, **kwargs: Any) -> Any:
        direct = self._single_impl(role)
        if not direct:
            return self._call(self._role_callers[role], ROLE_HOOKS[role], **kwargs)
        # one implementation and no wrappers: call it as pluggy would, without its machinery
        # (several microseconds a call, and roles are called several times a step)
        fn, argnames = direct
        try:
            return fn(*[kwargs[a] for a in argnames])
        except PluginError:
            raise
        except Exception as e:
            self._reraise(e, ROLE_HOOKS[role])

    def role_function(self, role: str) -> Any:
        """The function that plays ``role`` when it is the role's only implementation and nothing
        wraps it (``None`` otherwise); the engine runs built-in strategies it recognises here as
        fused kernels."""
        direct = self._single_impl(role)
        return direct[0] if direct else None

    def _single_impl(self, role: str) -> tuple[Any, tuple[str, ...]] | tuple[()]:
        """``(function, argument names)`` of the role's one implementation, ``()`` when it has
        several or a wrapper; cached in ``_direct`` until a plugin registers."""
        direct = self._direct.get(role)
        if direct is None:
            impls = self._role_callers[role].get_hookimpls()
            one = len(impls) == 1 and not (impls[0].hookwrapper or impls[0].wrapper)
            direct = self._direct[role] = (impls[0].function, tuple(impls[0].argnames)) if one else ()
        return direct

    def _only(self, hookname: str, plugin: Any) -> Any:
        """A caller of ``hookname`` that calls ``plugin``'s implementation alone."""
        impls = getattr(self._pm.hook, hookname).get_hookimpls()
        return self._pm.subset_hook_caller(hookname, [i.plugin for i in impls if i.plugin is not plugin])

    def sim_start(self, sim: Any) -> None:
        """Plugin by plugin; when one raises, the plugins already started get their
        ``alife_sim_end`` (so a recorder that opened a file closes it) and the error is raised."""
        started = []
        for impl in reversed(self._pm.hook.alife_sim_start.get_hookimpls()):  # pluggy's order
            try:
                self._call(self._only("alife_sim_start", impl.plugin), "alife_sim_start", sim=sim)
            except PluginError:
                ends = {i.plugin for i in self._pm.hook.alife_sim_end.get_hookimpls()}
                for plugin in reversed(started):
                    if plugin in ends:
                        try:
                            self._call(self._only("alife_sim_end", plugin), "alife_sim_end", sim=sim)
                        except PluginError:
                            pass  # the error that stopped the start is the one to report
                raise
            started.append(impl.plugin)

    def sim_end(self, sim: Any) -> None:
        """Every plugin's ``alife_sim_end`` runs even when one of them raises (so each recorder
        closes its files); the first error is raised after all have run."""
        first: PluginError | None = None
        for impl in reversed(self._pm.hook.alife_sim_end.get_hookimpls()):  # pluggy's order
            try:
                self._call(self._only("alife_sim_end", impl.plugin), "alife_sim_end", sim=sim)
            except PluginError as e:
                first = first or e
        if first is not None:
            raise first

    def step_start(self, sim: Any, step: int) -> None:
        self._call(self._pm.hook.alife_step_start, "alife_step_start", sim=sim, step=step)

    def step_end(self, sim: Any, step: int) -> None:
        self._call(self._pm.hook.alife_step_end, "alife_step_end", sim=sim, step=step)

    def resource_regrowth(self, sim: Any, step: int) -> list[Any]:
        out = self._call(self._pm.hook.alife_resource_regrowth, "alife_resource_regrowth", sim=sim, step=step)
        shape = tuple(sim.world.resource.shape)
        for f in out:
            ok = (isinstance(f, int | float) and not isinstance(f, bool)) or (
                _is_tensor(f) and (f.dim() == 0 or tuple(f.shape) == shape))
            if not ok:
                got = f"a tensor of shape {list(f.shape)}" if _is_tensor(f) else repr(f)
                who = ", ".join(repr(i.plugin_name) for i in self._pm.hook.alife_resource_regrowth.get_hookimpls())
                raise PluginError(f"hook alife_resource_regrowth (implemented by {who}) returned {got}; "
                                  f"expected a number, a 0-d tensor or a {list(shape)} tensor")
        return out

    def after_act(self, sim: Any, slots: torch.Tensor, actions: torch.Tensor) -> None:
        self._call(self._pm.hook.alife_after_act, "alife_after_act", sim=sim, slots=slots, actions=actions)

    def learn(self, sim: Any, slots: torch.Tensor, observations: torch.Tensor, actions: torch.Tensor,
              rewards: torch.Tensor) -> None:
        self._call(self._pm.hook.alife_learn, "alife_learn", sim=sim, slots=slots,
                   observations=observations, actions=actions, rewards=rewards)

    def has_impls(self, hookname: str) -> bool:
        return bool(getattr(self._pm.hook, hookname).get_hookimpls())

    def _each(self, hookname: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation of ``hookname`` on its own: ``(plugin name, result)`` pairs
        (results that are None left out), an exception blamed on its plugin."""
        out = []
        for impl in getattr(self._pm.hook, hookname).get_hookimpls():
            try:
                res = impl.function(*[kwargs[a] for a in impl.argnames])
            except PluginError:
                raise
            except Exception as e:
                raise PluginError(f"plugin {impl.plugin_name!r} raised in hook {hookname}: "
                                  f"{type(e).__name__}: {e}") from e
            if res is not None:
                out.append((impl.plugin_name, res))
        return out

    def series(self, sim: Any, step: int) -> dict[str, float]:
        """Every plugin's ``alife_series`` values now, as ``{"<plugin>.<name>": float}``, checked."""
        out: dict[str, float] = {}
        for who, res in self._each("alife_series", sim=sim, step=step):
            if not isinstance(res, dict):
                raise PluginError(f"plugin {who!r}: hook alife_series returned {_describe(res)}; expected a dict "
                                  "of name -> number, or None")
            for k, v in res.items():
                name = f"{who}.{k}"
                if not (isinstance(k, str) and _SERIES_NAME.fullmatch(k) and len(name.encode()) <= 64):
                    raise PluginError(f"plugin {who!r}: hook alife_series returned the series name {k!r}; names "
                                      "are letters, digits, _ - and ., at most 64 bytes with the plugin's name")
                if isinstance(v, bool) or not isinstance(v, numbers.Real):
                    if not (_is_tensor(v) and v.numel() == 1):
                        raise PluginError(f"plugin {who!r}: hook alife_series returned {_describe(v)} for {k!r}; "
                                          "expected a real number")
                out[name] = float(v)
        return out

    def summary(self, sim: Any) -> dict[str, Any]:
        """Every plugin's ``alife_summary`` fields, by plugin name, checked to be JSON."""
        import json

        out: dict[str, Any] = {}
        for who, res in self._each("alife_summary", sim=sim):
            try:
                if not isinstance(res, dict):
                    raise TypeError(f"got {_describe(res)}")
                json.dumps(res, allow_nan=True)
            except (TypeError, ValueError) as e:
                raise PluginError(f"plugin {who!r}: hook alife_summary must return a JSON-serialisable dict "
                                  f"({e})") from None
            out[who] = res
        return out

    def select_parents(self, sim: Any, slots: torch.Tensor, neighbours: torch.Tensor,
                       ready: torch.Tensor, fitness: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self._required("selection", sim=sim, slots=slots, neighbours=neighbours, ready=ready,
                             fitness=fitness)
        if not (isinstance(out, tuple) and len(out) == 2 and all(_is_tensor(t) for t in out)
                and out[0].dim() == 1 and out[0].shape == out[1].shape
                and not out[0].is_floating_point() and not out[1].is_floating_point()):
            self._bad_result("selection", out, "(parents, partners): two [k] integer tensors")
        return out

    def mate(self, sim: Any, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        out = self._required("mating", sim=sim, a=a, b=b)
        if not (_is_tensor(out) and out.dtype == _torch().bool and tuple(out.shape) == tuple(a.shape)):
            self._bad_result("mating", out, f"a [{a.numel()}] bool tensor")
        return out

    def reproduce(self, sim: Any, parents: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
        if "reproduction" in self.mix:
            return self._mixed("reproduction", sim, parents, parents=parents, partners=partners)
        out = self._required("reproduction", sim=sim, parents=parents, partners=partners)
        self._check_genomes("reproduction", sim, out, parents.numel())
        return out

    def mutate(self, sim: Any, genomes: torch.Tensor, parents: torch.Tensor) -> torch.Tensor:
        if "mutation" in self.mix:
            return self._mixed("mutation", sim, parents, genomes=genomes, parents=parents)
        out = self._required("mutation", sim=sim, genomes=genomes, parents=parents)
        self._check_genomes("mutation", sim, out, genomes.shape[0])
        return out

    def _mixed(self, role: str, sim: Any, by: torch.Tensor, **rows: torch.Tensor) -> torch.Tensor:
        """Call each strategy of a mixed role once, for the rows whose first parent carries it
        (``sim.world.strategy``), in strategy order; the children come back in row order."""
        torch = _torch()
        k = by.numel()
        codes = sim.world.strategy[by].long()
        present = torch.unique(codes).tolist() if k else []
        out = None
        for code in present:
            name = self.mix[role][code]
            idx = (codes == code).nonzero().squeeze(1) if len(present) > 1 else None
            part = {key: (v if idx is None else v[idx]) for key, v in rows.items()}
            got = self._call(self._mix_callers[role][code], ROLE_HOOKS[role], sim=sim, **part)
            if got is None:
                raise PluginError(f"role {role!r}: strategy {name!r} returned None from {ROLE_HOOKS[role]}")
            n = k if idx is None else idx.numel()
            if not (_is_tensor(got) and tuple(got.shape) == (n, sim.layout.size) and got.is_floating_point()):
                raise PluginError(f"strategy {role}={name!r} returned {_describe(got)} from {ROLE_HOOKS[role]}; "
                                  f"expected a [{n}, {sim.layout.size}] float tensor of genomes")
            if idx is None:
                return got
            if out is None:
                out = torch.empty(k, sim.layout.size, dtype=got.dtype, device=got.device)
            out[idx] = got
        if out is None:
            return torch.empty(0, sim.layout.size, device=by.device)
        return out

    def speciate(self, sim: Any, genomes: torch.Tensor, parent_species: torch.Tensor, step: int) -> torch.Tensor:
        out = self._required("speciation", sim=sim, genomes=genomes, parent_species=parent_species, step=step)
        k = parent_species.numel()
        if not (_is_tensor(out) and tuple(out.shape) == (k,) and not out.is_floating_point() and out.dtype != _torch().bool):
            self._bad_result("speciation", out, f"a [{k}] integer tensor of species ids")
        n_sp = int(sim.world.species_origin.shape[0])
        if k and (int(out.min()) < 0 or int(out.max()) >= n_sp):
            bad = out[(out < 0) | (out >= n_sp)][:3].tolist()
            self._bad_result("speciation", out, f"species ids in [0, {n_sp}) (found {bad}; found new species "
                             "through sim.new_species)")
        return out.long()

    def behaviour(self, sim: Any, slots: torch.Tensor) -> torch.Tensor:
        out = self._call(self._pm.hook.alife_behaviour, "alife_behaviour", sim=sim, slots=slots)
        n = slots.numel()
        if not (_is_tensor(out) and out.dim() == 2 and out.shape[0] == n and out.is_floating_point()):
            who = ", ".join(repr(i.plugin_name) for i in self._pm.hook.alife_behaviour.get_hookimpls())
            raise PluginError(f"hook alife_behaviour (implemented by {who}) returned {_describe(out)}; "
                              f"expected a [{n}, d] float tensor")
        return out

    def genome_tensors(self, config: Any) -> list[Any]:
        """Every plugin's heritable tensors (``alife_genome_tensors``), checked."""
        from alife.genome import GenomeTensor

        out, seen = [], {}
        for impl in reversed(self._pm.hook.alife_genome_tensors.get_hookimpls()):
            got = self._call(self._only("alife_genome_tensors", impl.plugin), "alife_genome_tensors", config=config)
            for t in (got[0] if got else None) or []:
                if not isinstance(t, GenomeTensor):
                    raise PluginError(f"plugin {impl.plugin_name!r}: alife_genome_tensors returned {_describe(t)}; "
                                      "expected a list of alife.genome.GenomeTensor")
                if t.key in seen:
                    raise PluginError(f"genome tensor {t.key!r} is declared by both {seen[t.key]!r} and {impl.plugin_name!r}")
                seen[t.key] = impl.plugin_name
                out.append(t)
        return out

    def observations(self, config: Any) -> list[tuple[str, int, str]]:
        """Every plugin's observation channels (``alife_observations``), checked:
        ``(name, size, plugin)``."""
        out: list[tuple[str, int, str]] = []
        seen: dict[str, str] = {}
        for impl in reversed(self._pm.hook.alife_observations.get_hookimpls()):
            got = self._call(self._only("alife_observations", impl.plugin), "alife_observations", config=config)
            for item in (got[0] if got else None) or []:
                ok = (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str) and item[0]
                      and isinstance(item[1], int) and not isinstance(item[1], bool) and 1 <= item[1] <= 64)
                if not ok:
                    raise PluginError(f"plugin {impl.plugin_name!r}: alife_observations returned {_describe(item)}; "
                                      "expected (name, size) with a non-empty name and 1 <= size <= 64")
                name, size = str(item[0]), int(item[1])
                if name in seen:
                    raise PluginError(f"observation channel {name!r} is declared by both {seen[name]!r} and "
                                      f"{impl.plugin_name!r}")
                seen[name] = impl.plugin_name
                out.append((name, size, impl.plugin_name))
        return out

    def observe(self, sim: Any, n: int, obs: torch.Tensor) -> None:
        self._call(self._pm.hook.alife_observe, "alife_observe", sim=sim, n=n, obs=obs)

    def setup(self, sim: Any) -> None:
        """``alife_setup`` plugin by plugin, so the arrays each registers name their owner."""
        for impl in reversed(self._pm.hook.alife_setup.get_hookimpls()):
            sim.arrays._owner = impl.plugin_name
            try:
                self._call(self._only("alife_setup", impl.plugin), "alife_setup", sim=sim)
            finally:
                sim.arrays._owner = "?"

    def fitness(self, sim: Any, fitness: Fitness) -> None:
        self._call(self._pm.hook.alife_fitness, "alife_fitness", sim=sim, fitness=fitness)

    def species_born(self, sim: Any, species: Any, parents: Any, step: int) -> None:
        self._call(self._pm.hook.alife_species_born, "alife_species_born", sim=sim, species=species,
                   parents=parents, step=step)

    def species_extinct(self, sim: Any, species: Any, step: int) -> None:
        self._call(self._pm.hook.alife_species_extinct, "alife_species_extinct", sim=sim, species=species, step=step)

    def stateful(self) -> dict[str, Any]:
        """Active plugins that keep state (``state_dict`` and ``load_state_dict``), by name."""
        out = {}
        for name, plugin in self._pm.list_name_plugin():
            if callable(getattr(plugin, "state_dict", None)) and callable(getattr(plugin, "load_state_dict", None)):
                out[name] = plugin
        return out

    def interact(self, sim: Any, attackers: torch.Tensor, targets: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(damage, gain, targets)``: the interaction's answer, checked; ``targets`` are the
        engine's own unless the strategy redirected its attacks (a third tensor)."""
        import torch  # noqa: PLC0415  (this module loads without torch: the lineage tools use it)

        out = self._required("interaction", sim=sim, attackers=attackers, targets=targets)
        m = attackers.numel()
        if not (isinstance(out, tuple) and len(out) in (2, 3) and all(_is_tensor(t) for t in out)
                and all(tuple(t.shape) == (m,) for t in out)
                and all(t.is_floating_point() for t in out[:2])
                and (len(out) == 2 or not (out[2].is_floating_point() or out[2].dtype == torch.bool))):
            self._bad_result("interaction", out, f"(damage, gain) or (damage, gain, targets): two [{m}] float "
                                                 f"tensors, and optionally [{m}] integer slots")
        if len(out) == 2:
            return out[0], out[1], targets
        to = out[2].to(torch.int64)
        if m:
            alive = sim.world.alive
            bad = (to < 0) | (to >= alive.shape[0])
            bad = bad | ~alive[to.clamp(0, alive.shape[0] - 1)] | (to == attackers)
            if bool(bad.any()):
                i = int(bad.nonzero()[0, 0])
                self.bad_result("interaction", f"attack {i} (attacker slot {int(attackers[i])}) redirected to slot "
                                f"{int(to[i])}, which is not a living agent other than the attacker "
                                f"({int(bad.sum())} of {m} attacks)")
        return out[0], out[1], to

    def _required(self, role: str, **kwargs: Any) -> Any:
        out = self._role(role, **kwargs)
        if out is None:
            raise PluginError(f"role {role!r}: strategy {self.chosen[role]!r} (plugin "
                              f"{self._winner[role]!r}) returned None from {ROLE_HOOKS[role]}")
        return out

    def _check_genomes(self, role: str, sim: Any, out: Any, k: int) -> None:
        size = sim.layout.size
        if not (_is_tensor(out) and tuple(out.shape) == (k, size) and out.is_floating_point()):
            self._bad_result(role, out, f"a [{k}, {size}] float tensor of genomes")

    def bad_result(self, role: str, problem: str) -> None:
        """Raise the ``PluginError`` for a role's answer the engine cannot accept: ``problem``
        says what was wrong (the message names the plugin, the strategy and the hook)."""
        raise PluginError(f"plugin {self._winner[role]!r} (strategy {role}={self.chosen[role]!r}) "
                          f"returned a result {ROLE_HOOKS[role]} must not: {problem}")

    def _bad_result(self, role: str, out: Any, expected: str) -> None:
        got = _describe(out)
        raise PluginError(f"plugin {self._winner[role]!r} (strategy {role}={self.chosen[role]!r}) "
                          f"returned {got} from {ROLE_HOOKS[role]}; expected {expected}")

    def agents_born(self, sim: Any, births: Births) -> None:
        self._call(self._pm.hook.alife_agents_born, "alife_agents_born", sim=sim, births=births)

    def agents_died(self, sim: Any, deaths: Deaths) -> None:
        self._call(self._pm.hook.alife_agents_died, "alife_agents_died", sim=sim, deaths=deaths)

    # ------------------------------------------------------------------ the `alife run` command line
    def recorder_names(self) -> dict[str, str]:
        """``{recorder name: plugin name}`` for every plugin implementing ``alife_make_recorders``,
        in load order: its ``ALIFE_RECORDER``, else its plugin name. A name two plugins take is
        refused."""
        self._check_pending()
        out: dict[str, str] = {}
        for impl in self._pm.hook.alife_make_recorders.get_hookimpls():
            name = getattr(impl.plugin, "ALIFE_RECORDER", impl.plugin_name)
            if not isinstance(name, str) or not name.strip():
                raise PluginError(f"plugin {impl.plugin_name!r}: ALIFE_RECORDER must be a non-empty string, got {name!r}")
            if name in out:
                raise PluginError(f"recorder {name!r} is offered by both plugin {out[name]!r} and plugin "
                                  f"{impl.plugin_name!r}; leave one out with -p no:NAME")
            out[name] = impl.plugin_name
        return out

    def add_run_arguments(self, parser: Any) -> None:
        """``alife_add_run_arguments`` of every plugin, in load order; an error names the plugin."""
        self._check_pending()
        for impl in self._pm.hook.alife_add_run_arguments.get_hookimpls():
            self._call_one(impl, "alife_add_run_arguments", parser=parser)

    def make_recorders(self, run_dir: Path, args: Any, config: Any, skip: set[str] | frozenset[str] = frozenset()) -> list[Any]:
        """Every plugin's recorders (``alife_make_recorders``) in load order, but those of the
        recorder names in ``skip``."""
        owner = {plugin: name for name, plugin in self.recorder_names().items()}
        out: list[Any] = []
        for impl in self._pm.hook.alife_make_recorders.get_hookimpls():
            if owner[impl.plugin_name] in skip:
                continue
            got = self._call_one(impl, "alife_make_recorders", run_dir=run_dir, args=args, config=config)
            if got is None:
                continue
            if not isinstance(got, list | tuple):
                raise PluginError(f"plugin {impl.plugin_name!r} returned {_describe(got)} from "
                                  "alife_make_recorders; expected a list of plugin objects or None")
            out.extend(got)
        return out

    def _call_one(self, impl: Any, hookname: str, **kwargs: Any) -> Any:
        """One plugin's implementation of a broadcast hook: its result, or ``None``."""
        try:
            got = self._only(hookname, impl.plugin)(**kwargs)
        except PluginError:
            raise
        except Exception as e:
            raise PluginError(f"plugin {impl.plugin_name!r} raised in hook {hookname}: {type(e).__name__}: {e}") from e
        return got[0] if got else None


def build_manager(strategies: StrategiesSection, *, world_plugins: list[str] = (),
                  world_base_dir: str | Path = ".", world_source: str = "world file",
                  modules: list[str] = (), plugins_dirs: list[str | Path] = (),
                  blocked: list[str] = (), extra: list[Any] = (), entry_points: bool = True,
                  mixture: MixtureSection | None = None, mode: str = "") -> PluginManager:
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
        pm.register(p, pm.free_name(getattr(p, "__name__", None) or type(p).__name__, p), "python")
    pm.resolve(strategies, mixture, mode)
    return pm


def split_plugin_args(modules: list[str]) -> tuple[list[str], list[str]]:
    """``-p`` values: the plugin modules to load, and the names ``-p no:NAME`` blocks."""
    return [m for m in modules if not m.startswith("no:")], [m[3:] for m in modules if m.startswith("no:")]
