"""Pixel tests of the numpy renderer: known states drawn where and how they should be."""

import numpy as np
import pytest

import alife
from alife.recording.replay import Frame, frame_from_sim
from alife.viewer.render import (
    ACTIVITY_COLORS,
    ENERGY_LUT,
    RESOURCE_LUT,
    Camera,
    Renderer,
    render_frame,
    render_rgb,
    species_color,
    species_colors,
)


def make_frame(pos, species=None, heading=None, energy=None, action=None, resource=None, w=20, h=10):
    pos = np.asarray(pos, np.float32).reshape(-1, 2)
    n = len(pos)
    return Frame(
        0, np.arange(n, dtype=np.int64) + 100, pos,
        np.zeros(n, np.float32) if heading is None else np.asarray(heading, np.float32),
        np.full(n, 1.0, np.float32) if energy is None else np.asarray(energy, np.float32),
        np.zeros(n, np.int64), np.zeros(n, np.int64) if species is None else np.asarray(species, np.int64),
        np.zeros((n, 5), np.float32) if action is None else np.asarray(action, np.float32),
        np.zeros((h, w), np.float32) if resource is None else np.asarray(resource, np.float32))


def test_species_palette_is_distinct():
    c = species_colors(np.arange(12)).astype(int)
    d = np.abs(c[:, None] - c[None]).sum(-1) + np.eye(12, dtype=int) * 999
    assert d.min() > 30


def test_agent_of_species_k_is_drawn_in_k_colour_where_its_position_says():
    pos = [(2.5, 2.5), (15.2, 7.7), (10.0, 4.0), (18.9, 1.1)]
    species = [0, 3, 7, 11]
    img = render_frame(make_frame(pos, species), 20, 10, size=(200, 100))
    assert img.shape == (100, 200, 3) and img.dtype == np.uint8
    for (x, y), k in zip(pos, species, strict=True):
        px, py = int(x * 10), int(y * 10)
        assert tuple(img[py, px]) == species_color(k), (k, x, y)
    # far from every agent: the empty resource field
    assert tuple(img[95, 100]) == tuple(RESOURCE_LUT[0])
    assert tuple(img[50, 50]) == tuple(RESOURCE_LUT[0])


def test_agents_on_a_zoomed_and_panned_camera_and_across_the_torus_seam():
    f = make_frame([(0.5, 5.0), (19.5, 5.0)], [1, 2])
    cam = Camera(cx=0.0, cy=5.0, zoom=20.0, width=200, height=100)  # the seam at the centre
    img = Renderer(20, 10).draw(f, cam)
    assert tuple(img[50, 100 + 10]) == species_color(1)
    assert tuple(img[50, 100 - 10]) == species_color(2)
    assert tuple(img[50, 100 + 30]) == tuple(img[50, 100 - 30]) == tuple(RESOURCE_LUT[0])
    x, y = cam.to_world(110.5, 50.5, 20, 10)
    assert x == pytest.approx(0.525) and y == pytest.approx(5.025)


def test_triangle_points_along_heading():
    f = make_frame([(5.0, 5.0), (15.0, 5.0)], [4, 4], heading=[0.0, np.pi])
    img = render_frame(f, 20, 10, size=(200, 100))  # zoom 10
    col = species_color(4)
    assert tuple(img[50, 50 + 4]) == col and tuple(img[50, 150 - 4]) == col  # the tips
    assert tuple(img[50, 50 - 6]) != col and tuple(img[50, 150 + 6]) != col


def test_resource_brightness_follows_its_values():
    w, h = 16, 4
    res = np.tile(np.linspace(0.0, 2.0, w, dtype=np.float32), (h, 1))  # resource_max = 2
    img = render_frame(make_frame(np.zeros((0, 2)), resource=res, w=w, h=h), w, h,
                       size=(160, 40), resource_max=2.0)
    row = img[20, 5::10].astype(int)  # the centre of each cell
    brightness = row.sum(1)
    assert np.all(np.diff(brightness) > 0)
    for j, v in enumerate(res[0]):
        assert tuple(row[j]) == tuple(RESOURCE_LUT[int(v / 2.0 * 255)])
    assert tuple(row[0]) == tuple(RESOURCE_LUT[0]) and tuple(row[-1]) == tuple(RESOURCE_LUT[255])


def test_energy_and_activity_colour_modes():
    f = make_frame([(3.0, 3.0), (9.0, 3.0), (15.0, 3.0)], [0, 0, 0], energy=[0.0, 3.0, 6.0],
                   action=[[0, 0, 0, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]])
    img = render_frame(f, 20, 10, size=(200, 100), mode="energy", energy_max=6.0)
    assert tuple(img[30, 30]) == tuple(ENERGY_LUT[0])
    assert tuple(img[30, 90]) == tuple(ENERGY_LUT[127])
    assert tuple(img[30, 150]) == tuple(ENERGY_LUT[255])
    img = render_frame(f, 20, 10, size=(200, 100), mode="activity")
    assert [tuple(img[30, x]) for x in (30, 90, 150)] == [tuple(ACTIVITY_COLORS[i]) for i in (0, 2, 3)]
    with pytest.raises(ValueError, match="colour mode"):
        render_frame(f, 20, 10, mode="rainbow")


def test_highlight_rings_the_inspected_agent():
    f = make_frame([(10.0, 5.0)], [2])
    r = Renderer(20, 10)
    cam = Camera.fit(20, 10, 200, 100)
    plain, ringed = r.draw(f, cam), r.draw(f, cam, highlight=100)
    changed = np.any(plain != ringed, axis=2)
    assert changed.sum() > 20
    ys, xs = np.nonzero(changed)
    assert abs(xs.mean() - 100) < 2 and abs(ys.mean() - 50) < 2
    assert (ringed[changed] == 255).all(1).sum() > 10


def test_render_rgb_draws_the_live_simulation(small_overrides):
    sim = alife.Simulation(overrides=small_overrides, seed=2)
    sim.run(3)
    img = render_rgb(sim)
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8
    f = frame_from_sim(sim)
    np.testing.assert_array_equal(img, render_frame(f, 32, 32, 512, energy_max=sim.config.agent.max_energy))
    x, y = f.pos[0] * 16
    assert tuple(img[int(y), int(x)]) in {tuple(c) for c in species_colors(f.species)}
    assert render_rgb(sim, size=(64, 32)).shape == (32, 64, 3)


def test_huge_species_ids_colour_without_a_table_by_id():
    from types import SimpleNamespace

    from alife.viewer.render import agent_colors, species_colors

    sp = np.array([10**12, 3, 10**12], dtype=np.int64)
    got = agent_colors(SimpleNamespace(species=sp), "species", 1.0)  # a table sized by id would need TiB
    assert got.shape == (3, 3)
    np.testing.assert_array_equal(got, species_colors(sp))
