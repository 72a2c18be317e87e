"""Every code block of ``docs/plugins.md`` works.

Blocks are read from the markdown with the HTML comment before them, if any:

* ``<!-- file: PATH -->``: the block is exactly the file PATH (which the tests of ``plugins/`` and
  the behavioural tests below exercise);
* ``<!-- excerpt: PATH -->``: the block's lines appear in PATH, in order;
* other ``python`` blocks run, each in a fresh namespace;
* ``toml`` blocks parse;
* ``console`` blocks run: each ``$ alife ...`` line goes through ``alife.cli.main.main`` (with an
  optional ``PYTHONPATH=DIR`` prefix); output shown after a command is checked, exactly
  (``<!-- output: exact -->``, ``...`` matching anything) or line by line
  (``<!-- output: contains -->``); a command showing ``alife: error:`` must exit 2, any other 0.

Everything runs in a scratch directory that links to the repository's ``worlds``, ``plugins``
and ``docs``, so commands read like they do from the repository root but write nothing there.
"""

from __future__ import annotations

import re
import shlex
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from alife.cli.main import main
from alife.simulation import Simulation

REPO = Path(__file__).resolve().parents[2]
TUTORIAL = REPO / "docs" / "plugins.md"
EXAMPLES = REPO / "docs" / "examples"
SMALL = {"world.width": 32, "world.height": 32, "world.initial_agents": 100, "world.capacity": 512}

FENCE = re.compile(r"(?:<!--\s*(?P<marker>[\w-]+):\s*(?P<arg>[^>]*?)\s*-->\s*\n)?"
                   r"(?P<indent>[ \t]*)```(?P<lang>\w*)\n(?P<body>.*?)\n(?P=indent)```", re.S)


@dataclass
class Block:
    lang: str
    body: str
    marker: str
    arg: str
    line: int

    @property
    def id(self) -> str:
        return f"L{self.line}-{self.lang or 'text'}"


def blocks(text: str) -> list[Block]:
    found = []
    for m in FENCE.finditer(text):
        body = textwrap.dedent(m["body"])  # a block inside a list item is indented
        found.append(Block(m["lang"], body, m["marker"] or "", m["arg"] or "",
                           text.count("\n", 0, m.start("lang")) + 1))
    return found


BLOCKS = blocks(TUTORIAL.read_text())


def of(kind: str) -> list[Block]:
    return [b for b in BLOCKS if kind == b.lang or kind == b.marker]


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working directory that looks like the repository root; sys.path and sys.modules are
    restored afterwards."""
    for name in ("worlds", "plugins", "docs"):
        (tmp_path / name).symlink_to(REPO / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if str(getattr(sys.modules[name], "__file__", "") or "").startswith((str(REPO / "docs"), str(tmp_path))):
            del sys.modules[name]


def test_the_tutorial_has_the_blocks_it_promises() -> None:
    assert len(of("file")) >= 4 and len(of("console")) >= 6
    assert len([b for b in of("python") if not b.marker]) >= 4
    assert all(b.lang in ("python", "toml", "console", "") for b in BLOCKS)


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.marker == "file"], ids=lambda b: b.id)
def test_file_blocks_are_the_files(block: Block) -> None:
    assert (REPO / block.arg).read_text() == block.body + "\n"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.marker == "excerpt"], ids=lambda b: b.id)
def test_excerpt_blocks_come_from_their_files(block: Block) -> None:
    source = iter((REPO / block.arg).read_text().splitlines())
    for line in block.body.splitlines():
        assert any(line == s for s in source), f"{block.arg} has no line {line!r} (in this order)"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "toml"], ids=lambda b: b.id)
def test_toml_blocks_parse(block: Block) -> None:
    tomllib.loads(block.body)


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "python" and not b.marker], ids=lambda b: b.id)
def test_python_blocks_run(block: Block, scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the tutorial's worlds are full size; the same code on a small world checks it as well and fast
    real_init = Simulation.__init__

    def small_init(self: Simulation, world: object = None, **kwargs: object) -> None:
        kwargs["overrides"] = {**SMALL, **dict(kwargs.get("overrides") or {})}  # type: ignore[arg-type]
        kwargs.setdefault("device", "cpu")
        real_init(self, world, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Simulation, "__init__", small_init)
    exec(compile(block.body, f"{TUTORIAL}:{block.line}", "exec"), {"__name__": f"tutorial_{block.line}"})


def run_command(line: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    words = shlex.split(line)
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        var, _, value = words.pop(0).partition("=")
        assert var == "PYTHONPATH", f"unsupported variable {var} in {line!r}"
        monkeypatch.syspath_prepend(str(Path(value).resolve()))
    assert words[0] == "alife", f"the tutorial runs only alife commands: {line!r}"
    args = words[1:]
    if args[0] == "run":  # the same command on a small world, to keep the suite fast
        args += ["--device", "cpu", *(a for k, v in SMALL.items() for a in ("--set", f"{k}={v}"))]
    capsys.readouterr()
    code = main(args)
    out, err = capsys.readouterr()
    return code, out.splitlines() + err.splitlines()


def matches(expected: str, actual: str) -> bool:
    pattern = ".*".join(re.escape(" ".join(part.split())) for part in expected.split("..."))
    return re.fullmatch(pattern, " ".join(actual.split())) is not None


@pytest.mark.parametrize("block", of("console"), ids=lambda b: b.id)
def test_console_blocks_run(block: Block, scratch: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    commands: list[tuple[str, list[str]]] = []
    for line in block.body.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        else:
            assert commands, f"output before any command: {line!r}"
            commands[-1][1].append(line)
    assert commands
    for command, shown in commands:
        assert not shown or block.marker == "output", f"{command!r}: shown output needs an <!-- output: --> marker"
        code, lines = run_command(command, monkeypatch, capsys)
        expect_error = any(s.startswith("alife: error:") for s in shown)
        assert code == (2 if expect_error else 0), f"{command!r} exited {code}: {lines}"
        if block.arg == "exact":
            assert len(lines) == len(shown) and all(map(matches, shown, lines)), (shown, lines)
        elif block.arg == "contains":
            rest = iter(lines)
            for s in shown:
                assert any(matches(s, a) for a in rest), f"{command!r} did not print {s!r} (in this order)"


def test_output_checks_can_fail() -> None:
    assert matches("alife: error: x (offered: ...)", "alife: error: x (offered: gaussian, cauchy)")
    assert not matches("alife: error: x (offered: none)", "alife: error: x (offered: gaussian)")
    assert matches("a   b", "a b") and not matches("a b", "a b c")


# ------------------------------------------------------------------------------- the examples


def load_example(name: str) -> object:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"tutorial_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_death_counter_counts_every_death_by_cause(capsys: pytest.CaptureFixture[str]) -> None:
    counter = load_example("death_counter")
    with Simulation(None, seed=2, device="cpu", overrides=SMALL, plugins=[counter]) as sim:
        sim.run(40)
        tally = dict(counter.tallies[sim])  # type: ignore[attr-defined]
    assert sum(tally.values()) == sim.totals["deaths"] > 0
    assert all(tally[c] == sim.totals[f"deaths_{c}"] for c in tally)
    assert capsys.readouterr().out.strip().endswith(
        "deaths by cause after 40 steps: " + ", ".join(f"{c} {n}" for c, n in counter.tallies[sim].most_common()))  # type: ignore[attr-defined]


def test_cauchy_mutation_is_chosen_by_its_world_file_and_has_heavy_tails() -> None:
    sim = Simulation(str(EXAMPLES / "cauchy.toml"), seed=1, device="cpu", overrides=SMALL)
    assert sim.hooks.chosen["mutation"] == "cauchy"
    mod = load_example("cauchy_mutation")
    genomes = torch.zeros(2000, sim.layout.size)
    e = sim.layout["mutator.log_sigma"]
    genomes[:, e.offset:e.offset + e.size] = np.log(0.01)
    sim.config.mutation.tau = 0.0  # fixed step sizes, to look at the steps alone
    step = mod.alife_mutate(sim, genomes.clone(), torch.zeros(2000, dtype=torch.long))  # type: ignore[attr-defined]
    step[:, e.offset:e.offset + e.size] = 0.0
    step = step.flatten() / 0.01
    # a Cauchy's quartiles are -1 and 1 (a Gaussian's: -0.67, 0.67), and its tails are far heavier
    q1, q3 = torch.quantile(step[torch.randperm(step.numel())[:100_000]], torch.tensor([0.25, 0.75])).tolist()
    assert q1 == pytest.approx(-1.0, abs=0.05) and q3 == pytest.approx(1.0, abs=0.05)
    assert float((step.abs() > 5).float().mean()) == pytest.approx(2 / np.pi * np.arctan(1 / 5), rel=0.1)
    assert float(step.abs().max()) <= 10.0
    sim.run(30)
    assert sim.totals["births"] > 0


def test_clamp_policy_refuses_a_bad_limit() -> None:
    from alife.plugins.manager import PluginError

    with pytest.raises(PluginError, match=r"plugin.clamp_policy.limit: expected a number > 0, got -1"):
        Simulation(None, seed=1, device="cpu", overrides={**SMALL, "plugin.clamp_policy.limit": -1},
                   plugins=[load_example("clamp_policy")])
