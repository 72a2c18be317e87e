"""Host-parasite (``alife.strategies.host_parasite``): roles breed true, parasites never graze,
a parasite's drain never takes a host below the floor (several parasites on one host included),
hosts' defence hurts parasites, and the counts reach summary.json, lineage.h5 and the cycle lag."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import alife
from alife.cli.main import main
from alife.lineage.analysis import role_cycles
from alife.strategies.host_parasite import HOST, PARASITE, ROLE
from tests.conftest import SMALL
from tests.role_watch import RoleWatch

ROOT = Path(__file__).resolve().parents[1]
WORLD = ROOT / "worlds" / "host_parasite.toml"



def test_roles_breed_true_and_parasites_do_not_graze():
    w = RoleWatch(ROLE)
    sim = alife.Simulation(WORLD, seed=1, plugins=[w], overrides=SMALL)
    hp = sim.hooks.get_plugin("host-parasite")
    hosts0, par0 = hp.counts(sim)
    assert par0 == round(hp.params.parasite_share * SMALL["world.initial_agents"])
    assert hosts0 + par0 == SMALL["world.initial_agents"]
    sim.run(150)
    assert w.births > 50 and w.mismatch == 0
    assert w.ate == -1.0


def test_drains_stop_at_the_hosts_floor_and_hosts_defend():
    sim = alife.Simulation(WORLD, seed=2, overrides=SMALL)
    hp = sim.hooks.get_plugin("host-parasite")
    p, ag = hp.params, sim.config.agent
    roles, energy = sim.arrays[ROLE], sim.world.energy
    roles[:6] = torch.tensor([PARASITE, PARASITE, PARASITE, HOST, HOST, HOST], dtype=roles.dtype)
    energy[:6] = torch.tensor([1.0, 1.0, 1.0, 2.0, p.host_floor + 0.05, 3.0])
    # three parasites on host 3 (more than it has above the floor), one on host 4 (almost drained),
    # host 5 on parasite 0 (defence), host 5 on host 3 (the world's predation), parasite on parasite
    attackers = torch.tensor([0, 1, 2, 2, 5, 5, 0])
    targets = torch.tensor([3, 3, 3, 4, 0, 3, 1])
    hp.params.drain = 1.0
    damage, gain = hp.alife_interact(sim, attackers, targets)
    on3 = float(damage[:3].sum())
    assert abs(on3 - (2.0 - p.host_floor)) < 1e-5  # scaled together to what host 3 has above the floor
    torch.testing.assert_close(damage[:3], torch.full((3,), on3 / 3))
    assert abs(float(damage[3]) - 0.05) < 1e-5  # host 4 keeps its floor
    torch.testing.assert_close(gain[:4], damage[:4] * p.gain)
    assert float(damage[4]) == p.defence and float(gain[4]) == 0.0  # defence gains the host nothing
    assert abs(float(damage[5]) - ag.attack_damage) < 1e-6
    assert abs(float(gain[5]) - ag.attack_damage * ag.attack_gain) < 1e-6
    assert float(damage[6]) == 0.0 and float(gain[6]) == 0.0


def test_counts_reach_the_summary_lineage_and_the_cycle_lag(tmp_path: Path):
    out = tmp_path / "run"
    over = {**SMALL, "plugin.host-parasite.record_every": 10}
    assert main(["run", str(WORLD), "--steps", "60", "--seed", "3", "--no-progress", "--out", str(out),
                 "--no-record", "replay", *[f"--set={k}={v}" for k, v in over.items()]]) == 0
    s = json.loads((out / "summary.json").read_text())
    hp = s["plugin_fields"]["host-parasite"]
    assert hp["counts"]["step"] == list(range(0, 60, 10))
    assert hp["final"]["hosts"] + hp["final"]["parasites"] == s["population"]["final"]
    series = alife.lineage.open(out / "lineage.h5").plugin_series
    assert {"host-parasite.hosts", "host-parasite.parasites"} <= set(series.columns)


def test_the_cycle_lag_reads_hosts_and_parasites():
    class Fake:
        t = np.arange(0, 40000, 100)
        plugin_series = pd.DataFrame({"host-parasite.hosts": 100 + 50 * np.sin(2 * np.pi * t / 8000),
                                      "host-parasite.parasites": 30 + 15 * np.sin(2 * np.pi * (t - 2000) / 8000)},
                                     index=t)

    r = role_cycles(Fake())
    assert r is not None and r["series"] == ("host-parasite.hosts", "host-parasite.parasites")
    assert r["lag_steps"] == 2000.0
