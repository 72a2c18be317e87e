"""``alife replay FILE``: watch a replay in a window, or export it as MP4, GIF or a PNG frame."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

from alife.errors import UserError

#: alife.viewer.render.COLOR_MODES, spelt out so that `alife` starts without importing the viewer
COLOR_MODES = ("species", "energy", "activity", "strategy")


def _size(s: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)[xX](\d+)", s)
    if not m or int(m[1]) < 64 or int(m[2]) < 64:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT of at least 64x64, e.g. 960x720; got {s!r}")
    return int(m[1]), int(m[2])


def register(sub: Any) -> None:
    p = sub.add_parser(
        "replay", help="watch a replay (pygame window) or export it as a video or image",
        description="Open replay.h5 (or a run folder) in the viewer; with --export, write an MP4, GIF "
                    "or PNG instead (no display needed). Press H in the window for the keys.")
    p.add_argument("file", help="replay.h5, or a run folder that holds one")
    p.add_argument("--export", metavar="OUT", default=None, help="write OUT (.mp4, .gif or .png) and exit")
    p.add_argument("--from", dest="start", type=int, default=None, metavar="STEP", help="first step of the export")
    p.add_argument("--to", dest="end", type=int, default=None, metavar="STEP", help="last step of the export")
    p.add_argument("--fps", type=float, default=30.0, help="video frames per second (default 30)")
    p.add_argument("--frame", type=int, default=None, metavar="STEP",
                   help="the step to draw for a .png export, or to open the window at")
    p.add_argument("--color", choices=COLOR_MODES, default="species",
                   help="colour agents by species, energy, activity (last action) or strategy "
                        "(the variation strategy of their lineage)")
    p.add_argument("--size", type=_size, default=None, metavar="WxH",
                   help="window or image size (default 1100x760 window, 960x720 export)")
    p.add_argument("--inspect", type=int, default=None, metavar="ID", help="select agent ID at start")
    p.add_argument("--screenshot", default=None, metavar="PNG",
                   help="draw the window once (with --frame/--inspect applied), save it as PNG and exit")
    p.set_defaults(func=replay_command)


def replay_command(args: argparse.Namespace) -> int:
    from alife.recording.replay import open_replay

    if args.export and args.screenshot:
        raise UserError("use either --export or --screenshot")
    path = Path(args.file)
    with open_replay(path) as replay:
        lineage = replay.path.parent / "lineage.h5"
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        try:
            import pygame  # noqa: F401
        except ImportError:
            raise UserError("the viewer needs pygame-ce: pip install 'alife[viewer]'") from None
        if args.export:
            from alife.viewer.export import export

            n = export(replay, args.export, start=args.start, end=args.end, fps=args.fps,
                       frame=args.frame, mode=args.color, size=args.size or (960, 720),
                       lineage=lineage, inspect=args.inspect)
            print(f"wrote {args.export} ({n} frame{'s' if n != 1 else ''})")
            return 0
        from alife.viewer.app import ReplaySource, Viewer

        if args.start is not None or args.end is not None:
            raise UserError("--from/--to select the range of an --export")
        viewer = Viewer(ReplaySource(replay), args.size or (1100, 760), args.color, lineage=lineage)
        if args.frame is not None:
            viewer.seek_step(args.frame)
        viewer.selected = args.inspect
        if args.screenshot:
            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
            print(f"wrote {viewer.save_screenshot(args.screenshot)}")
            return 0
        viewer.play.playing = True
        viewer.run()
    return 0
