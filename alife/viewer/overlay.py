"""The viewer's overlays drawn with pygame: HUD, legend, inspector, timeline, key help."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pygame

from alife.recording.replay import Frame
from alife.viewer.render import (
    ACTIVITIES,
    ACTIVITY_COLORS,
    ENERGY_LUT,
    species_colors,
    strategy_colors,
)

PANEL = (12, 14, 18, 200)
TEXT = (230, 232, 236)
DIM = (150, 155, 165)
ACCENT = (255, 210, 90)

KEY_HELP: tuple[tuple[str, str], ...] = (
    ("Space", "play / pause"),
    ("Right / Left", "step one frame (pauses)"),
    ("PgUp / PgDn, Home / End", "jump 10% / to first or last frame"),
    ("Up / Down  or  ] / [", "faster / slower"),
    ("wheel, + / -", "zoom at the cursor"),
    ("drag, W A S D", "pan"),
    ("click an agent", "inspect it (Esc clears)"),
    ("F", "follow the inspected agent"),
    ("C  or  1 2 3 4", "colour: species, energy, activity, strategy"),
    ("0", "fit the whole world"),
    ("click / drag the timeline", "scrub"),
    ("P", "save a screenshot PNG"),
    ("H  or  ?", "this help"),
    ("Q", "quit"),
)


class Text:
    """Renders text with a cache of surfaces (HUD strings repeat from frame to frame)."""

    def __init__(self, size: int = 15):
        pygame.font.init()
        self.font = pygame.font.Font(None, size + 4)
        self.height = self.font.get_linesize()
        self._cache: dict[tuple[str, tuple[int, ...]], pygame.Surface] = {}

    def render(self, s: str, color: Sequence[int] = TEXT) -> pygame.Surface:
        key = (s, tuple(color))
        surf = self._cache.get(key)
        if surf is None:
            if len(self._cache) > 600:
                self._cache.clear()
            surf = self._cache[key] = self.font.render(s, True, color)
        return surf

    def width(self, s: str) -> int:
        return self.render(s).get_width()


def panel(target: pygame.Surface, rect: pygame.Rect) -> None:
    box = pygame.Surface(rect.size, pygame.SRCALPHA)
    box.fill(PANEL)
    target.blit(box, rect.topleft)


def lines_box(target: pygame.Surface, text: Text, lines: Sequence[tuple[str, Sequence[int]]],
              x: int, y: int, anchor_right: bool = False, anchor_bottom: bool = False) -> pygame.Rect:
    """A panel of text lines; ``(x, y)`` is its top-left (or right/bottom edge when anchored)."""
    w = max((text.width(s) for s, _ in lines), default=0) + 16
    h = len(lines) * text.height + 10
    rect = pygame.Rect(x - w if anchor_right else x, y - h if anchor_bottom else y, w, h)
    panel(target, rect)
    for i, (s, col) in enumerate(lines):
        target.blit(text.render(s, col), (rect.x + 8, rect.y + 5 + i * text.height))
    return rect


def draw_hud(target: pygame.Surface, text: Text, items: Sequence[str]) -> None:
    lines_box(target, text, [("   ".join(items), TEXT)], 8, 8)


def draw_legend(target: pygame.Surface, text: Text, mode: str, frame: Frame,
                energy_max: float, max_rows: int = 8) -> list[str]:
    """Top-right legend for the colour mode; for species, the largest ones in this frame; for
    strategy, every strategy with its head count. Returns the legend's lines."""
    x, y = target.get_width() - 8, 8
    if mode == "species":
        ids, counts = np.unique(frame.species, return_counts=True)
        order = np.argsort(-counts, kind="stable")[:max_rows]
        lines = [(f"species ({len(ids)})", ACCENT)]
        lines += [(f"      #{int(ids[i])}: {int(counts[i])}", TEXT) for i in order]
        if len(ids) > max_rows:
            lines.append((f"      ... {len(ids) - max_rows} more", DIM))
        rect = lines_box(target, text, lines, x, y, anchor_right=True)
        cols = species_colors(ids[order])
        for j, c in enumerate(cols):
            _swatch(target, rect.x + 10, rect.y + 5 + (j + 1) * text.height, text.height, c)
    elif mode == "strategy":
        names = list(frame.strategy_names)
        counts = np.bincount(np.clip(frame.strategy, 0, None), minlength=len(names))
        names += [f"strategy {k}" for k in range(len(names), len(counts))]  # codes past the names
        shown = np.arange(len(names))[:max_rows]
        lines = [("strategy", ACCENT)] + [(f"      {names[k]}: {int(counts[k])}", TEXT) for k in shown]
        if len(names) > max_rows:
            lines.append((f"      ... {len(names) - max_rows} more", DIM))
        rect = lines_box(target, text, lines, x, y, anchor_right=True)
        for j, c in enumerate(strategy_colors(shown)):
            _swatch(target, rect.x + 10, rect.y + 5 + (j + 1) * text.height, text.height, c)
    elif mode == "energy":
        lines = [("energy", ACCENT), ("", TEXT), (f"0{' ' * 22}{energy_max:g}", TEXT)]
        rect = lines_box(target, text, lines, x, y, anchor_right=True)
        bar = pygame.Rect(rect.x + 8, rect.y + 5 + text.height + 3, rect.w - 16, text.height - 6)
        grad = ENERGY_LUT[np.linspace(0, 255, bar.w).astype(np.int64)]
        strip = np.repeat(grad[:, None, :], bar.h, axis=1)
        target.blit(pygame.surfarray.make_surface(strip), bar.topleft)
    else:
        lines = [("activity (last action)", ACCENT)] + [(f"      {s}", TEXT) for s in ACTIVITIES]
        rect = lines_box(target, text, lines, x, y, anchor_right=True)
        for j, c in enumerate(ACTIVITY_COLORS):
            _swatch(target, rect.x + 10, rect.y + 5 + (j + 1) * text.height, text.height, c)
    return [s.strip() for s, _ in lines]


def _swatch(target: pygame.Surface, x: int, y: int, h: int, color: Any) -> None:
    pygame.draw.rect(target, tuple(int(v) for v in color), (x, y + 3, h - 5, h - 6))


def draw_inspector(target: pygame.Surface, text: Text, lines: Sequence[tuple[str, Sequence[int]]],
                   bottom: int) -> None:
    lines_box(target, text, lines, 8, bottom - 8, anchor_bottom=True)


def draw_timeline(target: pygame.Surface, text: Text, rect: pygame.Rect, index: int, n: int,
                  steps: np.ndarray, population: np.ndarray | None = None) -> None:
    """The scrub bar: population over time as a sparkline, a playhead, the first and last step."""
    pygame.draw.rect(target, (20, 22, 28), rect)
    inner = rect.inflate(-120, -10)
    pygame.draw.rect(target, (40, 44, 54), inner)
    if population is not None and n > 1 and population.max() > 0:
        xs = inner.x + np.arange(n) * (inner.w - 1) / (n - 1)
        ys = inner.bottom - 1 - population / population.max() * (inner.h - 2)
        pts = np.stack([xs, ys], 1)
        if len(pts) > 2 * inner.w:  # one point per pixel column is enough
            pts = pts[np.linspace(0, n - 1, 2 * inner.w).astype(np.int64)]
        pygame.draw.lines(target, (120, 200, 140), False, pts.tolist(), 1)
    x = inner.x + (index / max(n - 1, 1)) * (inner.w - 1)
    pygame.draw.line(target, ACCENT, (x, rect.y + 2), (x, rect.bottom - 2), 2)
    target.blit(text.render(f"{int(steps[0])}", DIM), (rect.x + 8, rect.y + 10))
    last = text.render(f"{int(steps[-1])}", DIM)
    target.blit(last, (rect.right - 8 - last.get_width(), rect.y + 10))


def timeline_inner(rect: pygame.Rect) -> pygame.Rect:
    return rect.inflate(-120, -10)


def draw_help(target: pygame.Surface, text: Text) -> None:
    lines = [("keys", ACCENT)] + [(f"{k:<28}{v}", TEXT) for k, v in KEY_HELP]
    w = max(text.width(k) for k, _ in KEY_HELP) + 24
    h = len(lines) * text.height + 10
    rect = pygame.Rect(0, 0, w + max(text.width(v) for _, v in KEY_HELP) + 16, h)
    rect.center = target.get_rect().center
    panel(target, rect)
    for i, (s, col) in enumerate(lines):
        if i == 0:
            target.blit(text.render(s, col), (rect.x + 8, rect.y + 5))
            continue
        k, v = KEY_HELP[i - 1]
        target.blit(text.render(k, ACCENT), (rect.x + 8, rect.y + 5 + i * text.height))
        target.blit(text.render(v, col), (rect.x + w, rect.y + 5 + i * text.height))
