"""Generational mode: the same genomes and plugins evolving on gymnasium tasks.

A world file with a ``[task]`` table runs here instead of as an ecology world
(``alife run worlds/cartpole.toml``). See :mod:`alife.generational.runner`.
"""

from alife.generational.runner import TaskRun

__all__ = ["TaskRun"]
