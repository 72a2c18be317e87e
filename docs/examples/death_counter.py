"""Count deaths by cause and print the tally when the run ends."""

import weakref
from collections import Counter

import numpy as np

from alife.events import CAUSES
from alife.plugins import hookimpl

# one tally per simulation: a module is shared by every simulation in the process
tallies: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@hookimpl
def alife_sim_start(sim):
    tallies[sim] = Counter()


@hookimpl
def alife_agents_died(sim, deaths):
    # one call per step with every death of the step: count them in one go, not one by one
    counts = np.bincount(deaths.causes, minlength=len(CAUSES))
    for cause, n in zip(CAUSES, counts, strict=True):
        if n:
            tallies[sim][cause] += int(n)


@hookimpl
def alife_sim_end(sim):
    tally = ", ".join(f"{cause} {n}" for cause, n in tallies[sim].most_common())
    print(f"deaths by cause after {sim.step_count} steps: {tally or 'none'}")
