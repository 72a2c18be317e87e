"""Keep every child's policy weights within [-limit, limit], whatever mutation strategy runs.

Settings: ``[plugin.clamp_policy] limit = 3.0`` (a number > 0).
"""

from alife.config import ConfigError
from alife.plugins import hookimpl


def read_limit(sim):
    limit = sim.config.plugin.get("clamp_policy", {}).get("limit", 3.0)
    if isinstance(limit, bool) or not isinstance(limit, int | float) or limit <= 0:
        raise ConfigError(sim.config.source, "plugin.clamp_policy.limit",
                          f"expected a number > 0, got {limit!r}")
    return float(limit)


@hookimpl
def alife_sim_start(sim):
    read_limit(sim)  # a bad setting stops the run before its first step


@hookimpl(wrapper=True)
def alife_mutate(sim, genomes, parents):
    children = yield  # the chosen mutation strategy runs here
    limit = read_limit(sim)
    start, end = sim.layout.segment_range("policy")
    children[:, start:end].clamp_(-limit, limit)
    return children
