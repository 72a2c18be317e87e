"""Hook specifications: everything a plugin can implement.

Hooks fire once per phase with whole-population arrays, never once per agent (a pluggy call costs
microseconds; per agent at 10,000 agents that would be tens of milliseconds a step).

Two kinds:

* **Decision hooks** (``firstresult=True``) answer a question for one *role*. Exactly one strategy
  plays each role in a run, chosen by name in the world file's ``[strategies]`` table; the engine
  calls only that strategy's implementation (plus any ``wrapper=True`` implementations, which may
  adjust the decision: elitism, repair, timing). They stop at the first non-``None`` result.
* **Event hooks** are broadcast to every plugin; their return value is ignored unless stated.

Arrays are torch tensors on the simulation's device unless stated. ``slots`` index the
simulation's fixed-capacity state arrays (``sim.world``); ``ids`` are the stable 64-bit agent ids.
Randomness: use ``sim.generator`` (a seeded ``torch.Generator``), never global RNGs, so that a seed
reproduces a run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import numpy as np
    import torch

    from alife.config import WorldConfig
    from alife.events import Births, Deaths, Fitness
    from alife.genome import GenomeTensor
    from alife.simulation import Simulation

hookspec = pluggy.HookspecMarker("alife")

#: the modes of the strategy host: the persistent world, a generational run on a gymnasium task
MODES = ("world", "task")

#: hooks that fire in some modes only (every other hook fires in both); a plugin implementing one
#: in a mode that never fires it is refused at start, naming plugin, hook and mode
HOOK_MODES: dict[str, tuple[str, ...]] = {
    "alife_interact": ("world",),
    "alife_resource_regrowth": ("world",),
    "alife_observations": ("world",),
    "alife_observe": ("world",),
}

#: roles each mode plays (a task run has no attacks, so no ``interaction``)
ROLE_MODES: dict[str, tuple[str, ...]] = {"interaction": ("world",)}

#: ``firstresult`` hooks that are not roles: any plugin may answer, the first answer wins
ANSWER_HOOKS = frozenset({"alife_behaviour"})

#: role name -> the decision hook that plays it
ROLE_HOOKS: dict[str, str] = {
    "selection": "alife_select_parents",
    "reproduction": "alife_reproduce",
    "mutation": "alife_mutate",
    "mating": "alife_mate",
    "interaction": "alife_interact",
    "speciation": "alife_speciate",
}


# -------------------------------------------------------------------------------------------------
# Set-up: what a plugin adds to the engine (heritable tensors, arrays, state)
# -------------------------------------------------------------------------------------------------


@hookspec
def alife_genome_tensors(config: WorldConfig) -> list[GenomeTensor] | None:
    """Add heritable tensors to the genome (a learning rate, a strategy's coefficients).

    Fires in: world and task, once, before the genome layout is made (so before any array exists).
    Every plugin's list is added; each tensor goes after the last tensor of its segment
    (``policy``, ``mutator`` or ``compatibility``), so mutation and crossover vary it with that
    segment, through the layout. Decide from the configuration alone (``config.plugin[...]``):
    a resumed run rebuilds the same layout from the saved configuration, and a checkpoint whose
    layout differs is refused, naming the first tensor that differs.

    :param config: the run's world configuration.
    :return: a list of :class:`alife.genome.GenomeTensor`, or ``None``. A key declared twice (or
        clashing with a built-in tensor) is refused, naming the plugin.
    """


@hookspec
def alife_observations(config: WorldConfig) -> list[tuple[str, int]] | None:
    """Add channels to what brains sense (for example "nearest agent of the other role").

    Fires in: world, once, before the genome layout is made (the policy's input grows by the
    channels, after the world's own observations and kin tags: ``sim.obs_names`` lists them all).
    Decide from the configuration alone (``config.plugin[...]``), as for ``alife_genome_tensors``:
    a resumed run rebuilds the same layout, and a checkpoint whose layout differs is refused.
    Fill the channels in ``alife_observe``.

    :param config: the run's world configuration.
    :return: ``[(name, size), ...]`` (size 1 to 64), or ``None``. A name declared twice is refused,
        naming the plugins.
    """


@hookspec
def alife_observe(sim: Simulation, n: int, obs: torch.Tensor) -> None:
    """Fill the observation channels this plugin declared (``alife_observations``).

    Fires in: world, whenever the brains' observations are computed (once per step, before the
    policies act; again only if the state changed), after the world's own senses.

    :param sim: the simulation; ``sim.observation_columns(name)`` is a channel's column slice.
    :param n: observations are rows ``[0, n)`` by slot (rows of dead slots are ignored).
    :param obs: ``[n, n_obs]``: write your columns in place, values in ``[-1, 1]``; the engine
        clips them to that range and sets non-finite values to 0 afterwards. Channels nobody
        writes stay 0.
    """


@hookspec
def alife_setup(sim: Simulation) -> None:
    """Register per-slot and per-species arrays, read parameters, allocate state.

    Fires in: world and task (with the task runner as ``sim``), once, after the world's
    arrays are allocated and before the initial agents are placed and ``alife_sim_start`` fires
    (so a resumed run's state is restored after this, over what was set up here). Register arrays
    with ``sim.arrays.add_slot(...)`` / ``sim.arrays.add_species(...)`` (see
    :class:`alife.world.arrays.PluginArrays`): the engine gives children their values at birth,
    grows per-species arrays with the species table, counts them in the memory check and saves
    them in checkpoints. :class:`alife.strategies.base.Strategy` reads its ``Params`` here.

    :param sim: the simulation.
    """


# -------------------------------------------------------------------------------------------------
# Run lifecycle (events)
# -------------------------------------------------------------------------------------------------


@hookspec
def alife_sim_start(sim: Simulation) -> None:
    """Called once when a simulation has been built and its initial agents placed.

    Fires in: world and task, once.

    Recorders open their files here; plugins read their settings from
    ``sim.config.plugin.get(<name>, {})`` and should check them here, so that a bad setting stops
    the run before its first step. If a plugin raises here, the plugins already started get their
    ``alife_sim_end``.

    :param sim: the simulation. ``sim.world`` holds the initial population.
    """


@hookspec
def alife_sim_end(sim: Simulation) -> None:
    """Called once when a simulation is closed (normally or after an error).

    Fires in: world and task, once.

    Recorders flush and close their files here. It is called even when another hook raised,
    and every plugin's implementation runs even when another one's raises.

    :param sim: the simulation.
    """


@hookspec
def alife_step_start(sim: Simulation, step: int) -> None:
    """Called at the start of every step, before sensing.

    Fires in: world (every step) and task (once per generation, ``step`` the generation).

    :param sim: the simulation.
    :param step: the number of the step about to run (0 for the first).
    """


@hookspec
def alife_step_end(sim: Simulation, step: int) -> None:
    """Called at the end of every step, after births (the record phase).

    Fires in: world (every step) and task (once per generation, ``step`` the generation).

    :param sim: the simulation; ``sim.stats`` holds this step's counters.
    :param step: the number of the step that just ran.
    """


# -------------------------------------------------------------------------------------------------
# The world (events and modifiers)
# -------------------------------------------------------------------------------------------------


@hookspec
def alife_resource_regrowth(sim: Simulation, step: int) -> float | torch.Tensor | None:
    """Scale this step's resource regrowth (seasons, droughts, patches).

    Fires in: world, every step (a task has no resource field: a task plugin implementing it is refused at start).

    Every plugin's answer is multiplied together; ``None`` means 1.

    :param sim: the simulation; ``sim.world.resource`` is the ``[height, width]`` field.
    :param step: the current step.
    :return: a factor: a float, or a ``[height, width]`` tensor for a spatial pattern, or ``None``.
    """


@hookspec
def alife_after_act(sim: Simulation, slots: torch.Tensor, actions: torch.Tensor) -> None:
    """Called after the brains (or a PettingZoo caller) chose this step's actions.

    Fires in: world (once per step, after the act phase) and task (once per environment step of
    the training episodes, every episode still playing at once; not in held-out episodes, which
    score the genome alone).

    :param sim: the simulation.
    :param slots: ``[n]`` int64 slots of the acting agents. In the world, the living agents; on a
        task, the genome playing each running episode (a genome playing several episodes at once
        appears once per episode).
    :param actions: ``[n, k]`` float32, row ``i`` what ``slots[i]`` chose. A plugin may edit it in
        place (for instance ``actions += noise``); the engine takes the rows back after the hook.
        In the world ``k = 5``: turn, speed, eat, attack, mate, each meant to lie in [-1, 1] and
        clamped to it afterwards. On a task, the policy's outputs before they become the
        environment's action: logits for discrete parts (argmax after), for a ``Box`` the tanh
        outputs (clamped to [-1, 1] after, then scaled to the bounds; with
        ``task.action_mapping = "clip"`` the linear outputs, clipped to the bounds).
    """


@hookspec
def alife_learn(sim: Simulation, slots: torch.Tensor, observations: torch.Tensor,
                actions: torch.Tensor, rewards: torch.Tensor) -> None:
    """Within-lifetime learning: change the living agents' genomes (their phenotypes) in place.

    Fires in: world (every step, after metabolism and death) and task (once per generation after its episodes, as between-episode learning: ``observations`` and ``actions`` are empty ``[n, 0]`` tensors and ``rewards`` the generation's mean return of each genome).

    Called after metabolism and death, before reproduction. ``rewards`` is the energy change of
    this step, the signal a gradient-descent-as-adaptation plugin descends on. The engine re-reads
    the rows of ``slots`` afterwards (the CPU policy copy and the NaN check), so the brains act on
    the learned weights from the next step on.

    :param sim: the simulation; write to ``sim.world.genomes[slots]``.
    :param slots: ``[n]`` slots of the agents alive after this step's deaths.
    :param observations: ``[n, n_obs]`` what they sensed this step.
    :param actions: ``[n, 5]`` what they did.
    :param rewards: ``[n]`` their energy change this step.
    """


# -------------------------------------------------------------------------------------------------
# Decision hooks: one strategy per role
# -------------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def alife_select_parents(sim: Simulation, slots: torch.Tensor, neighbours: torch.Tensor,
                         ready: torch.Tensor, fitness: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Role ``selection``: choose who reproduces this step, and with whom.

    Fires in: world (every step; the engine takes ``child_energy + birth_cost`` from each first parent, so each must hold that much per child) and task (once per generation, with every genome, ``neighbours`` all -1 and ``ready`` all True; it must propose ``population - elite`` children).

    Stops at first non-None result.

    :param sim: the simulation.
    :param slots: ``[n]`` slots of the living agents.
    :param neighbours: ``[n]`` slot of each one's possible partner, or -1: its nearest agent within
        ``agent.contact_radius``; with mate search (``agent.mate_radius > 0``), for an agent that
        signalled readiness, the nearest other agent that signalled it too within
        ``agent.mate_radius`` (-1 for an agent that did not signal). On a task all -1.
    :param ready: ``[n]`` bool, the agent signalled readiness to mate this step.
    :param fitness: ``[n]`` float64, each one's fitness as the mode knows it now: in the world the
        energy it has gathered so far in its life (its final value is told at death through
        ``alife_fitness``), on a task its training fitness (mean return over every episode it has
        played). A selection rule reads it here, not from an attribute of ``sim``; an
        implementation may leave the argument out of its signature.
    :return: ``(parents, partners)``: two ``[k]`` int64 tensors of slots, one entry per child to
        be made; ``partners`` is -1 where the child has a single parent. The engine checks the
        answer and refuses (a ``PluginError`` naming the plugin, the hook and the slot) parents
        that are not living agents in ``[0, hw)``, partners that are neither a living agent other
        than the parent nor -1, and, in the world, a first parent whose energy cannot pay
        ``agent.child_energy + agent.birth_cost`` for each of its children (the engine takes it,
        so energy is conserved). ``agent.reproduce_energy`` and ``agent.min_reproduce_age`` are
        the built-in ``energy-threshold`` strategy's own rule; another strategy decides its own.
    """


@hookspec(firstresult=True)
def alife_mate(sim: Simulation, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor | None:
    """Role ``mating``: do the agents in ``a`` and their partners in ``b`` accept each other?

    Fires in: world and task, in the reproduction phase, for the proposed pairs.

    Stops at first non-None result.

    :param sim: the simulation.
    :param a: ``[k]`` slots of the agents proposing.
    :param b: ``[k]`` slots of their partners.
    :return: ``[k]`` bool, True where the pair mates; where False the child has one parent.
    """


@hookspec(firstresult=True)
def alife_reproduce(sim: Simulation, parents: torch.Tensor, partners: torch.Tensor) -> torch.Tensor | None:
    """Role ``reproduction``: make the children's genomes.

    Fires in: world and task, in the reproduction phase (once per strategy present with a ``[mixture]`` of reproduction).

    Stops at first non-None result. The built-in strategy crosses over the two parents (where
    there are two) and then calls the ``mutation`` role through ``sim.hooks.mutate``.

    :param sim: the simulation; genomes are ``sim.world.genomes[parents]``.
    :param parents: ``[k]`` slots of the first parents.
    :param partners: ``[k]`` slots of the second parents, -1 for none.
    :return: ``[k, genome_size]`` float32 child genomes.
    """


@hookspec(firstresult=True)
def alife_mutate(sim: Simulation, genomes: torch.Tensor, parents: torch.Tensor) -> torch.Tensor | None:
    """Role ``mutation``: vary child genomes.

    Fires in: world and task, from the reproduction role (the built-in ``crossover-mutate`` calls it).

    Stops at first non-None result. Work through ``sim.layout`` so that an operator sees tensor
    boundaries; mutate the mutator segment too (it is heritable like the rest).

    :param sim: the simulation.
    :param genomes: ``[k, genome_size]`` the genomes to vary (may be modified in place).
    :param parents: ``[k]`` slots of the parent whose mutator applies.
    :return: ``[k, genome_size]`` the varied genomes.
    """


@hookspec(firstresult=True)
def alife_speciate(sim: Simulation, genomes: torch.Tensor, parent_species: torch.Tensor,
                   step: int) -> torch.Tensor | None:
    """Role ``speciation``: the species of each child about to be born.

    Fires in: world and task, in the reproduction phase. Stops at first non-None result. The
    built-in ``kin-drift`` keeps a child in
    its first parent's species unless its kin tag strays past ``mutation.species_threshold`` from
    the species' founder, when it founds a new one. A strategy founds species through
    ``sim.new_species(founder_tags, parent_species, step)``, which returns their ids, grows every
    per-species array and fires ``alife_species_born``; it must not renumber existing species.

    :param sim: the simulation.
    :param genomes: ``[k, genome_size]`` the children's genomes (read only).
    :param parent_species: ``[k]`` int64 species of each child's first parent.
    :param step: the current step.
    :return: ``[k]`` int64 species ids, each an existing species (``0 <= id < species count``).
    """


@hookspec(firstresult=True)
def alife_behaviour(sim: Simulation, slots: torch.Tensor) -> torch.Tensor | None:
    """Describe agents' behaviour as one vector each, for novelty search and evolvability ES.

    Fires in: world and task, only when a plugin asks for it (``sim.behaviour(slots)``). Not a
    role: the first plugin to answer wins. Stops at first non-None result. The built-in world default (``alife.strategies.behaviour``) answers
    last: the agent's last action (turn, speed, eat, attack, mate), its energy over
    ``agent.max_energy`` and its age over ``agent.max_age``.

    :param sim: the simulation.
    :param slots: ``[n]`` slots of the agents to describe.
    :return: ``[n, d]`` float32, one row per slot, the same ``d`` for every call in a run.
    """


@hookspec(firstresult=True)
def alife_interact(sim: Simulation, attackers: torch.Tensor, targets: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Role ``interaction``: what attacks do (predation, coevolution rules, roles).

    Fires in: world, in the fight phase (task runs have no attacks: a task plugin implementing it is refused at start).

    Stops at first non-None result.

    :param sim: the simulation.
    :param attackers: ``[m]`` slots of the agents attacking this step.
    :param targets: ``[m]`` slots of their targets (each within contact range).
    :return: ``(damage, gain)``: two ``[m]`` float32 tensors, energy each attack takes from its
        target and energy it gives to its attacker. The engine caps the total taken from a target
        at the energy it has, scaling both in proportion. Or ``(damage, gain, targets)``: the
        attacks land on these ``[m]`` slots instead (a rule that picks its victims, e.g. a predator
        that strikes the nearest prey in its contact range rather than the nearest agent, which
        may be another predator). Each must be a living agent other than its attacker, or the
        run stops with a ``PluginError``; being in range is the rule's own measure.
    """


# -------------------------------------------------------------------------------------------------
# Births and deaths (events)
# -------------------------------------------------------------------------------------------------


@hookspec
def alife_agents_born(sim: Simulation, births: Births) -> None:
    """Called once per step with every agent born in it (after they are placed).

    Fires in: world (once per step with births) and task (once per generation, the children that took the slots of the genomes that did not survive).

    :param sim: the simulation; the newborns are at ``births.slots`` in the ``sim.world`` arrays.
    :param births: numpy arrays ``ids``, ``slots``, ``parent_ids`` (``[k, 2]``, -1 for none),
        ``species``, ``step``, plus ``strategy`` (the reproduction strategy's name),
        ``parent_slots`` (``[k, 2]``, the parents' slots, -1 for none) and, in a world with a
        ``[mixture]``, ``strategies`` (per-row codes into ``strategy_names``).
    """


@hookspec
def alife_fitness(sim: Simulation, fitness: Fitness) -> None:
    """The "tell": how well agents did, once their result is final.

    Fires in: world (once per step with the agents that died in it, right after
    ``alife_agents_died``, their slots still holding their last state; ``values`` is the energy
    each gathered over its life, ``offspring`` its number of children) and task (once per
    generation after evaluation and before selection; ``values`` is each genome's training
    fitness, its mean seeded episode return). Strategies that learn from results (NES, the 1/5
    success rule, novelty archives) update here, the same code in both modes.

    :param sim: the simulation (or task runner).
    :param fitness: numpy arrays ``ids``, ``slots``, ``values`` (float64), ``offspring``
        (int64), and ``step`` and ``mode`` (``"world"`` or ``"task"``).
    """


@hookspec
def alife_species_born(sim: Simulation, species: np.ndarray, parents: np.ndarray, step: int) -> None:
    """Announce the species founded in this step.

    Fires in: world and task, when the speciation role (or, in the world, a refill after the
    population's extinction) founds
    species (the initial population's species are in the table when ``alife_sim_start`` fires).
    Per-species arrays already have their rows.

    :param sim: the simulation.
    :param species: ``[m]`` int64 ids of the new species.
    :param parents: ``[m]`` int64 species each split from (-1 for founders).
    :param step: the step (-1 for the initial population).
    """


@hookspec
def alife_species_extinct(sim: Simulation, species: np.ndarray, step: int) -> None:
    """Species whose last living member died in this step.

    Fires in: world and task, at the end of the step or generation (after births), before
    ``alife_step_end``. A species
    refilled after an extinction of the whole population (``world.extinction = "reseed"``) may
    live again and die out again.

    :param sim: the simulation.
    :param species: ``[m]`` int64 ids.
    :param step: the step.
    """


@hookspec
def alife_agents_died(sim: Simulation, deaths: Deaths) -> None:
    """Called once per step with every agent that died in it, before their slots are freed.

    Fires in: world (once per step with deaths) and task (once per generation: the genomes that did not survive, cause ``removed``).

    :param sim: the simulation; the dead agents' last state is still in their slots.
    :param deaths: numpy arrays ``ids``, ``slots``, ``causes`` (codes into ``alife.events.CAUSES``),
        ``step``.
    """


# -------------------------------------------------------------------------------------------------
# The `alife run` command line: options and recorders (events)
# -------------------------------------------------------------------------------------------------

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

    from alife.config import WorldConfig


@hookspec
def alife_series(sim: Simulation, step: int) -> dict[str, float] | None:
    """Numbers a plugin wants recorded over the run, as series (its state, not the world's).

    Fires in: world and task, whenever a recorder samples series (the lineage recorder every
    ``--lineage-series-every`` steps, or generations on a task) and every 25 steps for the progress
    bar of a world run of ``alife run``; only for plugins that implement it. Return the values *now*
    (``{"name": number}``, or None for nothing this time): it may be called more than once a step
    and must not change the plugin's state. Each value is recorded as ``"<plugin>.<name>"`` in
    ``lineage.h5`` (``LineageFile.plugin_series``); names are letters, digits, ``_``, ``-`` and
    ``.``, at most 64 bytes with the plugin's name; values real numbers (NaN allowed).

    :param sim: the simulation (or task runner).
    :param step: the step (generation) that is ending.
    :return: ``{name: number}``, or None.
    """


@hookspec
def alife_summary(sim: Simulation) -> dict[str, Any] | None:
    """Fields a plugin adds to the run's ``summary.json`` (for instance each role's count over the run).

    Fires in: world and task, once, when ``alife run`` writes the run's summary, after the last
    step. Return a JSON-serialisable dict (or None); it appears under
    ``plugin_fields.<plugin>``.

    :param sim: the simulation (or task runner).
    :return: a JSON-serialisable dict, or None.
    """


@hookspec
def alife_add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Add command-line options to ``alife run``, as pytest's ``pytest_addoption`` does.

    Fires in: the ``alife run`` command line, once, while it parses its arguments: for the
    built-in recorders (``alife.recording.lineage``, ``alife.recording.replay``), the ``alife``
    entry points, and the plugins of ``-p`` and ``--plugins-dir`` (those two options are read
    first), never for a world file's ``plugins`` (the world is read after the command line) nor
    in a ``Simulation`` built from Python. Prefix each option with the plugin's name
    (``--lineage-commit-every``); an option another plugin already added is refused, naming the
    plugin. The values reach ``alife_make_recorders`` in ``args`` and are saved in the run
    folder's ``run.json``, so ``alife run --resume`` gets them back: give defaults that are a
    str, int, float, bool, list or None.

    :param parser: the ``alife run`` ``argparse.ArgumentParser``; add options to it or to a group
        of it (``parser.add_argument_group(...)``).
    """


@hookspec
def alife_make_recorders(run_dir: Path, args: argparse.Namespace,
                         config: WorldConfig) -> list[object] | None:
    """Make this plugin's recorders for one run of ``alife run``.

    Fires in: the ``alife run`` command line (world and task runs), once per run and once per
    ``--resume``, after the world is read and the run folder made, before the simulation is
    built; not for a plugin whose recorders ``--no-record NAME`` turned off. A plugin names its
    recorders with ``ALIFE_RECORDER = "name"`` (default: the plugin's name), the name
    ``--no-record`` takes and ``alife plugins`` shows; two plugins with one name are refused.
    A recorder is any plugin object: ``alife run`` passes every plugin's recorders to the
    simulation (``Simulation(plugins=[...])``), where their hooks fire (``alife_sim_start``
    opens the files, appending when ``sim.resume_step`` is set; ``alife_sim_end`` closes them).
    A recorder with a ``commit(step)`` method gets it called before each checkpoint, with the
    last step the checkpoint covers, so that a resume finds every earlier record on disk.

    :param run_dir: the run folder (a ``pathlib.Path``); write the recorder's files in it.
    :param args: the parsed ``alife run`` arguments, every plugin's options included; on
        ``--resume``, the arguments the run was started with.
    :param config: the run's world configuration; ``config.task`` is set for a generational
        run (a recorder that only fits an ecology world returns ``[]`` then).
    :return: a list of new plugin objects, made for this run, or ``None`` for none.
    """
