"""What a plugin adds to a run's records: series in ``lineage.h5`` (``alife_series``), fields in
``summary.json`` (``alife_summary``) and columns of the progress bar; bad answers are refused
naming the plugin and the hook."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import alife
from alife.cli.main import main
from alife.plugins import hookimpl
from alife.plugins.manager import PluginError
from alife.recording.lineage import LineageRecorder
from alife.simulation import Simulation
from tests.conftest import SMALL

COUNTER = '''
from alife.plugins import hookimpl

class Counter:
    """Counts its own calls (state of its own) and reports the population as a series."""

    def __init__(self):
        self.steps = 0

    @hookimpl
    def alife_step_start(self, sim, step):  # before any step_end hook: the recorder's sees it
        self.steps += 1

    @hookimpl
    def alife_series(self, sim, step):
        return {"population": sim.population, "steps_seen": self.steps}

    @hookimpl
    def alife_summary(self, sim):
        return {"steps_seen": self.steps, "note": "counted"}

ALIFE_PLUGINS = [Counter]
'''


def test_series_and_summary_fields_reach_the_run_folder(tmp_path: Path, capsys) -> None:
    d = tmp_path / "plugs"
    d.mkdir()
    (d / "counter.py").write_text(COUNTER)
    out = tmp_path / "run"
    args = ["run", "--steps", "60", "--seed", "2", "--no-progress", "--plugins-dir", str(d), "--out", str(out),
            "--lineage-series-every", "10", "--no-record", "replay", *[f"--set={k}={v}" for k, v in SMALL.items()]]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    name = next(iter(summary["plugin_fields"]))
    assert summary["plugin_fields"][name] == {"steps_seen": 60, "note": "counted"}
    lin = alife.lineage.open(out / "lineage.h5")
    ps = lin.plugin_series
    assert ps.columns.tolist() == [f"{name}.population", f"{name}.steps_seen"]
    # sampled with the observables, at the same steps, and the same population figure
    assert ps.index.tolist() == lin.series.index.tolist() == list(range(0, 60, 10))
    np.testing.assert_array_equal(ps[f"{name}.population"].to_numpy(), lin.series["population"].to_numpy())
    np.testing.assert_array_equal(ps[f"{name}.steps_seen"].to_numpy(), np.arange(0, 60, 10) + 1)


@pytest.mark.parametrize("answer, problem", [
    ({"bad name!": 1.0}, "series name 'bad name!'"),
    ({"x" * 80: 1.0}, "at most 64 bytes"),
    ({"ok": "high"}, "expected a real number"),
    ([1.0], "expected a dict"),
])
def test_a_bad_series_is_refused_naming_plugin_and_hook(tmp_path: Path, answer, problem) -> None:
    class Bad:
        @hookimpl
        def alife_series(self, sim, step):
            return answer

    rec = LineageRecorder(tmp_path / "lineage.h5", series_every=5)
    with pytest.raises(PluginError, match=rf"plugin 'Bad'.*alife_series.*{problem}"):
        Simulation(None, seed=1, overrides=SMALL, plugins=[Bad(), rec]).run(6)


def test_a_summary_that_is_not_json_is_refused() -> None:
    class NotJson:
        @hookimpl
        def alife_summary(self, sim):
            return {"when": object()}

    sim = Simulation(None, seed=1, overrides=SMALL, plugins=[NotJson()])
    with pytest.raises(PluginError, match=r"plugin 'NotJson': hook alife_summary must return a JSON-serialisable dict"):
        sim.hooks.summary(sim)


def test_learned_metrics_go_into_the_lineage_file(tmp_path: Path) -> None:
    """The heredity metrics of learned mutation, recorded as plugin series."""
    rec = LineageRecorder(tmp_path / "lineage.h5", series_every=10)
    over = {**SMALL, "plugin.learned-metrics.every": 20}
    with Simulation(Path(__file__).resolve().parents[2] / "worlds" / "learned_mutation.toml", seed=3,
                    overrides=over, plugins=[rec]) as sim:
        sim.run(60)
        metrics = sim.hooks.get_plugin("learned-metrics")
        rows = list(metrics.rows)
    ps = alife.lineage.open(tmp_path / "lineage.h5").plugin_series
    assert "learned-metrics.fidelity_mean" in ps.columns and "learned-metrics.drift_mean" in ps.columns
    # before the first row (step 19) nothing is recorded; after it, the row's values
    assert ps.index.min() == 20
    assert ps.loc[20, "learned-metrics.fidelity_mean"] == pytest.approx(rows[0]["fidelity_mean"])
    assert ps.loc[50, "learned-metrics.drift_mean"] == pytest.approx(rows[1]["drift_mean"])
