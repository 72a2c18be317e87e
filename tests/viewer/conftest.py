"""A small recorded run shared by the viewer tests."""

import numpy as np
import pytest

import alife
from alife.recording.replay import ReplayRecorder

OVERRIDES = {"world.width": 40, "world.height": 30, "world.initial_agents": 150, "world.capacity": 1024}


@pytest.fixture(scope="session")
def recorded_run(tmp_path_factory):
    """``(run folder, final state dict)`` of a 40-step run with a replay every 2 steps and, when
    the lineage recorder is available, a lineage file."""
    out = tmp_path_factory.mktemp("run")
    plugins = [ReplayRecorder(out / "replay.h5", every=2)]
    try:
        from alife.recording.lineage import LineageRecorder
        plugins.append(LineageRecorder(out / "lineage.h5", commit_every=10))
    except ImportError:
        pass
    sim = alife.Simulation(overrides=OVERRIDES, seed=5, plugins=plugins, run_dir=out)
    sim.run(40)
    state = sim.state()
    sim.close()
    assert len(state["ids"]) > 0 and np.any(state["children"] > 0)
    return out, state
