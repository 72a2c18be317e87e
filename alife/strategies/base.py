"""Strategy objects: typed parameters, explicit state, ``state_dict`` / ``load_state_dict``.

A strategy is a small class in the manner of evosax's strategies: its parameters are a dataclass
read from its own world-file table (``[plugin.<name>]``, every key checked like any other world
key, errors naming the file and the key), its state is tensors it owns (or per-slot and
per-species arrays it registers with the engine through ``sim.arrays``), and
:meth:`Strategy.state_dict` / :meth:`Strategy.load_state_dict` carry that state through
checkpoints, so a resumed run repeats the uninterrupted one. It is still a pluggy plugin: its hook
implementations are methods decorated with ``@alife.hookimpl``, and the role it plays is declared
by the class attributes ``role`` and ``name``.

A plugin module offers strategy classes with ``ALIFE_PLUGINS = [MyStrategy, ...]``; the plugin
manager makes one instance per simulation (two runs in one process never share a strategy's
state) and registers it under the strategy's name.

What a state dict may hold: tensors and numpy arrays (saved as HDF5 datasets), and JSON values
(numbers, strings, booleans, lists and dicts of them). Never pickled objects.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from alife.plugins import hookimpl


@dataclasses.dataclass
class NoParams:
    """A strategy without parameters: its table must be empty."""


class Strategy:
    """Base class of strategy plugins (see the module docstring).

    Subclasses set ``role`` (a role of ``[strategies]``: ``selection``, ``reproduction``,
    ``mutation``, ``mating``, ``interaction``, ``speciation``), ``name`` (what a world file
    chooses) and ``Params`` (a dataclass of ``alife.config._f`` fields), and implement the role's
    hook as a method. ``setup(sim)`` runs once the simulation's arrays exist and before its first
    agents are placed: register arrays there. ``self.params`` holds the checked parameters.
    """

    role: ClassVar[str] = ""
    name: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams
    #: the modes it runs in (``world``, ``task``); chosen in another, the run is refused at start
    modes: ClassVar[tuple[str, ...]] = ("world", "task")

    def __init__(self) -> None:
        self.params: Any = self.Params()

    @property
    def ALIFE_STRATEGIES(self) -> dict[str, str]:  # noqa: N802 (the manager reads this name)
        return {self.role: self.name} if self.role else {}

    # ------------------------------------------------------------------ set-up
    @hookimpl
    def alife_setup(self, sim: Any) -> None:
        self.params = read_params(self.Params, sim.config, self.name)
        self.setup(sim)

    def setup(self, sim: Any) -> None:
        """Register arrays, allocate state; the parameters are in ``self.params``."""

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """This strategy's state: tensors, numpy arrays and JSON values. Empty: stateless."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put back what :meth:`state_dict` returned (arrays come back as numpy arrays)."""
        if state:
            raise ValueError(f"strategy {self.name!r} keeps no state, got keys {sorted(state)}")

    def __repr__(self) -> str:
        return f"<strategy {self.role}={self.name!r}>"


def read_params(cls: type, config: Any, name: str) -> Any:
    """``cls`` built from the world file's ``[plugin.<name>]`` table, checked key by key
    (:class:`alife.config.ConfigError` names the file and ``plugin.<name>.<key>``)."""
    from alife.config import _build

    table = (config.plugin or {}).get(name, {})
    return _build(cls, table, config.source, f"plugin.{name}.")
