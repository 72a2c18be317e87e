"""Draw a frame of the world into a numpy RGB image, vectorised (no Python loop over agents).

The resource field is drawn as brightness (a 256-entry colour table indexed by the quantised
value), agents as small triangles pointing along their heading, stamped from pre-computed masks
(one per heading bin and size) with a single fancy-indexed write for all agents. The image is
``[height, width, 3] uint8``, rows top to bottom; world ``y`` grows downwards on screen.

This module needs only numpy: ``env.render()`` and video export use it without a window; the
pygame viewer blits its output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from alife.recording.replay import Frame, frame_from_sim

COLOR_MODES = ("species", "energy", "activity", "strategy")
#: behaviour read from the last action, by precedence; the ``activity`` colour mode
ACTIVITIES = ("hunting", "courting", "grazing", "roaming")
ACTIVITY_COLORS = np.array([[235, 60, 50], [240, 110, 210], [250, 225, 70], [120, 190, 255]], np.uint8)
#: one colour per variation strategy (``Frame.strategy`` indexes ``Frame.strategy_names``); the
#: ``strategy`` colour mode. Past these, strategies take the species palette's colours.
STRATEGY_COLORS = np.array([[255, 170, 40], [80, 200, 255], [250, 90, 160], [240, 240, 245],
                            [190, 140, 255], [255, 240, 120], [60, 230, 190], [255, 120, 90]], np.uint8)
HEADING_BINS = 32
BACKGROUND = np.array([8, 10, 12], np.uint8)


def _lerp_lut(stops: list[tuple[float, tuple[int, int, int]]]) -> np.ndarray:
    x = np.linspace(0.0, 1.0, 256)
    pos = [p for p, _ in stops]
    return np.stack([np.interp(x, pos, [c[i] for _, c in stops]) for i in range(3)], 1).round().astype(np.uint8)


#: resource value (0..max, in 256 steps) -> colour; brightness rises monotonically with the value
RESOURCE_LUT = _lerp_lut([(0.0, (14, 12, 10)), (0.5, (34, 62, 30)), (1.0, (70, 128, 52))])
#: energy (0..energy_max, in 256 steps) -> colour: red when starving, yellow, then cyan-white
ENERGY_LUT = _lerp_lut([(0.0, (200, 30, 30)), (0.35, (245, 200, 40)), (1.0, (170, 245, 255))])


def species_colors(species: np.ndarray) -> np.ndarray:
    """A bright, stable colour per species id (golden-ratio hues, alternating saturation)."""
    s = np.asarray(species, dtype=np.int64)
    h = np.mod(s * 0.618033988749895 + 0.08, 1.0)
    sat = np.where(s % 2 == 0, 0.85, 0.55)
    v = np.where(s % 3 == 2, 0.9, 1.0)
    # vectorised HSV -> RGB
    i = np.floor(h * 6.0).astype(np.int64) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p, q, t = v * (1 - sat), v * (1 - f * sat), v * (1 - (1 - f) * sat)
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return (np.stack([r, g, b], -1) * 255).round().astype(np.uint8)


def species_color(k: int) -> tuple[int, int, int]:
    c = species_colors(np.array([k]))[0]
    return int(c[0]), int(c[1]), int(c[2])


def activity_codes(action: np.ndarray) -> np.ndarray:
    """Index into :data:`ACTIVITIES` from last actions ``[N, 5]`` (turn, speed, eat, attack, mate)."""
    a = np.asarray(action)
    code = np.full(len(a), 3, np.int64)
    if len(a):
        code[a[:, 2] > 0] = 2
        code[a[:, 4] > 0] = 1
        code[a[:, 3] > 0] = 0
    return code


def strategy_colors(codes: np.ndarray) -> np.ndarray:
    """``[N, 3] uint8``: the colour of each strategy index (see :data:`STRATEGY_COLORS`)."""
    c = np.clip(np.asarray(codes, np.int64), 0, None)
    n = len(STRATEGY_COLORS)
    extra = species_colors(np.maximum(c - n, 0) + 7)
    return np.where((c < n)[:, None], STRATEGY_COLORS[np.minimum(c, n - 1)], extra)


_PALETTE = species_colors(np.arange(1024))


def agent_colors(frame: Frame, mode: str, energy_max: float) -> np.ndarray:
    """``[N, 3] uint8`` colours of the frame's agents in colour mode ``mode``."""
    global _PALETTE
    if mode == "species":
        sp = frame.species
        top = int(sp.max()) if len(sp) else 0
        if top >= len(_PALETTE):
            if top > 1 << 16:  # ids far past any run's (a doctored file): colour only the ids present
                u, inv = np.unique(np.clip(sp, 0, None), return_inverse=True)
                return species_colors(u)[inv.reshape(-1)]
            _PALETTE = species_colors(np.arange(2 * top + 1))
        return _PALETTE[np.clip(sp, 0, None)]
    if mode == "energy":
        e = np.clip(frame.energy / max(energy_max, 1e-9), 0.0, 1.0)
        return ENERGY_LUT[(e * 255).astype(np.int64)]
    if mode == "activity":
        return ACTIVITY_COLORS[activity_codes(frame.action)]
    if mode == "strategy":
        return strategy_colors(frame.strategy)
    raise ValueError(f"unknown colour mode {mode!r}; expected one of {COLOR_MODES}")


@lru_cache(maxsize=32)
def triangle_stamps(radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel offsets of an arrow-head triangle for each heading bin: ``dx, dy`` ``[B, M]`` and a
    validity mask ``[B, M]``. The centre pixel is always part of the stamp."""
    r = float(radius)
    R = int(math.ceil(r))
    gy, gx = np.mgrid[-R:R + 1, -R:R + 1]
    gx, gy = gx.ravel().astype(np.float64), gy.ravel().astype(np.float64)
    masks = []
    for b in range(HEADING_BINS):
        h = b * 2 * math.pi / HEADING_BINS
        verts = [(r * math.cos(h + a), r * math.sin(h + a)) for a in (0.0, 2.45, -2.45)]
        inside = np.ones(gx.shape, bool)
        for (x0, y0), (x1, y1) in zip(verts, verts[1:] + verts[:1], strict=True):
            # the triangle is wound the same way for every bin: keep one side of each edge
            inside &= (x1 - x0) * (gy - y0) - (y1 - y0) * (gx - x0) >= -0.35 * r
        inside[(gx == 0) & (gy == 0)] = True
        masks.append(inside)
    m = max(int(k.sum()) for k in masks)
    dx = np.zeros((HEADING_BINS, m), np.int64)
    dy = np.zeros((HEADING_BINS, m), np.int64)
    ok = np.zeros((HEADING_BINS, m), bool)
    for b, inside in enumerate(masks):
        n = int(inside.sum())
        dx[b, :n], dy[b, :n], ok[b, :n] = gx[inside], gy[inside], True
    return dx, dy, ok


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """``[..., 3] uint8`` colours as packed ``uint32`` pixels (bytes R, G, B, 0 in memory)."""
    rgb = np.asarray(rgb, np.uint8)
    rgbx = np.zeros((*rgb.shape[:-1], 4), np.uint8)
    rgbx[..., :3] = rgb
    return rgbx.view(np.uint32)[..., 0]


RESOURCE_LUT32 = pack_rgb(RESOURCE_LUT)
BACKGROUND32 = pack_rgb(BACKGROUND)


@lru_cache(maxsize=64)
def flat_stamps(radius: float, row_pixels: int, rim: float = 0.0) -> np.ndarray:
    """:func:`triangle_stamps` as flat offsets into a buffer ``row_pixels`` wide, ``[B, M]``; the
    unused tail of each row repeats its first pixel, so every agent writes ``M`` pixels. With
    ``rim > 0``: only the pixels of the triangle grown by ``rim`` that the triangle leaves out."""
    r = round(radius * 4) / 4
    dx, dy, ok = triangle_stamps(r)
    off = np.where(ok, dy * row_pixels + dx, 0)
    if not rim:
        return off
    gx, gy, gok = triangle_stamps(round((r + rim) * 4) / 4)
    big = np.where(gok, gy * row_pixels + gx, off[:, :1])
    inner = (big[:, :, None] == off[:, None, :]).any(2)
    m = max(1, int((~inner).sum(1).max()))
    out = np.empty((len(big), m), np.int64)
    for b in range(len(big)):
        ring = big[b][~inner[b]]
        out[b] = np.concatenate([ring, np.full(m - len(ring), ring[0] if len(ring) else 0)])
    return out


@dataclass
class Camera:
    """Which part of the torus the image shows: world point ``(cx, cy)`` at the image centre,
    ``zoom`` pixels per resource cell, an image of ``width x height`` pixels."""

    cx: float
    cy: float
    zoom: float
    width: int
    height: int

    @classmethod
    def fit(cls, world_w: int, world_h: int, width: int, height: int) -> Camera:
        zoom = min(width / world_w, height / world_h)
        return cls(world_w / 2, world_h / 2, zoom, width, height)

    def to_screen(self, pos: np.ndarray, world_w: int, world_h: int) -> np.ndarray:
        """Screen coordinates ``[N, 2]`` (float pixels) of world points, nearest torus image."""
        d = np.asarray(pos, np.float64) - (self.cx, self.cy)
        size = np.array([world_w, world_h], np.float64)
        d = np.mod(d + size / 2, size) - size / 2
        return d * self.zoom + (self.width / 2, self.height / 2)

    def to_world(self, sx: float, sy: float, world_w: int, world_h: int) -> tuple[float, float]:
        x = self.cx + (sx - self.width / 2) / self.zoom
        y = self.cy + (sy - self.height / 2) / self.zoom
        return x % world_w, y % world_h


class Renderer:
    """Draws frames of one world. Keeps the per-camera index tables between frames.

    Pixels are packed ``uint32`` (bytes R, G, B, X) in a buffer with a margin of ``PAD`` pixels on
    every side, so agent stamps near the edge need no bounds checks; pygame blits the buffer at
    ``(-PAD, -PAD)`` straight from memory (format ``RGBX``)."""

    PAD = 24

    def __init__(self, world_w: int, world_h: int, resource_max: float = 1.0, energy_max: float = 1.0):
        self.world_w, self.world_h = int(world_w), int(world_h)
        self.resource_max, self.energy_max = float(resource_max), float(energy_max)
        self._key: tuple[float, ...] | None = None
        self._rows = self._cols = np.zeros(0, np.int64)
        self.buffer = np.zeros((0, 0), np.uint32)

    def _indices(self, cam: Camera) -> tuple[np.ndarray, np.ndarray]:
        key = (cam.cx, cam.cy, cam.zoom, cam.width, cam.height)
        if key != self._key:
            self._key, p = key, self.PAD
            # the torus is drawn once: the world within half its size of the camera centre, the
            # same image of each point that agents are drawn at (Camera.to_screen); beyond it, on
            # a view wider or taller than the world, the background (index W or H below)
            xs = (np.arange(-p, cam.width + p) + 0.5 - cam.width / 2) / cam.zoom
            ys = (np.arange(-p, cam.height + p) + 0.5 - cam.height / 2) / cam.zoom
            cols = np.floor(cam.cx + xs).astype(np.int64) % self.world_w
            rows = np.floor(cam.cy + ys).astype(np.int64) % self.world_h
            cols[(xs < -self.world_w / 2) | (xs >= self.world_w / 2)] = self.world_w
            rows[(ys < -self.world_h / 2) | (ys >= self.world_h / 2)] = self.world_h
            self._cols, self._rows = cols, rows
            self.buffer = np.zeros((len(ys), len(xs)), np.uint32)
        return self._rows, self._cols

    def agent_radius(self, cam: Camera) -> float:
        return float(np.clip(cam.zoom * 0.55, 1.0, 9.0))

    def draw_packed(self, frame: Frame, cam: Camera, mode: str = "species",
                    highlight: int | None = None) -> np.ndarray:
        """Draw into :attr:`buffer` (``[H + 2 PAD, W + 2 PAD]`` packed RGBX) and return it."""
        rows, cols = self._indices(cam)
        buf, p = self.buffer, self.PAD
        q = np.clip(frame.resource * (255.0 / self.resource_max), 0, 255).astype(np.uint8)
        field = np.full((self.world_h + 1, self.world_w + 1), BACKGROUND32, np.uint32)
        field[:-1, :-1] = RESOURCE_LUT32[q]  # the last row and column: outside the world
        # columns first on the small field, then whole-row copies into the big buffer
        np.take(np.take(field, cols, axis=1), rows, axis=0, out=buf)
        if len(frame) == 0:
            return buf
        bw = buf.shape[1]
        scr = cam.to_screen(frame.pos, self.world_w, self.world_h)
        ix, iy = np.floor(scr[:, 0]).astype(np.int64), np.floor(scr[:, 1]).astype(np.int64)
        r = self.agent_radius(cam)
        m = int(math.ceil(r + 1.2)) + 1
        vis = (ix >= -m) & (ix < cam.width + m) & (iy >= -m) & (iy < cam.height + m)
        sel = np.nonzero(vis)[0]
        base = (iy[sel] + p) * bw + (ix[sel] + p)
        bins = np.rint(np.mod(frame.heading[sel], 2 * np.pi) * (HEADING_BINS / (2 * np.pi))).astype(np.int64) % HEADING_BINS
        flat = buf.reshape(-1)
        if r >= 2.5:  # a dark rim keeps bright agents readable on bright grass
            flat[base[:, None] + flat_stamps(r, bw, 1.2)[bins]] = BACKGROUND32
        colors = pack_rgb(agent_colors(_subset(frame, sel), mode, self.energy_max))
        flat[base[:, None] + flat_stamps(r, bw)[bins]] = colors[:, None]
        if highlight is not None:
            hit = np.nonzero(frame.ids[sel] == highlight)[0]
            if len(hit):
                j = sel[hit[0]]
                self._ring(flat, bw, int(ix[j]) + p, int(iy[j]) + p, min(r + 4, p - 2))
        return buf

    def draw(self, frame: Frame, cam: Camera, mode: str = "species",
             highlight: int | None = None) -> np.ndarray:
        """Draw ``frame`` as seen by ``cam``; returns a new ``[cam.height, cam.width, 3] uint8``.

        ``highlight``: an agent id to ring in white (the inspected agent)."""
        buf, p = self.draw_packed(frame, cam, mode, highlight), self.PAD
        rgbx = buf.view(np.uint8).reshape(buf.shape[0], buf.shape[1], 4)
        return np.ascontiguousarray(rgbx[p:p + cam.height, p:p + cam.width, :3])

    @staticmethod
    def _ring(flat: np.ndarray, bw: int, x: int, y: int, r: float) -> None:
        t = np.linspace(0, 2 * np.pi, max(24, int(r * 8)), endpoint=False)
        for rr, col in ((r, (255, 255, 255)), (r + 1, (0, 0, 0))):
            px = np.rint(x + rr * np.cos(t)).astype(np.int64)
            py = np.rint(y + rr * np.sin(t)).astype(np.int64)
            flat[py * bw + px] = pack_rgb(np.array([col], np.uint8))[0]


def _subset(frame: Frame, sel: np.ndarray) -> Frame:
    return Frame(frame.step, frame.ids[sel], frame.pos[sel], frame.heading[sel], frame.energy[sel],
                 frame.age[sel], frame.species[sel], frame.action[sel], frame.resource,
                 frame.strategy[sel], frame.strategy_names)


def _size_for(world_w: int, world_h: int, size: int | tuple[int, int] | None) -> tuple[int, int]:
    if size is None:
        zoom = max(1, 512 // max(world_w, world_h))
        return world_w * zoom, world_h * zoom
    if isinstance(size, int):
        s = size / max(world_w, world_h)
        return max(1, round(world_w * s)), max(1, round(world_h * s))
    return int(size[0]), int(size[1])


def render_frame(frame: Frame, world_w: int, world_h: int, size: int | tuple[int, int] | None = None,
                 mode: str = "species", resource_max: float = 1.0, energy_max: float = 1.0) -> np.ndarray:
    """The whole world of ``frame`` fitted into an image; ``size`` is the longest side in pixels
    or ``(width, height)``. Returns ``[H, W, 3] uint8``."""
    w, h = _size_for(world_w, world_h, size)
    return Renderer(world_w, world_h, resource_max, energy_max).draw(
        frame, Camera.fit(world_w, world_h, w, h), mode)


def render_rgb(sim: Any, size: int | tuple[int, int] | None = None, mode: str = "species") -> np.ndarray:
    """The live simulation's current state as an RGB array ``[H, W, 3] uint8`` (``env.render()``)."""
    cfg = sim.config
    return render_frame(frame_from_sim(sim), cfg.world.width, cfg.world.height, size, mode,
                        float(cfg.resource.max), float(cfg.agent.max_energy))
