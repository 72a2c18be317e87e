"""Every hook is documented the way pytest documents its hooks (``_pytest/hookspec.py``): a
purpose, every parameter, the return value, and "Stops at first non-None result" on each
``firstresult`` hook. Read from pluggy's own record of the specs, not from our source text."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pluggy
import pytest

from alife.plugins import hookspecs

FIRSTRESULT_PHRASE = "Stops at first non-None result"


def spec_callers() -> dict[str, pluggy.HookCaller]:
    pm = pluggy.PluginManager("alife")
    pm.add_hookspecs(hookspecs)
    return {name: getattr(pm.hook, name) for name in dir(pm.hook) if name.startswith("alife_")}


def doc_problems(fn: Callable[..., Any], firstresult: bool) -> list[str]:
    """What is missing from a hookspec's documentation (empty when it is complete)."""
    doc = inspect.getdoc(fn) or ""
    problems = []
    if not doc.strip():
        return ["no docstring"]
    summary = doc.strip().splitlines()[0]
    if len(summary) < 15 or not summary.endswith((".", "?")):
        problems.append(f"first line is not a one-sentence purpose: {summary!r}")
    for param in inspect.signature(fn).parameters:
        if f":param {param}:" not in doc:
            problems.append(f"parameter {param!r} is not documented")
    returns = inspect.signature(fn).return_annotation
    if returns not in ("None", None, inspect.Signature.empty) and ":return:" not in doc:
        problems.append("return value is not documented")
    if firstresult:
        if FIRSTRESULT_PHRASE not in doc:
            problems.append(f"firstresult hook does not say {FIRSTRESULT_PHRASE!r}")
        if not str(returns).replace(" ", "").endswith("|None"):
            problems.append(f"firstresult hook's return type {returns!r} is not written `X | None`")
    elif FIRSTRESULT_PHRASE in doc:
        problems.append(f"broadcast hook claims {FIRSTRESULT_PHRASE!r}")
    return problems


CALLERS = spec_callers()


def test_every_alife_function_in_hookspecs_is_a_spec() -> None:
    module_hooks = {n for n, v in vars(hookspecs).items() if n.startswith("alife_") and callable(v)}
    assert module_hooks == set(CALLERS)
    assert len(CALLERS) >= 10


@pytest.mark.parametrize("name", sorted(CALLERS))
def test_hook_is_documented(name: str) -> None:
    caller = CALLERS[name]
    assert caller.spec is not None
    problems = doc_problems(caller.spec.function, bool(caller.spec.opts.get("firstresult")))
    assert not problems, f"{name}: " + "; ".join(problems)


def test_decision_hooks_are_exactly_the_firstresult_hooks() -> None:
    firstresult = {n for n, c in CALLERS.items() if c.spec is not None and c.spec.opts.get("firstresult")}
    assert firstresult == set(hookspecs.ROLE_HOOKS.values()) | hookspecs.ANSWER_HOOKS


def test_doc_check_catches_missing_pieces() -> None:
    """The check above can fail: a bare spec, an undocumented parameter, a firstresult hook that
    does not say so."""

    def bare(sim: Any) -> None:
        pass

    def half(sim: Any, step: int) -> float | None:
        """Scale something for a while, as a test of the checker.

        :param sim: the simulation.
        """

    def decision(sim: Any) -> int | None:
        """Decide something for the role under test.

        :param sim: the simulation.
        :return: an answer.
        """

    assert doc_problems(bare, False) == ["no docstring"]
    assert any("'step'" in p for p in doc_problems(half, False))
    assert any("return value" in p for p in doc_problems(half, False))
    assert any(FIRSTRESULT_PHRASE in p for p in doc_problems(decision, True))
    assert doc_problems(decision, False) == []
