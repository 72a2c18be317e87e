"""Property test: the config loader, fed malformed input (random tables, values, keys, TOML text,
overrides), either returns a valid WorldConfig or raises ConfigError. Never anything else."""

from __future__ import annotations

import math
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from alife import config as config_mod
from alife.config import ConfigError, WorldConfig

KNOWN_SECTIONS = ["world", "resource", "agent", "brain", "mutation", "strategies", "plugin", "task"]
KNOWN_KEYS = ["width", "height", "capacity", "initial_agents", "initial_species", "extinction", "max",
              "initial", "regrowth", "max_speed", "max_age", "bite", "hidden", "tag_dim", "sigma_init",
              "sigma_min", "sigma_max", "selection", "mutation", "name", "seed", "device", "plugins"]

scalars = hs.one_of(
    hs.none(), hs.booleans(), hs.integers(), hs.integers(min_value=-(2**70), max_value=2**70),
    hs.floats(allow_nan=True, allow_infinity=True), hs.text(max_size=12),
    hs.sampled_from([0, 1, -1, 8, 2**22, 2**22 + 1, 2**63, 10**400, -(10**400), 1e308, -0.0, "nan", "auto",
                     "stop", "reseed"]),
    hs.binary(max_size=4),
)
keys = hs.one_of(hs.sampled_from(KNOWN_KEYS + KNOWN_SECTIONS), hs.text(max_size=8))
values = hs.recursive(scalars, lambda inner: hs.one_of(hs.lists(inner, max_size=3),
                                                       hs.dictionaries(keys, inner, max_size=4)),
                      max_leaves=12)
tables = hs.dictionaries(hs.sampled_from(KNOWN_SECTIONS) | keys,
                         hs.dictionaries(keys, values, max_size=5) | values, max_size=6)


def _valid(cfg: WorldConfig) -> None:
    assert isinstance(cfg, WorldConfig)
    w = cfg.world
    assert 8 <= w.width <= 1 << 14 and 8 <= w.height <= 1 << 14
    assert 1 <= w.initial_agents <= w.capacity
    assert w.extinction in ("stop", "reseed", "inject")
    assert math.isfinite(cfg.resource.max) and cfg.resource.max > 0
    assert math.isfinite(cfg.agent.max_speed)


settings_ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings_
@given(tables)
def test_random_tables_load_or_raise_config_error(data):
    try:
        cfg = config_mod.load(data)
    except ConfigError as e:
        assert str(e)
    else:
        _valid(cfg)


@settings_
@given(hs.dictionaries(hs.text(max_size=20) | hs.sampled_from(["world.width", "seed.x", "agent.bite", "a..b", ""]),
                       values, max_size=4))
def test_random_overrides_load_or_raise_config_error(overrides):
    try:
        cfg = config_mod.load(None, overrides)
    except ConfigError:
        pass
    else:
        _valid(cfg)


@settings_
@given(hs.text(max_size=40))
def test_random_set_arguments_parse_or_raise_config_error(text):
    try:
        key, value = config_mod.parse_override(text)
        cfg = config_mod.load(None, {key: value})
    except ConfigError:
        pass
    else:
        _valid(cfg)


toml_lines = hs.one_of(
    hs.sampled_from(["[world]", "[resource]", "[agent]", "[brain]", "[strategies]", "[[world]]", "[world",
                     "width = 64", "width = nan", "width = -inf", "capacity = 1e9", "max = nan",
                     "initial_agents = 99999999", 'extinction = "reseed"', "seed = -1", "x = [1, 2",
                     'name = "a"', "world = 3", "plugins = [1]", "max_age = 1979-05-27", "tag_dim = 0",
                     'device = "tpu"', "hidden = 4096", "= 3", "width = 0x10", "width = 1_000"]),
    hs.text(max_size=30),
)


@settings_
@given(hs.lists(toml_lines, max_size=8))
def test_random_toml_text_loads_or_raises_config_error(tmp_path_factory, lines):
    path = Path(tmp_path_factory.mktemp("fuzz")) / "world.toml"
    path.write_text("\n".join(lines), errors="surrogatepass")
    try:
        cfg = config_mod.load(str(path))
    except ConfigError as e:
        assert str(path) in str(e)
    else:
        _valid(cfg)


@settings_
@given(hs.binary(max_size=64))
def test_random_bytes_load_or_raise_config_error(tmp_path_factory, blob):
    path = Path(tmp_path_factory.mktemp("fuzz")) / "world.toml"
    path.write_bytes(blob)
    try:
        cfg = config_mod.load(str(path))
    except ConfigError:
        pass
    else:
        _valid(cfg)


@settings_
@given(hs.text(max_size=30))
def test_random_world_names_load_or_raise_config_error(name):
    try:
        cfg = config_mod.load(name)
    except ConfigError:
        pass
    else:
        _valid(cfg)
