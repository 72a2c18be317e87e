"""The interactive viewer: a pygame-ce window over a replay (``alife replay FILE``) or a live run.

:class:`Viewer` holds the view state (frame, camera, colour mode, selection, playback) and draws
into any pygame Surface, so the window, ``--export`` and the tests share one drawing path. Keys
are listed in :data:`alife.viewer.overlay.KEY_HELP` and ``docs/viewer.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pygame

from alife.errors import UserError
from alife.recording.replay import Frame, Replay
from alife.viewer import overlay
from alife.viewer.lineage_info import LineageIndex, load_lineage
from alife.viewer.render import ACTIVITIES, COLOR_MODES, Camera, Renderer, activity_codes

TIMELINE_H = 34
SPEEDS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
BASE_FPS = 30.0  # frames of the replay shown per second at speed 1
MAX_ZOOM = 64.0


class FrameSource(Protocol):
    world_w: int
    world_h: int
    resource_max: float
    energy_max: float
    title: str
    steps: np.ndarray
    population: np.ndarray

    def __len__(self) -> int: ...

    def frame(self, i: int) -> Frame: ...


class ReplaySource:
    """Frames from a replay file, the last few kept in memory."""

    def __init__(self, replay: Replay):
        self.replay = replay
        self.world_w, self.world_h = replay.width, replay.height
        self.resource_max, self.energy_max = replay.resource_max, replay.energy_max
        self.title = str(replay.path)
        self.steps = replay.steps
        self.population = replay.counts.astype(np.float64)
        self._cache: dict[int, Frame] = {}

    def __len__(self) -> int:
        return len(self.replay)

    def frame(self, i: int) -> Frame:
        f = self._cache.get(i)
        if f is None:
            if len(self._cache) > 8:
                self._cache.clear()
            f = self._cache[i] = self.replay.frame(i)
        return f


@dataclass
class Playback:
    index: int = 0
    playing: bool = False
    speed: float = 1.0
    carry: float = 0.0  # fractional frames owed


class Viewer:
    """View state and drawing for one frame source.

    Args:
        source: a :class:`ReplaySource` (or any :class:`FrameSource`).
        size: window size in pixels; the world view is the window less the timeline bar.
        mode: initial colour mode, one of :data:`~alife.viewer.render.COLOR_MODES`.
        lineage: ``lineage.h5`` to read parents and children from (``None``: none).
    """

    def __init__(self, source: FrameSource, size: tuple[int, int] = (1100, 760), mode: str = "species",
                 lineage: str | Path | None = None, timeline: bool = True):
        if mode not in COLOR_MODES:
            raise UserError(f"--color: expected one of {', '.join(COLOR_MODES)}, got {mode!r}")
        self.source, self.mode = source, mode
        self.size = (int(size[0]), int(size[1]))
        self.timeline = timeline
        self.view_h = self.size[1] - (TIMELINE_H if timeline else 0)
        self.renderer = Renderer(source.world_w, source.world_h, source.resource_max, source.energy_max)
        self.cam = self._fit()
        self.play = Playback()
        self.selected: int | None = None
        self.follow = False
        self.show_help = False
        #: the HUD's speed and play/pause item; off in exports, which have no playback
        self.show_playback = True
        #: the legend's lines as last drawn
        self.legend: list[str] = []
        self.message = ""
        self.lineage: LineageIndex | None = None
        self.lineage_note = ""
        if lineage is not None:
            self.lineage, self.lineage_note = load_lineage(lineage)
        self.text = overlay.Text()
        self._drag: tuple[int, int, float, float] | None = None
        self._dragged = False
        self._scrubbing = False

    # ------------------------------------------------------------------ state
    def _fit(self) -> Camera:
        return Camera.fit(self.source.world_w, self.source.world_h, self.size[0], self.view_h)

    @property
    def frame(self) -> Frame:
        return self.source.frame(self.play.index)

    def seek(self, index: int) -> None:
        self.play.index = int(np.clip(index, 0, len(self.source) - 1))
        self.play.carry = 0.0

    def seek_step(self, step: int) -> None:
        self.seek(max(0, int(np.searchsorted(self.source.steps, step, side="right")) - 1))

    def advance(self, dt: float) -> None:
        """Move the playhead by ``dt`` seconds of playback; stops at the last frame."""
        if not self.play.playing:
            return
        self.play.carry += dt * BASE_FPS * self.play.speed
        k = int(self.play.carry)
        if k:
            self.play.carry -= k
            self.play.index = min(self.play.index + k, len(self.source) - 1)
            if self.play.index == len(self.source) - 1:
                self.play.playing = False

    def set_speed(self, faster: bool) -> None:
        i = int(np.searchsorted(SPEEDS, self.play.speed))
        self.play.speed = SPEEDS[min(i + 1, len(SPEEDS) - 1) if faster else max(i - 1, 0)]

    def zoom_at(self, factor: float, sx: float, sy: float) -> None:
        w, h = self.source.world_w, self.source.world_h
        fit = self._fit().zoom
        zoom = float(np.clip(self.cam.zoom * factor, fit, MAX_ZOOM))
        wx = self.cam.cx + (sx - self.cam.width / 2) / self.cam.zoom
        wy = self.cam.cy + (sy - self.cam.height / 2) / self.cam.zoom
        self.cam.zoom = zoom
        self.cam.cx = (wx - (sx - self.cam.width / 2) / zoom) % w
        self.cam.cy = (wy - (sy - self.cam.height / 2) / zoom) % h

    def pan(self, dx_px: float, dy_px: float) -> None:
        self.cam.cx = (self.cam.cx - dx_px / self.cam.zoom) % self.source.world_w
        self.cam.cy = (self.cam.cy - dy_px / self.cam.zoom) % self.source.world_h

    def screen_pos(self, agent_id: int) -> tuple[float, float] | None:
        """Where agent ``agent_id`` is drawn in the current frame (``None``: not in it)."""
        f = self.frame
        hit = np.nonzero(f.ids == agent_id)[0]
        if not len(hit):
            return None
        s = self.cam.to_screen(f.pos[hit], self.source.world_w, self.source.world_h)[0]
        return float(s[0]), float(s[1])

    def select_at(self, sx: float, sy: float, radius: float = 12.0) -> int | None:
        """Select the agent drawn nearest to ``(sx, sy)`` within ``radius`` pixels."""
        f = self.frame
        self.selected = None
        if len(f):
            s = self.cam.to_screen(f.pos, self.source.world_w, self.source.world_h)
            d = np.hypot(s[:, 0] - sx, s[:, 1] - sy)
            i = int(np.argmin(d))
            if d[i] <= max(radius, self.renderer.agent_radius(self.cam) + 3):
                self.selected = int(f.ids[i])
        self.follow = self.follow and self.selected is not None
        return self.selected

    # ------------------------------------------------------------------ input
    def handle_event(self, e: Any) -> bool:
        """Apply one pygame event; returns False when the user asks to quit."""
        if e.type == pygame.QUIT:
            return False
        if e.type == pygame.KEYDOWN:
            return self._key(e)
        if e.type == pygame.MOUSEWHEEL:
            x, y = pygame.mouse.get_pos()
            self.zoom_at(1.25 ** e.y, x, y)
        elif e.type == pygame.MOUSEBUTTONDOWN and e.button in (1, 2, 3):
            if self.timeline and e.pos[1] >= self.view_h:
                self._scrubbing = True
                self._scrub(e.pos[0])
            else:
                self._drag, self._dragged = (e.pos[0], e.pos[1], self.cam.cx, self.cam.cy), False
        elif e.type == pygame.MOUSEMOTION:
            if self._scrubbing:
                self._scrub(e.pos[0])
            elif self._drag is not None:
                x0, y0, cx, cy = self._drag
                if abs(e.pos[0] - x0) + abs(e.pos[1] - y0) > 4:
                    self._dragged = True
                    self.cam.cx, self.cam.cy = cx, cy
                    self.pan(e.pos[0] - x0, e.pos[1] - y0)
                    self.follow = False
        elif e.type == pygame.MOUSEBUTTONUP:
            if self._drag is not None and not self._dragged and e.button == 1:
                self.select_at(*e.pos)
            self._drag, self._scrubbing = None, False
        return True

    def _scrub(self, x: int) -> None:
        inner = overlay.timeline_inner(pygame.Rect(0, self.view_h, self.size[0], TIMELINE_H))
        self.seek(round((x - inner.x) / max(inner.w - 1, 1) * (len(self.source) - 1)))

    def _key(self, e: Any) -> bool:
        k, n = e.key, len(self.source)
        ch = getattr(e, "unicode", "")
        if k in (pygame.K_q,):
            return False
        if k == pygame.K_SPACE:
            self.play.playing = not self.play.playing
            if self.play.playing and self.play.index == n - 1:
                self.seek(0)
        elif k in (pygame.K_RIGHT, pygame.K_LEFT):
            self.play.playing = False
            self.seek(self.play.index + (1 if k == pygame.K_RIGHT else -1))
        elif k in (pygame.K_PAGEUP, pygame.K_PAGEDOWN):
            self.seek(self.play.index + (1 if k == pygame.K_PAGEDOWN else -1) * max(1, n // 10))
        elif k in (pygame.K_HOME, pygame.K_END):
            self.seek(0 if k == pygame.K_HOME else n - 1)
        elif k in (pygame.K_UP, pygame.K_RIGHTBRACKET) or ch == "]":
            self.set_speed(True)
        elif k in (pygame.K_DOWN, pygame.K_LEFTBRACKET) or ch == "[":
            self.set_speed(False)
        elif ch in ("+", "=") or k in (pygame.K_EQUALS, pygame.K_PLUS, pygame.K_KP_PLUS):
            self.zoom_at(1.25, self.cam.width / 2, self.cam.height / 2)
        elif ch == "-" or k in (pygame.K_MINUS, pygame.K_KP_MINUS):
            self.zoom_at(0.8, self.cam.width / 2, self.cam.height / 2)
        elif k in (pygame.K_w, pygame.K_a, pygame.K_s, pygame.K_d):
            step = 60.0
            dx = {pygame.K_a: step, pygame.K_d: -step}.get(k, 0.0)
            dy = {pygame.K_w: step, pygame.K_s: -step}.get(k, 0.0)
            self.pan(dx, dy)
            self.follow = False
        elif k == pygame.K_f:
            self.follow = self.selected is not None and not self.follow
        elif k == pygame.K_c:
            self.mode = COLOR_MODES[(COLOR_MODES.index(self.mode) + 1) % len(COLOR_MODES)]
        elif ch in ("1", "2", "3", "4"):
            self.mode = COLOR_MODES[int(ch) - 1]
        elif ch == "0":
            self.cam, self.follow = self._fit(), False
        elif k == pygame.K_h or ch == "?":
            self.show_help = not self.show_help
        elif k == pygame.K_ESCAPE:
            if self.show_help:
                self.show_help = False
            else:
                self.selected, self.follow = None, False
        elif k == pygame.K_p:
            self.message = f"saved {self.save_screenshot()}"
        return True

    # ------------------------------------------------------------------ drawing
    def draw(self, target: pygame.Surface) -> None:
        f = self.frame
        if self.follow and self.selected is not None:
            hit = np.nonzero(f.ids == self.selected)[0]
            if len(hit):
                self.cam.cx, self.cam.cy = float(f.pos[hit[0], 0]), float(f.pos[hit[0], 1])
        buf = self.renderer.draw_packed(f, self.cam, self.mode, self.selected)
        img = pygame.image.frombuffer(buf, (buf.shape[1], buf.shape[0]), "RGBX")
        pad = self.renderer.PAD
        target.set_clip(pygame.Rect(0, 0, self.size[0], self.view_h))
        target.blit(img, (-pad, -pad))
        target.set_clip(None)
        self.draw_overlays(target, f)

    def hud_items(self, f: Frame) -> list[str]:
        n = len(self.source)
        species = len(np.unique(f.species)) if len(f) else 0
        items = [f"step {f.step}", f"frame {self.play.index + 1}/{n}", f"population {len(f)}",
                 f"species {species}"]
        if self.show_playback:
            items.append(f"{self.play.speed:g}x {'playing' if self.play.playing else 'paused'}")
        items.append(f"colour: {self.mode}")
        if self.follow:
            items.append("following")
        return items

    def draw_overlays(self, target: pygame.Surface, f: Frame) -> None:
        t = self.text
        items = self.hud_items(f) + ["H: keys"]
        overlay.draw_hud(target, t, items)
        self.legend = overlay.draw_legend(target, t, self.mode, f, self.source.energy_max)
        if self.selected is not None:
            overlay.draw_inspector(target, t, self.inspector_lines(f), self.view_h)
        elif self.message or self.lineage_note:
            msg = self.message or self.lineage_note
            overlay.lines_box(target, t, [(msg, overlay.DIM)], 8, self.view_h - 8, anchor_bottom=True)
        if self.timeline:
            bar = pygame.Rect(0, self.view_h, self.size[0], TIMELINE_H)
            overlay.draw_timeline(target, t, bar, self.play.index, len(self.source),
                                  self.source.steps, self.source.population)
        if self.show_help:
            overlay.draw_help(target, t)

    def inspector_lines(self, f: Frame) -> list[tuple[str, tuple[int, int, int]]]:
        aid = self.selected
        lines = [(f"agent a{aid}" + ("  (following)" if self.follow else ""), overlay.ACCENT)]
        hit = np.nonzero(f.ids == aid)[0]
        if len(hit):
            i = int(hit[0])
            act = f.action[i]
            code = int(f.strategy[i])
            name = f.strategy_names[code] if code < len(f.strategy_names) else f"strategy {code}"
            lines += [(f"species   #{int(f.species[i])}", overlay.TEXT),
                      (f"strategy  {name}", overlay.TEXT),
                      (f"energy    {float(f.energy[i]):.2f}", overlay.TEXT),
                      (f"age       {int(f.age[i])}", overlay.TEXT),
                      (f"position  ({float(f.pos[i, 0]):.1f}, {float(f.pos[i, 1]):.1f})", overlay.TEXT),
                      (f"doing     {ACTIVITIES[int(activity_codes(act[None])[0])]}", overlay.TEXT),
                      ("action    " + " ".join(f"{v:+.2f}" for v in act), overlay.DIM)]
        else:
            lines.append((f"not alive at step {f.step}", overlay.DIM))
        if self.lineage is not None and aid is not None:
            info = self.lineage.info(aid)
            if info:
                parents = ", ".join(f"a{p}" for p in info["parents"]) or "none (founder)"
                lines += [(f"parents   {parents}", overlay.TEXT),
                          (f"children  {info['children']}", overlay.TEXT),
                          (f"born      step {info['born']}", overlay.DIM)]
                if info["died"] is not None:
                    lines.append((f"died      step {info['died']}", overlay.DIM))
            else:
                lines.append(("not in lineage.h5", overlay.DIM))
        else:
            lines.append((self.lineage_note or "no lineage file", overlay.DIM))
        return lines

    def save_screenshot(self, path: str | Path | None = None) -> Path:
        p = Path(path) if path else Path(f"alife-step{self.frame.step}.png")
        surf = pygame.Surface(self.size)
        self.draw(surf)
        pygame.image.save(surf, str(p))
        return p

    # ------------------------------------------------------------------ window
    def open_window(self) -> pygame.Surface:
        try:
            pygame.display.init()
            screen = pygame.display.set_mode(self.size)
        except pygame.error as e:
            raise UserError(f"cannot open a window ({e}); use --export to write a video instead") from None
        pygame.display.set_caption(f"alife: {self.source.title}")
        return screen

    def run(self, max_frames: int | None = None) -> None:
        """The window loop, at most 60 frames a second, until the user quits (or ``max_frames``)."""
        screen = self.open_window()
        driver = pygame.display.get_driver()
        if max_frames is None and driver in ("dummy", "offscreen"):
            pygame.display.quit()
            raise UserError(f"no display (SDL video driver {driver!r}); "
                            "use --export OUT.mp4 or --screenshot OUT.png")
        clock = pygame.time.Clock()
        drawn = 0
        try:
            while max_frames is None or drawn < max_frames:
                if not all(self.handle_event(e) for e in pygame.event.get()):
                    break
                self.advance(clock.get_time() / 1000.0)
                screen.fill((0, 0, 0))
                self.draw(screen)
                pygame.display.flip()
                clock.tick(60)
                drawn += 1
        finally:
            pygame.display.quit()
