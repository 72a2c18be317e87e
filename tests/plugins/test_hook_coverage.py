"""A hook without a behavioural test fails the suite (as datasette does it).

The scan reads every test file under ``tests/`` and counts a hook as tested when some file both
defines a ``@hookimpl``-decorated function of that name and builds a simulation (calls
``Simulation(...)`` or the ``make_sim`` fixture), so the implementation is registered into a real
engine and fires there. Adding a hook to ``alife/plugins/hookspecs.py`` without such a test makes
``test_every_hook_has_a_behavioural_test`` fail, naming the hook.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from alife.plugins import hookspecs

TESTS = Path(__file__).resolve().parents[1]
ENGINE_CALLS = {"Simulation", "make_sim", "make_env"}


def _name_of(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        return _name_of(node.func)
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def hooks_tested_in(source: str) -> set[str]:
    """Hook names implemented with ``@hookimpl`` in a test module that also runs the engine."""
    tree = ast.parse(source)
    runs_engine = any(isinstance(n, ast.Call) and _name_of(n.func) in ENGINE_CALLS for n in ast.walk(tree))
    if not runs_engine:
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("alife_"):
            if any(_name_of(d) == "hookimpl" for d in node.decorator_list):
                found.add(node.name)
    return found


def all_hooks() -> set[str]:
    return {n for n in dir(hookspecs) if n.startswith("alife_") and callable(getattr(hookspecs, n))}


def find_tested_hooks() -> dict[str, list[str]]:
    where: dict[str, list[str]] = {}
    for path in sorted(TESTS.rglob("test_*.py")):
        for hook in hooks_tested_in(path.read_text(encoding="utf-8")):
            where.setdefault(hook, []).append(str(path.relative_to(TESTS)))
    return where


def test_every_hook_has_a_behavioural_test() -> None:
    missing = sorted(all_hooks() - set(find_tested_hooks()))
    assert not missing, f"hooks with no test that registers an implementation into a simulation: {missing}"


@pytest.mark.parametrize("source, expected", [
    # implemented and run through the engine: counted
    ("from alife.plugins import hookimpl\nfrom alife import Simulation\n"
     "class P:\n    @hookimpl\n    def alife_step_end(self, sim, step): pass\n"
     "def test_x():\n    Simulation(None, plugins=[P()])\n", {"alife_step_end"}),
    # a nested plugin function, run through the make_sim fixture: counted
    ("import alife.plugins\n"
     "def test_x(make_sim):\n    @alife.plugins.hookimpl(wrapper=True)\n"
     "    def alife_mutate(sim, genomes, parents): return (yield)\n    make_sim()\n", {"alife_mutate"}),
    # only named in a string or a comment: not counted
    ("from alife import Simulation\n# alife_step_end\nX = 'alife_learn'\n"
     "def test_x():\n    Simulation(None)\n", set()),
    # implemented but without the marker: pluggy would never call it
    ("from alife import Simulation\ndef alife_learn(sim): pass\n"
     "def test_x():\n    Simulation(None)\n", set()),
    # implemented but the engine never runs: not counted
    ("from alife.plugins import hookimpl\n@hookimpl\ndef alife_step_end(sim, step): pass\n", set()),
])
def test_scan_counts_only_registered_implementations(source: str, expected: set[str]) -> None:
    assert hooks_tested_in(source) == expected


def test_scan_reports_a_hook_nobody_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    def alife_brand_new_hook(sim: object) -> None:
        """A hook added without a test."""

    monkeypatch.setattr(hookspecs, "alife_brand_new_hook", alife_brand_new_hook, raising=False)
    with pytest.raises(AssertionError, match="alife_brand_new_hook"):
        test_every_hook_has_a_behavioural_test()
