"""Export without a display, and `alife replay` on good and bad input."""

import h5py
import numpy as np
import pytest

pytest.importorskip("pygame")
iio = pytest.importorskip("imageio.v2")

from alife.cli.main import main  # noqa: E402
from alife.errors import UserError  # noqa: E402
from alife.recording.replay import open_replay  # noqa: E402
from alife.viewer.export import export  # noqa: E402
from alife.viewer.render import species_color  # noqa: E402

pytestmark = pytest.mark.viewer


def test_mp4_export_has_the_expected_frames(recorded_run, tmp_path, capsys):
    out, _ = recorded_run
    mp4 = tmp_path / "run.mp4"
    assert main(["replay", str(out / "replay.h5"), "--export", str(mp4), "--from", "10", "--to", "30",
                 "--fps", "12", "--size", "330x250"]) == 0
    assert "11 frames" in capsys.readouterr().out  # steps 10, 12, ..., 30
    reader = iio.get_reader(mp4)
    assert reader.count_frames() == 11
    meta = reader.get_meta_data()
    assert meta["fps"] == 12 and meta["size"] == (320, 240)  # rounded to the codec's 16-pixel blocks
    frames = [reader.get_data(i) for i in (0, 10)]
    assert frames[0].shape == (240, 320, 3) and not np.array_equal(frames[0], frames[1])


def test_gif_and_png_exports(recorded_run, tmp_path):
    out, _ = recorded_run
    with open_replay(out) as r:
        assert export(r, tmp_path / "a.gif", end=8, fps=10, size=(200, 160)) == 5
        assert len(iio.mimread(tmp_path / "a.gif")) == 5
        assert export(r, tmp_path / "f.png", frame=21, size=(400, 300)) == 1
        png = iio.imread(tmp_path / "f.png")
        assert png.shape[:2] == (300, 400)
        # the still is frame step 20 (the one at or before 21): an isolated agent shows its colour
        f = r.frame(r.index_of_step(21))
        assert f.step == 20
        cam_h = 300 - 34  # the timeline bar takes the bottom
        zoom = min(400 / r.width, cam_h / r.height)
        sx = 200 + (f.pos[:, 0] - r.width / 2) * zoom
        sy = cam_h / 2 + (f.pos[:, 1] - r.height / 2) * zoom
        d = np.hypot(sx[:, None] - sx[None], sy[:, None] - sy[None]) + np.eye(len(f)) * 1e9
        ok = np.nonzero((d.min(1) > 20) & (sx > 150) & (sx < 260) & (sy > 60) & (sy < 200))[0]
        assert len(ok)
        for i in ok:
            assert tuple(png[int(sy[i]), int(sx[i]), :3]) == species_color(int(f.species[i]))


def test_export_rejects_bad_requests(recorded_run, tmp_path):
    out, _ = recorded_run
    with open_replay(out) as r:
        with pytest.raises(UserError, match="unknown format"):
            export(r, tmp_path / "x.avi")
        with pytest.raises(UserError, match="after --to"):
            export(r, tmp_path / "x.mp4", start=30, end=10)
        with pytest.raises(UserError, match="no frames between"):
            export(r, tmp_path / "x.mp4", start=1000, end=2000)
        with pytest.raises(UserError, match="after the last"):
            export(r, tmp_path / "x.png", frame=99999)
        with pytest.raises(UserError, match="--frame"):
            export(r, tmp_path / "x.mp4", frame=3)


def test_replay_command_on_bad_files_prints_one_line(recorded_run, tmp_path, capsys):
    out, _ = recorded_run
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 50)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["data"] = np.arange(4)
    cut = tmp_path / "cut.h5"
    data = (out / "replay.h5").read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    for path in (tmp_path / "missing.h5", junk, foreign, cut, tmp_path):
        assert main(["replay", str(path), "--export", str(tmp_path / "o.png")]) == 2, path
        err = capsys.readouterr().err
        assert err.startswith("alife: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert main(["replay", str(out), "--export", str(tmp_path / "o.webm")]) == 2
    assert "unknown format" in capsys.readouterr().err


def test_window_without_a_display_is_a_clear_error(recorded_run, capsys):
    out, _ = recorded_run
    assert main(["replay", str(out)]) == 2  # SDL_VIDEODRIVER=dummy in the test session
    assert "no display" in capsys.readouterr().err


def test_screenshot_with_an_inspected_agent(recorded_run, tmp_path, capsys):
    out, state = recorded_run
    png = tmp_path / "shot.png"
    aid = int(state["ids"][0])
    assert main(["replay", str(out), "--frame", "40", "--inspect", str(aid), "--screenshot", str(png),
                 "--size", "640x480"]) == 0
    img = iio.imread(png)
    assert img.shape[:2] == (480, 640)
    assert (img[..., :3] == 255).all(-1).sum() > 10  # the white ring around the inspected agent
