"""The ``strategy`` colour mode: each agent coloured by the variation strategy its lineage
carries, recorded per agent in replays (old replays read as one strategy)."""

from pathlib import Path

import numpy as np
import pytest
import torch

import alife
from alife.recording.replay import Frame, ReplayRecorder, frame_from_sim, open_replay
from alife.viewer.render import render_frame, render_rgb, strategy_colors

EXAMPLE = Path(__file__).resolve().parents[2] / "replays" / "example"


def frame(pos, w, h, strategy=None, names=("unknown",), resource=1.0):
    pos = np.asarray(pos, np.float32).reshape(-1, 2)
    n = len(pos)
    return Frame(0, np.arange(n, dtype=np.int64), pos, np.zeros(n, np.float32), np.ones(n, np.float32),
                 np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros((n, 5), np.float32),
                 np.full((h, w), resource, np.float32),
                 None if strategy is None else np.asarray(strategy, np.int64), tuple(names))


def test_strategy_mode_colours_by_the_recorded_strategy():
    f = frame([(3.0, 3.0), (9.0, 3.0), (15.0, 3.0)], 20, 10, strategy=[0, 1, 0], names=("a", "b"))
    img = render_frame(f, 20, 10, size=(200, 100), mode="strategy")
    cols = strategy_colors(np.array([0, 1]))
    assert [tuple(img[30, x]) for x in (30, 90, 150)] == [tuple(cols[0]), tuple(cols[1]), tuple(cols[0])]
    assert tuple(cols[0]) != tuple(cols[1])
    many = strategy_colors(np.arange(12))
    assert len({tuple(c) for c in many}) == 12


@pytest.fixture(scope="module")
def two_strategy_replay(tmp_path_factory):
    """A replay of a simulation whose agents carry two strategies (by slot parity)."""
    out = tmp_path_factory.mktemp("mix") / "replay.h5"
    rec = ReplayRecorder(out, every=1, buffer_frames=1)
    names = ("crossover-mutate", "nes")

    def two_strategies(sim):  # before the recorders start, as the engine sets them up
        try:
            sim.strategy_names = names
        except AttributeError:  # the engine's own read-only attribute, patched while recording
            mp.setattr(type(sim), "strategy_names", property(lambda s: names))
        codes = (torch.arange(sim.config.world.capacity) % 2).to(torch.int16)
        if getattr(sim.world, "strategy", None) is None:
            sim.world.strategy = codes
        else:
            sim.world.strategy.copy_(codes)

    with pytest.MonkeyPatch.context() as mp:
        sim = alife.Simulation(overrides={"world.width": 40, "world.height": 30, "world.initial_agents": 60,
                                          "world.capacity": 256}, seed=3, plugins=[rec],
                               before_start=two_strategies)
        alive = sim.world.alive.nonzero().squeeze(1).numpy()
        sim.close()
    return out, names, alive


def test_replay_records_the_strategy_column_and_names(two_strategy_replay):
    out, names, alive = two_strategy_replay
    with open_replay(out) as r:
        assert r.strategy_names == names
        f = r.frame(len(r) - 1)
    assert f.strategy_names == names
    np.testing.assert_array_equal(f.strategy, alive % 2)
    assert set(f.strategy.tolist()) == {0, 1}


@pytest.mark.viewer
def test_two_strategies_render_two_colours_and_the_legend_names_both(two_strategy_replay):
    pygame = pytest.importorskip("pygame")
    from alife.viewer.app import ReplaySource, Viewer

    out, names, _ = two_strategy_replay
    with open_replay(out) as r:
        viewer = Viewer(ReplaySource(r), (800, 634), mode="strategy", timeline=True)
        viewer.seek(len(r) - 1)
        f = viewer.frame
        surface = pygame.Surface(viewer.size)
        viewer.draw(surface)
    px = pygame.surfarray.array3d(surface).transpose(1, 0, 2)
    scr = viewer.cam.to_screen(f.pos, 40, 30)
    d = np.hypot(*(scr[:, None] - scr[None]).transpose(2, 0, 1)) + np.eye(len(f)) * 1e9
    lone = (d.min(1) > 30) & (scr[:, 0] > 150) & (scr[:, 0] < 600) & (scr[:, 1] > 60) & (scr[:, 1] < 560)
    cols = strategy_colors(np.array([0, 1]))
    seen = set()
    for i in np.nonzero(lone)[0]:
        x, y = (int(v) for v in np.floor(scr[i]))
        assert tuple(px[y, x]) == tuple(cols[f.strategy[i]])
        seen.add(int(f.strategy[i]))
    assert seen == {0, 1}
    counts = np.bincount(f.strategy, minlength=2)
    assert viewer.legend == ["strategy", f"{names[0]}: {counts[0]}", f"{names[1]}: {counts[1]}"]


@pytest.mark.viewer
def test_old_replay_without_strategies_opens_and_exports(tmp_path):
    pytest.importorskip("pygame")
    from alife.viewer.export import export

    with open_replay(EXAMPLE) as r:
        assert "strategy" not in r.file["agents"]
        assert r.strategy_names == ("crossover-mutate",)  # from the world file the replay holds
        f = r.frame(len(r) - 1)
        assert (f.strategy == 0).all() and len(f.strategy) == len(f)
        assert export(r, tmp_path / "s.png", frame=300, mode="strategy", size=(320, 240)) == 1


def test_render_rgb_draws_strategies_live():
    sim = alife.Simulation(overrides={"world.width": 16, "world.height": 16, "world.initial_agents": 20,
                                      "world.capacity": 64}, seed=1)
    img = render_rgb(sim, size=160, mode="strategy")
    f = frame_from_sim(sim)
    x, y = np.floor(f.pos[0] * 10).astype(int)
    assert tuple(img[y, x]) == tuple(strategy_colors(f.strategy[:1])[0])
    sim.close()
