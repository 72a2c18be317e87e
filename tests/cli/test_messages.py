"""Messages a new user meets: `--watch` without a display, `--help-world` as a world file,
`alife plugins` with a run's options."""

import tomllib
from pathlib import Path

from alife import config
from alife.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_watch_without_display_refuses_before_making_a_run_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    out = tmp_path / "run"
    rc = main(["run", "--watch", "--steps", "5", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("alife: error: no display") and "--export" in err
    assert err.count("\n") == 1  # one line, no traceback
    assert not out.exists()


def test_watch_without_display_variables_refuses(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.chdir(tmp_path)
    rc = main(["run", "--watch", "--steps", "5", "--no-progress"])
    assert rc == 2
    assert "no display (neither DISPLAY nor WAYLAND_DISPLAY is set)" in capsys.readouterr().err
    assert not (tmp_path / "replays").exists()


def test_help_world_is_a_world_file_that_loads_as_the_default(tmp_path, capsys):
    assert main(["run", "--help-world"]) == 0
    text = capsys.readouterr().out
    data = tomllib.loads(text)  # valid TOML
    assert data["world"]["width"] == config.WorldConfig().world.width  # keys without section prefix
    assert "task" not in data  # optional tables are shown commented out: the default is ecology mode
    path = tmp_path / "mine.toml"
    path.write_text(text)
    assert config.load(path).to_dict() == config.WorldConfig().to_dict() == config.load().to_dict()
    # the commented-out [task] table is valid once uncommented
    lines = text.splitlines()
    start = lines.index("# [task]")
    task = "\n".join(line.removeprefix("# ") for line in lines[start:])
    assert tomllib.loads(task)["task"]["generations"] == config.TaskSection().generations


def test_plugins_accepts_the_run_options(tmp_path, capsys):
    d = tmp_path / "plugs"
    d.mkdir()
    (d / "cauchy_mutation.py").write_text((EXAMPLES / "cauchy_mutation.py").read_text())
    world = tmp_path / "w.toml"
    world.write_text('name = "w"\n[strategies]\nmutation = "gaussian"\n')
    rc = main(["plugins", str(world), "--plugins-dir", str(d), "--set", "strategies.mutation=cauchy"])
    assert rc == 0
    assert "mutation=cauchy" in capsys.readouterr().out.splitlines()[-1]
    assert main(["plugins", str(world), "--plugins-dir", str(d)]) == 0
    assert "mutation=gaussian" in capsys.readouterr().out.splitlines()[-1]
