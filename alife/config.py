"""World files: TOML with validated keys.

A world file is data, not code (MPE2's "worlds are data, not forks of the engine"). Every key is
declared below with its type and allowed range; an unknown or mistyped key, a wrong type or an
impossible value raises :class:`ConfigError`, which names the file, the key and what was expected.
The CLI turns that into a one-line message and a non-zero exit.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import math
import tomllib
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints


class ConfigError(ValueError):
    """A world file (or an override) is wrong. The message names file, key and expectation."""

    def __init__(self, source: str, key: str, message: str):
        self.source, self.key = source, key
        super().__init__(f"{source}: {key}: {message}" if key else f"{source}: {message}")


def _f(default: Any, doc: str, *, lo: float | None = None, hi: float | None = None,
       lo_open: bool = False, choices: tuple | None = None, factory: Any = None):
    """A documented, range-checked config field."""
    meta = {"doc": doc, "lo": lo, "hi": hi, "lo_open": lo_open, "choices": choices}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


#: the public name of :func:`_f`, for a strategy's ``Params`` dataclass
setting = _f


@dataclass
class WorldSection:
    """Geometry and memory bounds of the persistent world."""

    width: int = _f(96, "world width in resource cells (the world is a torus)", lo=8, hi=1 << 14)
    height: int = _f(96, "world height in resource cells", lo=8, hi=1 << 14)
    capacity: int = _f(8192, "agent slots: a memory bound; births past it are refused and counted", lo=2, hi=1 << 22)
    initial_agents: int = _f(600, "agents placed at step 0", lo=1, hi=1 << 22)
    initial_species: int = _f(4, "founder species among the initial agents (kin tags drawn around each founder)", lo=1, hi=1 << 16)
    max_neighbours_per_cell: int = _f(4, "agents per sensing cell considered when looking for the nearest agent", lo=1, hi=64)
    extinction: str = _f("stop", "when the population dies out: stop (end the run with a summary), reseed "
                         "(place initial_agents again from the genomes of the last agents that died) or "
                         "inject (place initial_agents random genomes)", choices=("stop", "reseed", "inject"))


@dataclass
class ResourceSection:
    """The regrowing resource field (one value per cell)."""

    initial: float = _f(0.5, "starting resource per cell, as a fraction of `max`", lo=0.0, hi=1.0)
    max: float = _f(1.0, "carrying capacity of a cell", lo=0.0, lo_open=True, hi=1e6)
    regrowth: float = _f(0.02, "logistic regrowth rate per step", lo=0.0, hi=1.0)
    seed_growth: float = _f(0.0005, "constant regrowth per step so that bare cells recover", lo=0.0, hi=1.0)


@dataclass
class AgentSection:
    """Bodies, senses, metabolism and reproduction thresholds."""

    max_speed: float = _f(0.8, "cells moved per step at full speed", lo=0.0, lo_open=True, hi=100.0)
    max_turn: float = _f(0.6, "radians turned per step at full turn", lo=0.0, hi=math.pi)
    sense_radius: float = _f(3.0, "how far an agent sees other agents, in cells", lo=0.5, hi=1000.0)
    contact_radius: float = _f(1.5, "how close another agent must be to attack or mate with it", lo=0.0, hi=1000.0)
    mate_radius: float = _f(0.0, "how far an agent that signals readiness looks for a partner: the nearest agent "
                            "that signals it too, within this radius (0: its nearest agent, within contact_radius)",
                            lo=0.0, hi=1000.0)
    bite: float = _f(0.25, "most resource eaten in one step", lo=0.0, hi=1e6)
    food_energy: float = _f(1.0, "energy gained per unit of resource eaten", lo=0.0, hi=1e6)
    initial_energy: float = _f(2.0, "energy of the agents placed at step 0", lo=0.0, lo_open=True, hi=1e6)
    max_energy: float = _f(6.0, "energy an agent can store", lo=0.0, lo_open=True, hi=1e6)
    base_cost: float = _f(0.02, "energy spent per step just to live", lo=0.0, hi=1e6)
    move_cost: float = _f(0.04, "energy per step at full speed (scales with speed squared)", lo=0.0, hi=1e6)
    brain_cost: float = _f(2e-5, "energy per step per policy parameter", lo=0.0, hi=1e6)
    attack_cost: float = _f(0.02, "energy spent per attack", lo=0.0, hi=1e6)
    attack_damage: float = _f(0.8, "energy removed from the target per attack", lo=0.0, hi=1e6)
    attack_gain: float = _f(0.6, "fraction of the removed energy the attacker gains", lo=0.0, hi=1.0)
    max_age: int = _f(600, "steps an agent lives at most", lo=1, hi=1 << 40)
    reproduce_energy: float = _f(3.0, "energy needed to reproduce", lo=0.0, lo_open=True, hi=1e6)
    child_energy: float = _f(1.2, "energy the parent hands to its child", lo=0.0, lo_open=True, hi=1e6)
    birth_cost: float = _f(0.3, "energy lost in giving birth, beyond the child's share", lo=0.0, hi=1e6)
    min_reproduce_age: int = _f(20, "steps an agent must have lived before it reproduces", lo=0, hi=1 << 40)


@dataclass
class BrainSection:
    """Sizes of the three networks every genome holds."""

    hidden: int = _f(16, "hidden units of the policy network", lo=1, hi=4096)
    tag_dim: int = _f(4, "length of the heritable kin tag", lo=1, hi=64)
    compat_hidden: int = _f(8, "hidden units of the compatibility network", lo=1, hi=4096)
    mutator_hidden: int = _f(8, "hidden units of the mutator network", lo=1, hi=4096)
    init_scale: float = _f(1.0, "scale of the initial weights (times 1/sqrt(fan_in))", lo=0.0, hi=100.0)


@dataclass
class MutationSection:
    """Gaussian mutation with a heritable, self-adapted step size."""

    sigma_init: float = _f(0.05, "initial step size of every segment", lo=0.0, lo_open=True, hi=10.0)
    sigma_min: float = _f(1e-4, "smallest step size", lo=0.0, lo_open=True, hi=10.0)
    sigma_max: float = _f(0.5, "largest step size", lo=0.0, lo_open=True, hi=100.0)
    tau: float = _f(0.1, "log-normal learning rate of the step size itself", lo=0.0, hi=10.0)
    species_threshold: float = _f(1.0, "tag distance from its species' founder at which a child founds a new species", lo=0.0, lo_open=True, hi=1e6)


@dataclass
class TaskSection:
    """Generational mode: evolve a population on a gymnasium task (``alife.generational``).

    Present only in task worlds; a world without ``[task]`` is an ecology world. Selection,
    reproduction and mutation still come from ``[strategies]`` and ``[mutation]``.
    """

    env_id: str = _f("", "gymnasium id of the task, e.g. \"CartPole-v1\"")
    generations: int = _f(100, "most generations to run", lo=1, hi=1 << 30)
    population: int = _f(64, "genomes evaluated per generation", lo=2, hi=1 << 20)
    episodes: int = _f(1, "seeded episodes per genome per evaluation; fitness is their mean return", lo=1, hi=1 << 16)
    eval_seeds: str = _f("fresh", "training episode seeds: new each generation, or the same every generation", choices=("fresh", "fixed"))
    heldout_episodes: int = _f(100, "held-out seeded episodes the best genome is scored on (seeds disjoint from training)", lo=1, hi=1 << 20)
    heldout_every: int = _f(0, "also score the best genome on the held-out episodes every K generations (0: only at the end)", lo=0, hi=1 << 30)
    threshold: float = _f(math.nan, "score to report steps and time to; nan: the env's reward_threshold")
    threshold_on: str = _f("best", "what must reach the threshold: the best genome by training fitness, confirmed on `confirm_episodes` training episodes, or a generation's population mean", choices=("best", "population"))
    confirm_episodes: int = _f(5, "training episodes (counted in env steps) behind a best genome's fitness before it counts as reaching the threshold", lo=1, hi=1 << 16)
    confirm_chunk: int = _f(0, "a genome under confirmation plays this many episodes at a time, re-ranked in between, so one that falls back stops early (0: all it lacks at once)", lo=0, hi=1 << 16)
    confirm_every: int = _f(0, "also confirm the best genome by training fitness on `confirm_episodes` training episodes every K generations and before the final held-out scoring, whatever the threshold (0: only for the threshold rule)", lo=0, hi=1 << 30)
    workers: int = _f(1, "processes that play the episodes (this one and workers - 1 helpers; returns are the same for any number)", lo=1, hi=256)
    max_env_steps: int = _f(0, "stop once this many training env steps are spent (0: no limit; `generations` still applies)", lo=0, hi=1 << 62)
    stop_at_threshold: bool = _f(True, "stop once the threshold is reached (see `threshold_on`)")
    elite: int = _f(1, "best genomes carried over unchanged (and re-evaluated) each generation", lo=0, hi=1 << 20)
    parents: int = _f(8, "truncation selection: children are drawn from the best `parents` genomes", lo=1, hi=1 << 20)
    crossover: float = _f(0.0, "probability that a child has a second parent (then `[strategies] mating` decides)", lo=0.0, hi=1.0)
    hidden: int = _f(16, "hidden units of the policy (the CNN's fully connected layer for image observations)", lo=1, hi=4096)
    action_mapping: str = _f("tanh", "Box actions: tanh output scaled to [low, high], or linear output clipped", choices=("tanh", "clip"))
    max_episode_steps: int = _f(0, "cap on episode length (0: the env's own limit)", lo=0, hi=1 << 30)


ROLES = ("selection", "reproduction", "mutation", "mating", "interaction", "speciation")
#: the roles a world may give to several strategies at once (``[mixture]``)
MIXABLE_ROLES = ("reproduction", "mutation")


@dataclass
class StrategiesSection:
    """Which strategy plays each role; exactly one per role."""

    selection: str = _f("", "who reproduces this step; empty: the mode's own, `energy-threshold` in the world, `truncation` on a task")
    reproduction: str = _f("crossover-mutate", "how a child genome is made")
    mutation: str = _f("gaussian", "how a genome is varied")
    mating: str = _f("compatibility", "whether two agents accept each other")
    interaction: str = _f("predation", "what an attack does")
    speciation: str = _f("kin-drift", "which species a child belongs to, and when it founds one")


@dataclass
class MixtureSection:
    """Several strategies for one variation role in one world, competing by lineage.

    Every agent carries a heritable strategy (``sim.world.strategy``, an index into
    ``strategies``); initial agents get them in proportion to ``shares``, a child takes its first
    parent's (switching to another at random with probability ``switch_rate``), and the
    reproduction phase calls each strategy once per step for its own lineages' children.
    """

    role: str = _f("mutation", "the role the strategies share", choices=MIXABLE_ROLES)
    strategies: list = _f(None, "strategy names (at least two, each offered by a loaded plugin)", factory=list)
    shares: list = _f(None, "initial share of each strategy (same length; normalised); empty: equal shares", factory=list)
    switch_rate: float = _f(0.0, "probability that a child takes another strategy than its parent's", lo=0.0, hi=1.0)


@dataclass
class WorldConfig:
    """A whole world file."""

    name: str = _f("meadow", "name of the world; run folders are named after it")
    seed: int = _f(0, "default seed; `--seed` overrides it", lo=0, hi=(1 << 63) - 1)
    device: str = _f("auto", "where brains run", choices=("auto", "cpu", "cuda"))
    plugins: list = _f(None, "plugins to load: module names or .py paths (relative to this file)", factory=list)
    world: WorldSection = field(default_factory=WorldSection)
    resource: ResourceSection = field(default_factory=ResourceSection)
    agent: AgentSection = field(default_factory=AgentSection)
    brain: BrainSection = field(default_factory=BrainSection)
    mutation: MutationSection = field(default_factory=MutationSection)
    strategies: StrategiesSection = field(default_factory=StrategiesSection)
    plugin: dict = _f(None, "per-plugin settings tables, `[plugin.<name>]`, read by the plugins", factory=dict)
    mixture: MixtureSection | None = field(default=None, metadata={"doc": "several strategies for one variation role, competing by lineage; absent: one strategy per role"})
    task: TaskSection | None = field(default=None, metadata={"doc": "generational mode on a gymnasium task; absent: ecology mode"})
    source: str = field(default="<defaults>", metadata={"internal": True})
    text: str = field(default="", metadata={"internal": True})
    base_dir: str = field(default=".", metadata={"internal": True})

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for k in ("source", "text", "base_dir"):
            d.pop(k)
        # an absent optional table ([task]) is left out, so that from_dict(to_dict()) round-trips
        return {k: v for k, v in d.items() if v is not None}


#: smallest normal float32 (numpy.finfo(numpy.float32).tiny)
FLOAT32_TINY = 1.1754943508222875e-38

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               list: "a list", dict: "a table"}


def _check_value(source: str, key: str, value: Any, typ: type, meta: dict) -> Any:
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > 1e308:
            raise ConfigError(source, key, f"expected a finite number, got an integer of {len(str(abs(value)))} digits")
        value = float(value)
    if typ is int and isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)
    ok = isinstance(value, typ) and not (typ in (int, float) and isinstance(value, bool))
    if not ok:
        raise ConfigError(source, key, f"expected {_TYPE_NAMES.get(typ, typ.__name__)}, got {value!r} ({type(value).__name__})")
    if typ is float and not math.isfinite(value):
        raise ConfigError(source, key, f"expected a finite number, got {value!r}")
    if typ is float and value != 0 and abs(value) < FLOAT32_TINY:
        # the world's arrays are float32: such a value is 0 (or lossy) there, and a positive
        # setting read as 0 divides by zero deep in a kernel
        raise ConfigError(source, key, f"{value!r} is below what float32 (the world's arrays) holds: "
                                       f"use a magnitude of at least {FLOAT32_TINY:.3g}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value < lo or (meta.get("lo_open") and value == lo)):
        rel = ">" if meta.get("lo_open") else ">="
        raise ConfigError(source, key, f"expected a value {rel} {lo}, got {value!r}")
    if hi is not None and value > hi:
        raise ConfigError(source, key, f"expected a value <= {hi}, got {value!r}")
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(source, key, f"expected one of {', '.join(map(repr, meta['choices']))}, got {value!r}")
    return value


def _unknown(source: str, key: str, known: list[str]) -> ConfigError:
    leaf = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(leaf, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(known))}"
    return ConfigError(source, key, f"unknown key{hint}")


def _table_type(typ: Any) -> Any:
    """``X | None`` with ``X`` a dataclass is an optional table (``[task]``); else ``typ``."""
    args = [a for a in typing.get_args(typ) if a is not type(None)]
    return args[0] if len(args) == 1 and dataclasses.is_dataclass(args[0]) else typ


def _build(cls: type, data: dict, source: str, prefix: str) -> Any:
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if not f.metadata.get("internal")}
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in known:
            raise _unknown(source, dotted, list(known))
        typ = _table_type(hints[key])
        if dataclasses.is_dataclass(typ):
            if not isinstance(value, dict):
                raise ConfigError(source, dotted, f"expected a table [{dotted}], got {value!r}")
            kwargs[key] = _build(typ, value, source, dotted + ".")
        else:
            kwargs[key] = _check_value(source, dotted, value, typ, known[key].metadata)
    return cls(**kwargs)


def _cross_checks(cfg: WorldConfig) -> None:
    s = cfg.source
    if cfg.world.initial_agents > cfg.world.capacity:
        raise ConfigError(s, "world.initial_agents", f"{cfg.world.initial_agents} agents do not fit in world.capacity = {cfg.world.capacity}")
    if cfg.mutation.sigma_min > cfg.mutation.sigma_max:
        raise ConfigError(s, "mutation.sigma_min", f"must not exceed mutation.sigma_max ({cfg.mutation.sigma_max})")
    if not (cfg.mutation.sigma_min <= cfg.mutation.sigma_init <= cfg.mutation.sigma_max):
        raise ConfigError(s, "mutation.sigma_init", f"must lie in [sigma_min, sigma_max] = [{cfg.mutation.sigma_min}, {cfg.mutation.sigma_max}]")
    if cfg.agent.child_energy + cfg.agent.birth_cost > cfg.agent.reproduce_energy:
        raise ConfigError(s, "agent.reproduce_energy", f"must be at least child_energy + birth_cost = {cfg.agent.child_energy + cfg.agent.birth_cost}")
    if cfg.agent.reproduce_energy > cfg.agent.max_energy:
        raise ConfigError(s, "agent.reproduce_energy", f"{cfg.agent.reproduce_energy} can never be reached with agent.max_energy = {cfg.agent.max_energy}")
    for i, p in enumerate(cfg.plugins):
        if not isinstance(p, str) or not p:
            raise ConfigError(s, f"plugins[{i}]", f"expected a module name or a .py path, got {p!r}")
    for k, v in cfg.plugin.items():
        if not isinstance(v, dict):
            raise ConfigError(s, f"plugin.{k}", f"expected a table [plugin.{k}], got {v!r}")
    mx = cfg.mixture
    if mx is not None:
        names = mx.strategies
        if len(names) < 2 or not all(isinstance(n, str) and n for n in names):
            raise ConfigError(s, "mixture.strategies", f"expected at least two strategy names, got {names!r}")
        if len(set(names)) != len(names):
            raise ConfigError(s, "mixture.strategies", f"a strategy is named twice in {names!r}")
        if len(names) > 64:
            raise ConfigError(s, "mixture.strategies", f"at most 64 strategies, got {len(names)}")
        if mx.shares:
            ok = len(mx.shares) == len(names) and all(
                isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) and x >= 0 for x in mx.shares)
            if not ok or sum(mx.shares) <= 0:
                raise ConfigError(s, "mixture.shares", f"expected {len(names)} non-negative numbers with a positive sum, got {mx.shares!r}")
        if cfg.task is not None:
            raise ConfigError(s, "mixture", "strategies mixed per lineage run in the persistent world only, not with a [task] table")


def check_memory(cfg: WorldConfig, genome_size: int, available: int | None = None,
                 policy_size: int = 0, extra_slot_bytes: int = 0) -> None:
    """Refuse a world whose arrays cannot fit in memory, before allocating them.

    ``policy_size``: floats per slot of the CPU policy pass's transposed copy (at most this many).
    ``extra_slot_bytes``: bytes per slot of the arrays plugins registered (``sim.arrays``).
    ``available`` defaults to the machine's available memory (``MemAvailable`` on Linux; no check
    where that cannot be read)."""
    w = cfg.world
    # genome row, policy copy, the other slot arrays, the observation row and the kernels' scratch
    slot_bytes = (genome_size + policy_size) * 4 + 222 + extra_slot_bytes
    need = w.capacity * slot_bytes + w.width * w.height * 12  # the field and a float64 scratch
    if available is None:
        available = _available_memory()
    if available is None or need <= available:
        return
    gib = 1 << 30
    key = "world.capacity" if w.capacity * slot_bytes >= w.width * w.height * 4 else "world.width"
    raise ConfigError(cfg.source, key,
                      f"the world needs about {need / gib:.1f} GiB ({w.capacity} slots x {genome_size} genome "
                      f"floats, a {w.width} x {w.height} field) but only {available / gib:.1f} GiB is available")


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def parse_override(text: str, source: str = "--set") -> tuple[str, Any]:
    """Parse ``key=value`` (value in TOML syntax; a bare word is taken as a string)."""
    if "=" not in text:
        raise ConfigError(source, text, "expected KEY=VALUE, for example world.capacity=4096")
    key, raw = (p.strip() for p in text.split("=", 1))
    if not key:
        raise ConfigError(source, text, "empty key")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def _apply(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError("--set", key, f"{p!r} is not a table")
    node[parts[-1]] = value


def from_dict(data: dict, source: str = "<dict>", text: str = "", base_dir: str = ".",
              overrides: dict[str, Any] | None = None) -> WorldConfig:
    data = _deep_copy(data)
    for key, value in (overrides or {}).items():
        _apply(data, key, value)
    cfg = _build(WorldConfig, data, source, "")
    cfg.source, cfg.text, cfg.base_dir = source, text, base_dir
    _cross_checks(cfg)
    return cfg


def _deep_copy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deep_copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deep_copy(v) for v in d]
    return d


DEFAULT_WORLD = "meadow"


def default_world_text() -> str:
    """The embedded default world (``alife run`` with no argument)."""
    return importlib.resources.files("alife.worlds").joinpath("meadow.toml").read_text()


def load(world: str | Path | WorldConfig | dict | None = None,
         overrides: dict[str, Any] | None = None) -> WorldConfig:
    """Load a world: a path to a TOML file, an embedded world name, a dict, or ``None`` (default)."""
    if isinstance(world, WorldConfig):
        if overrides:
            return from_dict(world.to_dict(), world.source, world.text, world.base_dir, overrides)
        return world
    if isinstance(world, dict):
        return from_dict(world, "<dict>", overrides=overrides)
    if world is None:
        world = DEFAULT_WORLD
    path = Path(world)
    if not path.exists() and not str(world).endswith(".toml"):
        try:
            text = importlib.resources.files("alife.worlds").joinpath(f"{world}.toml").read_text()
        except (OSError, ValueError, UnicodeDecodeError):  # ValueError: a name with a NUL byte
            raise ConfigError(repr(str(world))[1:-1], "", "no such world file and no embedded world of that name") from None
        source, base = f"<embedded {world}.toml>", "."
    else:
        if not path.is_file():
            raise ConfigError(str(world), "", "no such world file")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(str(world), "", f"cannot read: {e}") from None
        source, base = str(world), str(path.parent)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(source, "", f"not valid TOML: {e}") from None
    return from_dict(data, source, text, base, overrides)


def describe() -> str:
    """Every key with its default and meaning, as a world file (`alife run --help-world`): the
    output parses as TOML and loads as the default world; optional tables (``[task]``) are shown
    commented out, since their presence changes the mode."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return str(v)

    def table(cls: type, name: str, comment: str = "") -> list[str]:
        hints = get_type_hints(cls)
        scalars, tables = [], []
        for f in fields(cls):
            if f.metadata.get("internal"):
                continue
            typ = _table_type(hints[f.name])
            if dataclasses.is_dataclass(typ):
                optional = typ is not hints[f.name]
                doc = f.metadata.get("doc") or (typ.__doc__ or "").strip().splitlines()[0]
                sub = table(typ, f"{name}{f.name}", "# " if optional or comment else "")
                tables.append((doc, optional, sub))
            else:
                default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
                scalars.append(f"{comment}{f.name} = {value(default)}  # {f.metadata.get('doc', '')}")
        out = ([f"{comment}[{name}]"] if name else []) + scalars
        for doc, optional, sub in tables:
            note = " (optional: uncomment the table to use it)" if optional else ""
            out += ["", f"# {doc}{note}", *sub]
        return out

    return "\n".join(table(WorldConfig, ""))
