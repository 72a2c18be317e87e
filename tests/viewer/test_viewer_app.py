"""The pygame viewer, driven by synthetic events under SDL_VIDEODRIVER=dummy."""

import numpy as np
import pytest

pygame = pytest.importorskip("pygame")

import alife  # noqa: E402
from alife.recording.replay import open_replay  # noqa: E402
from alife.viewer.app import SPEEDS, TIMELINE_H, ReplaySource, Viewer  # noqa: E402
from alife.viewer.render import species_color  # noqa: E402

pytestmark = pytest.mark.viewer


@pytest.fixture
def viewer(recorded_run):
    out, _ = recorded_run
    replay = open_replay(out / "replay.h5")
    v = Viewer(ReplaySource(replay), size=(640, 480 + TIMELINE_H), lineage=out / "lineage.h5")
    yield v
    replay.close()


def click(v, x, y, button=1):
    v.handle_event(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=(int(x), int(y)), button=button))
    v.handle_event(pygame.event.Event(pygame.MOUSEBUTTONUP, pos=(int(x), int(y)), button=button))


def key(v, k, uni=""):
    return v.handle_event(pygame.event.Event(pygame.KEYDOWN, key=k, unicode=uni, mod=0))


def test_window_pixels_show_agents_in_their_species_colour(viewer):
    viewer.seek(len(viewer.source) - 1)
    surf = pygame.Surface(viewer.size)
    viewer.draw(surf)
    f = viewer.frame
    scr = viewer.cam.to_screen(f.pos, viewer.source.world_w, viewer.source.world_h)
    # agents away from others and from the overlays: the window pixel is the species colour
    d = np.hypot(*(scr[:, None, :] - scr[None, :, :]).transpose(2, 0, 1)) + np.eye(len(f)) * 1e9
    ok = (d.min(1) > 30) & (scr[:, 0] > 200) & (scr[:, 0] < 440) & (scr[:, 1] > 60) & (scr[:, 1] < 400)
    assert ok.sum() >= 3
    for i in np.nonzero(ok)[0]:
        px = surf.get_at((int(scr[i, 0]), int(scr[i, 1])))
        assert tuple(px)[:3] == species_color(int(f.species[i]))


def test_click_inspects_an_agent_with_its_lineage(viewer, recorded_run):
    _, state = recorded_run
    viewer.seek(len(viewer.source) - 1)  # step 40: the final state
    f = viewer.frame
    assert f.step == 40
    row = int(np.argmax(state["children"]))  # an agent with children
    aid = int(state["ids"][row])
    x, y = viewer.screen_pos(aid)
    click(viewer, x + 1, y)
    assert viewer.selected == aid
    text = "\n".join(s for s, _ in viewer.inspector_lines(f))
    i = int(np.nonzero(f.ids == aid)[0][0])
    assert f"agent a{aid}" in text and f"species   #{int(state['species'][row])}" in text
    assert f"energy    {float(f.energy[i]):.2f}" in text and f"age       {int(state['age'][row])}" in text
    if viewer.lineage is not None:
        parents = [p for p in state["parents"][row] if p >= 0]
        assert f"children  {int(state['children'][row])}" in text
        assert ("parents   " + ", ".join(f"a{p}" for p in parents)) in text or not parents
    key(viewer, pygame.K_ESCAPE)
    assert viewer.selected is None
    # a click on empty ground selects nobody
    click(viewer, x + 1, y)
    assert viewer.selected == aid
    scr = viewer.cam.to_screen(f.pos, viewer.source.world_w, viewer.source.world_h)
    grid = np.stack(np.meshgrid(np.arange(20, 620, 10), np.arange(20, 460, 10)), -1).reshape(-1, 2)
    far = grid[np.hypot(*(grid[:, None] - scr[None]).transpose(2, 0, 1)).min(1) > 40][0]
    click(viewer, *far)
    assert viewer.selected is None


def test_follow_keeps_the_agent_centred(viewer):
    f = viewer.frame
    aid = int(f.ids[0])
    viewer.select_at(*viewer.screen_pos(aid))
    key(viewer, pygame.K_f)
    assert viewer.follow
    viewer.seek(3)
    surf = pygame.Surface(viewer.size)
    viewer.draw(surf)
    pos = viewer.screen_pos(aid)
    if pos is not None:  # still alive three frames later
        assert abs(pos[0] - viewer.cam.width / 2) < 1 and abs(pos[1] - viewer.cam.height / 2) < 1


def test_playback_keys_speed_colour_zoom_and_help(viewer):
    n = len(viewer.source)
    key(viewer, pygame.K_SPACE)
    assert viewer.play.playing
    viewer.advance(2 / 30)  # two frames at 1x
    assert viewer.play.index == 2
    key(viewer, pygame.K_UP)
    assert viewer.play.speed == SPEEDS[SPEEDS.index(1.0) + 1]
    viewer.advance(100.0)
    assert viewer.play.index == n - 1 and not viewer.play.playing  # stops at the end
    key(viewer, pygame.K_LEFT)
    assert viewer.play.index == n - 2
    key(viewer, pygame.K_HOME)
    assert viewer.play.index == 0
    key(viewer, pygame.K_RIGHT)
    assert viewer.play.index == 1
    key(viewer, pygame.K_c)
    assert viewer.mode == "energy"
    key(viewer, pygame.K_3, "3")
    assert viewer.mode == "activity"
    fit = viewer.cam.zoom
    wx, wy = viewer.cam.to_world(100, 100, viewer.source.world_w, viewer.source.world_h)
    viewer.zoom_at(2.0, 100, 100)
    assert viewer.cam.zoom == pytest.approx(2 * fit)
    assert viewer.cam.to_world(100, 100, viewer.source.world_w, viewer.source.world_h) == pytest.approx((wx, wy))
    viewer.zoom_at(0.01, 100, 100)
    assert viewer.cam.zoom == pytest.approx(fit)  # never smaller than the whole world
    key(viewer, pygame.K_h)
    assert viewer.show_help
    surf = pygame.Surface(viewer.size)
    viewer.draw(surf)  # the help overlay draws
    assert key(viewer, pygame.K_q) is False


def test_timeline_click_scrubs(viewer):
    n = len(viewer.source)
    y = viewer.view_h + TIMELINE_H // 2
    click(viewer, viewer.size[0] - 60, y)
    assert viewer.play.index == n - 1
    click(viewer, 60, y)
    assert viewer.play.index == 0
    click(viewer, viewer.size[0] // 2, y)
    assert abs(viewer.play.index - (n - 1) / 2) <= 1


def test_drag_pans_without_selecting(viewer):
    cx = viewer.cam.cx
    v = viewer
    v.handle_event(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=(300, 200), button=1))
    v.handle_event(pygame.event.Event(pygame.MOUSEMOTION, pos=(340, 200), rel=(40, 0), buttons=(1, 0, 0)))
    v.handle_event(pygame.event.Event(pygame.MOUSEBUTTONUP, pos=(340, 200), button=1))
    assert v.cam.cx == pytest.approx((cx - 40 / v.cam.zoom) % v.source.world_w)
    assert v.selected is None


def test_window_loop_runs_headless(viewer):
    viewer.play.playing = True
    viewer.run(max_frames=3)
    assert viewer.play.index >= 0


def test_live_viewer_follows_a_running_simulation(small_overrides):
    from alife.cli.run import run_loop
    from alife.viewer.live import LiveViewer

    sim = alife.Simulation(overrides=small_overrides, seed=1)
    live = LiveViewer(sim, size=(320, 260), max_fps=1e9)  # draw after every step, whatever the clock
    summary = run_loop(sim, 3, progress=False, on_step=live.update)
    assert summary["steps"] == 3
    assert live.source.frame(0).step == 3 and len(live.source) == 3
    sim2 = alife.Simulation(overrides=small_overrides, seed=1)
    live2 = LiveViewer(sim2, size=(320, 260))
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert run_loop(sim2, 10, progress=False, on_step=live2.update)["steps"] == 1


def test_live_pause_lets_one_step_through_on_right(small_overrides):
    from alife.viewer.live import LiveViewer

    sim = alife.Simulation(overrides=small_overrides, seed=1)
    live = LiveViewer(sim, size=(320, 260))
    for k in (pygame.K_SPACE, pygame.K_RIGHT):  # pause, then ask for one step
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=k, unicode="", mod=0))
    assert live.update() is True and not live.viewer.play.playing
    # still paused: the next update holds until the window is closed, then stops the run
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert live.update() is False
