"""What exports show: the world drawn once (not its wrapped copies in the margins), and no
playback state in the HUD of a still or a video."""

import numpy as np
import pytest

from alife.recording.replay import Frame, open_replay
from alife.viewer.render import BACKGROUND, RESOURCE_LUT, Camera, Renderer, render_frame


def frame(pos, w, h, resource=1.0):
    pos = np.asarray(pos, np.float32).reshape(-1, 2)
    n = len(pos)
    return Frame(0, np.arange(n, dtype=np.int64), pos, np.zeros(n, np.float32), np.ones(n, np.float32),
                 np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros((n, 5), np.float32),
                 np.full((h, w), resource, np.float32))


def test_a_square_world_in_a_wide_image_is_drawn_once():
    # a 20 x 20 world fitted into 200 x 100: 5 px per cell, the world spans x 50..150
    f = frame([(0.2, 10.0), (19.8, 10.0)], 20, 20)
    img = render_frame(f, 20, 20, size=(200, 100))
    grass = tuple(RESOURCE_LUT[255])
    assert (img[:, :44] == BACKGROUND).all() and (img[:, 156:] == BACKGROUND).all()
    assert tuple(img[20, 60]) == grass and tuple(img[20, 140]) == grass
    # the agents at the world's two edges are drawn at those edges, each once
    agent = np.any(img != grass, axis=2) & np.any(img != BACKGROUND, axis=2)
    xs = np.nonzero(agent.any(axis=0))[0]
    assert xs.min() >= 44 and xs.max() < 156
    assert agent[:, 45:60].any() and agent[:, 140:156].any()


def test_a_zoomed_in_view_still_wraps_across_the_seam():
    f = frame([(0.5, 10.0), (19.5, 10.0)], 20, 20)
    cam = Camera(0.0, 10.0, 20.0, 200, 100)  # 10 cells wide around the seam x = 0
    img = Renderer(20, 20).draw(f, cam)
    assert not (img[:30] == BACKGROUND).all(axis=2).any()  # no margin: the view is inside the world
    assert tuple(img[50, 110]) != tuple(RESOURCE_LUT[255]) and tuple(img[50, 90]) != tuple(RESOURCE_LUT[255])


@pytest.mark.viewer
def test_exports_show_the_world_once_and_no_playback_state(recorded_run, tmp_path, monkeypatch):
    pytest.importorskip("pygame")
    from alife.viewer import overlay
    from alife.viewer.export import export

    hud: list[list[str]] = []
    draw_hud = overlay.draw_hud
    monkeypatch.setattr(overlay, "draw_hud", lambda t, text, items: (hud.append(list(items)),
                                                                     draw_hud(t, text, items)))
    out, _ = recorded_run
    png = tmp_path / "still.png"
    with open_replay(out) as r:
        export(r, png, frame=20, size=(960, 720))
        export(r, tmp_path / "clip.gif", start=0, end=6, size=(320, 240))
    assert len(hud) == 1 + 4
    for items in hud:
        assert items[0].startswith("step ")
        assert not any("paused" in s or "playing" in s or s.endswith("x") for s in items), items
    import imageio.v2 as iio

    img = iio.imread(png)[..., :3]
    # a 40 x 30 world in a 960 x 686 view: 22.87 px per cell, the world spans x 23..937
    view = img[250:620]  # below the legend, above the timeline
    assert (view[:, :12] == BACKGROUND).all() and (view[:, -12:] == BACKGROUND).all()
    assert not (view[:, 40:920] == BACKGROUND).all(axis=2).all(axis=0).any()
