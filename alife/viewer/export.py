"""Export a replay without a display: an MP4 or GIF of a range of steps, or one PNG frame.

Frames are drawn by the same :class:`~alife.viewer.app.Viewer` as the window (HUD, legend and
timeline included) onto an off-screen pygame Surface, so this works with
``SDL_VIDEODRIVER=dummy``; imageio with imageio-ffmpeg (a bundled ffmpeg) writes the video.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from alife.errors import UserError
from alife.recording.replay import Replay

FORMATS = (".mp4", ".gif", ".png")


def frame_range(replay: Replay, start: int | None, end: int | None) -> np.ndarray:
    """Indices of the frames whose step lies in ``[start, end]`` (both optional, inclusive)."""
    steps = replay.steps
    lo = -np.inf if start is None else start
    hi = np.inf if end is None else end
    if lo > hi:
        raise UserError(f"--from {start} is after --to {end}")
    idx = np.nonzero((steps >= lo) & (steps <= hi))[0]
    if not len(idx):
        raise UserError(f"no frames between steps {start} and {end}; the replay holds steps "
                        f"{int(steps[0])}..{int(steps[-1])}")
    return idx


def export(replay: Replay, out: str | Path, *, start: int | None = None, end: int | None = None,
           fps: float = 30.0, frame: int | None = None, mode: str = "species",
           size: tuple[int, int] = (960, 720), lineage: str | Path | None = None,
           inspect: int | None = None) -> int:
    """Write ``out`` (``.mp4``, ``.gif`` or ``.png``); returns the number of frames written.

    Args:
        replay: an open replay.
        out: the output file; its suffix picks the format.
        start, end: the first and last step to include (video).
        fps: frames per second of the video.
        frame: the step to draw (PNG; the frame recorded at or before it). Default: the first.
        mode: colour mode.
        size: image size in pixels; MP4 sizes are rounded down to multiples of 16.
        lineage: a ``lineage.h5`` for the inspector.
        inspect: an agent id to select (ringed, with the inspector panel).
    """
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    import pygame

    from alife.viewer.app import ReplaySource, Viewer

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"--export: unknown format {out.suffix!r}; use one of {', '.join(FORMATS)}")
    if fps <= 0:
        raise UserError(f"--fps must be > 0, got {fps}")
    if suffix == ".mp4":
        size = (max(16, size[0] // 16 * 16), max(16, size[1] // 16 * 16))
    viewer = Viewer(ReplaySource(replay), size, mode, lineage=lineage)
    viewer.show_playback = False  # a still or a video has no playback state to show
    viewer.selected = inspect
    viewer.follow = inspect is not None and suffix != ".png"
    surface = pygame.Surface(size)
    out.parent.mkdir(parents=True, exist_ok=True)

    def draw(i: int) -> np.ndarray:
        viewer.seek(int(i))
        surface.fill((0, 0, 0))
        viewer.draw(surface)
        return np.frombuffer(pygame.image.tobytes(surface, "RGB"), np.uint8).reshape(size[1], size[0], 3)

    if suffix == ".png":
        if start is not None or end is not None:
            raise UserError("--from/--to select a range for a video; for a PNG give --frame STEP")
        i = 0 if frame is None else replay.index_of_step(frame)
        if frame is not None and frame < int(replay.steps[0]):
            raise UserError(f"--frame {frame} is before the first recorded step {int(replay.steps[0])}")
        if frame is not None and frame > int(replay.steps[-1]):
            raise UserError(f"--frame {frame} is after the last recorded step {int(replay.steps[-1])}")
        pygame.image.save(pygame.image.frombuffer(draw(i).tobytes(), size, "RGB"), str(out))
        return 1
    if frame is not None:
        raise UserError("--frame selects one still for a .png export; for a video use --from/--to")
    import imageio.v2 as iio

    idx = frame_range(replay, start, end)
    if suffix == ".gif":
        writer = iio.get_writer(out, mode="I", duration=1000.0 / fps, loop=0)
    else:
        writer = iio.get_writer(out, fps=fps, codec="libx264", quality=7, macro_block_size=16,
                                ffmpeg_log_level="error", output_params=["-preset", "veryfast"])
    try:
        for i in idx:
            writer.append_data(draw(i))
    finally:
        writer.close()
    return len(idx)
