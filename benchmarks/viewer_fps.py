"""Frames per second of the viewer drawing 10,000 agents (target: 60), with the dummy video driver.

Draws the full window path (resource field, agent triangles, HUD, legend, inspector, timeline and
the blit to the display surface) for a synthetic frame of N agents on a W x W world, in each
colour mode, at the fitted zoom and zoomed in. Reports wall-clock fps and CPU-time fps (the latter
is what the drawing costs when the machine is shared), and the machine it ran on.

    SDL_VIDEODRIVER=dummy python benchmarks/viewer_fps.py [--agents 10000] [--world 128] [--frames 200]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame  # noqa: E402

from alife.recording.replay import Frame  # noqa: E402
from alife.viewer.app import Viewer  # noqa: E402


class SyntheticSource:
    """Frames of ``n`` agents wandering over a ``w x w`` world, generated up front."""

    def __init__(self, n: int, w: int, frames: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.world_w = self.world_h = w
        self.resource_max, self.energy_max, self.title = 1.0, 6.0, "synthetic"
        self.steps = np.arange(frames, dtype=np.int64)
        self.population = np.full(frames, n, np.float64)
        pos = rng.random((n, 2), np.float32) * w
        heading = rng.random(n, np.float32) * np.float32(2 * np.pi)
        self._frames = []
        for t in range(frames):
            heading = heading + rng.normal(0, 0.2, n).astype(np.float32)
            pos = np.mod(pos + 0.3 * np.stack([np.cos(heading), np.sin(heading)], 1), w).astype(np.float32)
            res = (0.5 + 0.5 * np.sin(np.arange(w)[None, :] / 7.0 + t / 20.0) * np.cos(np.arange(w)[:, None] / 9.0))
            self._frames.append(Frame(t, np.arange(n, dtype=np.int64), pos, heading,
                                      rng.random(n, np.float32) * 6, np.zeros(n, np.int64),
                                      rng.integers(0, 40, n), rng.uniform(-1, 1, (n, 5)).astype(np.float32),
                                      res.astype(np.float32)))

    def __len__(self) -> int:
        return len(self._frames)

    def frame(self, i: int) -> Frame:
        return self._frames[i]


def measure(viewer: Viewer, screen: pygame.Surface, frames: int) -> tuple[float, float]:
    viewer.seek(0)
    viewer.draw(screen)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(frames):
        pygame.event.pump()
        viewer.seek(i % len(viewer.source))
        viewer.draw(screen)
        pygame.display.flip()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return frames / wall, frames / cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=10_000)
    ap.add_argument("--world", type=int, default=128)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--size", default="1100x760")
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    src = SyntheticSource(args.agents, args.world, 50)
    viewer = Viewer(src, size)
    pygame.display.init()
    screen = pygame.display.set_mode(size)
    viewer.selected = 17
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{platform.system()} {platform.release()}, python {platform.python_version()}, "
          f"numpy {np.__version__}, pygame-ce {pygame.version.ver}, SDL driver {pygame.display.get_driver()}")
    print(f"load average at start: {load[0]:.1f} (CPU-time fps is the better figure on a shared machine)")
    print(f"{args.agents} agents, {args.world}x{args.world} world, window {size[0]}x{size[1]}, {args.frames} frames each")
    print(f"{'view':<16}{'colour':<10}{'wall fps':>10}{'cpu fps':>10}")
    for label, zoom in (("whole world", None), ("zoomed in x3", 3.0)):
        viewer.cam = viewer._fit()
        if zoom:
            viewer.zoom_at(zoom, size[0] / 2, viewer.view_h / 2)
        for mode in ("species", "energy", "strategy"):
            viewer.mode = mode
            wall, cpu = measure(viewer, screen, args.frames)
            print(f"{label:<16}{mode:<10}{wall:>10.1f}{cpu:>10.1f}")
    pygame.display.quit()


if __name__ == "__main__":
    main()
