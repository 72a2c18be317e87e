"""``alife run --watch``: the viewer window on a running simulation.

``LiveViewer(sim).update()`` is called after every step. It draws at most 60 times a second (so
watching costs the simulation little), handles the window's events, and returns False when the
user closes the window or presses Q, which ends the run cleanly (its files are still written).
Space pauses the simulation itself; Right runs one step while paused; Up/Down set a cap on steps
per second.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np
import pygame

from alife.errors import UserError
from alife.recording.replay import Frame, frame_from_sim
from alife.viewer.app import Viewer

#: steps-per-second caps selectable with Up/Down (None: as fast as the simulation goes)
STEP_RATES = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, None)
HISTORY = 4096


def require_display() -> None:
    """Refuse ``--watch`` where no window can open, before the run starts (``alife run`` calls it
    before making the run folder): SDL's ``dummy``/``offscreen`` video drivers draw nowhere, and on
    Linux and the BSDs a window needs ``DISPLAY`` (X11) or ``WAYLAND_DISPLAY``.

    Raises:
        UserError: no display, with what to do instead (the same advice as ``alife replay``).
    """
    driver = os.environ.get("SDL_VIDEODRIVER", "").strip().lower()
    if driver in ("dummy", "offscreen"):
        why = f"SDL video driver {driver!r}"
    elif (sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd"))
          and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")):
        why = "neither DISPLAY nor WAYLAND_DISPLAY is set"
    else:
        return
    raise UserError(f"no display ({why}) for --watch; run without it and watch the replay afterwards "
                    "with `alife replay RUN_DIR --export OUT.mp4` (or --screenshot OUT.png)")


class LiveSource:
    """The simulation's current state as a one-frame source, with a population history."""

    def __init__(self, sim: Any):
        self.sim = sim
        cfg = sim.config
        self.world_w, self.world_h = cfg.world.width, cfg.world.height
        self.resource_max, self.energy_max = float(cfg.resource.max), float(cfg.agent.max_energy)
        self.title = f"{cfg.name} (live)"
        self._frame: Frame | None = None
        self._hist_steps: list[int] = []
        self._hist_pop: list[int] = []

    def __len__(self) -> int:
        return max(1, len(self._hist_steps))

    def refresh(self) -> None:
        self._frame = frame_from_sim(self.sim)
        self._hist_steps.append(self._frame.step)
        self._hist_pop.append(len(self._frame))
        if len(self._hist_steps) > HISTORY:
            del self._hist_steps[: HISTORY // 2], self._hist_pop[: HISTORY // 2]

    @property
    def steps(self) -> np.ndarray:
        return np.asarray(self._hist_steps or [self.sim.step_count], np.int64)

    @property
    def population(self) -> np.ndarray:
        return np.asarray(self._hist_pop or [self.sim.population], np.float64)

    def frame(self, i: int) -> Frame:
        if self._frame is None or self._frame.step != self.sim.step_count:
            self.refresh()
        assert self._frame is not None
        return self._frame


class LiveViewer:
    """The viewer window driven by a running simulation (see the module docstring)."""

    def __init__(self, sim: Any, size: tuple[int, int] = (1100, 760), mode: str = "species",
                 max_fps: float = 60.0):
        self.source = LiveSource(sim)
        self.viewer = Viewer(self.source, size, mode, lineage=None, timeline=True)
        self.viewer.lineage_note = "live run: parents and children show in `alife replay`"
        self.viewer.play.playing = True
        self.screen = self.viewer.open_window()
        self.clock = pygame.time.Clock()
        self.min_dt = 1.0 / max_fps
        self.rate_i = len(STEP_RATES) - 1
        self._last_draw = 0.0
        self._last_step = time.perf_counter()
        self._open = True
        self._single = False

    def _events(self) -> bool:
        v = self.viewer
        for e in pygame.event.get():
            if e.type == pygame.KEYDOWN and e.key in (pygame.K_UP, pygame.K_DOWN):
                step = 1 if e.key == pygame.K_UP else -1
                self.rate_i = int(np.clip(self.rate_i + step, 0, len(STEP_RATES) - 1))
                rate = STEP_RATES[self.rate_i]
                v.message = f"at most {rate:g} steps/s" if rate else "full speed"
                continue
            if e.type == pygame.KEYDOWN and e.key == pygame.K_RIGHT:
                v.play.playing, self._single = False, True
                continue
            if e.type == pygame.KEYDOWN and e.key == pygame.K_SPACE:
                v.play.playing = not v.play.playing
                continue
            if not v.handle_event(e):
                self._open = False
        return self._open

    def _draw(self) -> None:
        self.source.frame(0)  # refresh to the current step before sizing the timeline
        self.viewer.play.index = len(self.source) - 1
        self.screen.fill((0, 0, 0))
        self.viewer.draw(self.screen)
        pygame.display.flip()
        self._last_draw = time.perf_counter()

    def update(self) -> bool:
        """Call after each step; False means stop the run."""
        self._single = False
        if not self._open or not self._events():
            return self._close()
        if time.perf_counter() - self._last_draw >= self.min_dt:
            self._draw()
        while not self.viewer.play.playing and not self._single:  # paused: hold the simulation
            self.clock.tick(30)
            if not self._events():
                return self._close()
            self._draw()
        rate = STEP_RATES[self.rate_i]
        if rate:
            wait = 1.0 / rate - (time.perf_counter() - self._last_step)
            if wait > 0:
                time.sleep(wait)
        self._last_step = time.perf_counter()
        return True

    def _close(self) -> bool:
        if self._open or pygame.display.get_init():
            pygame.display.quit()
        self._open = False
        return False
