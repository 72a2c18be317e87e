"""The layers (ARCHITECTURE.md, "Layers") are kept by import-linter's contracts in pyproject.toml:
nothing below the command line imports ``alife.cli``; the engine imports no recorder, viewer,
generational mode or command line; ``alife.lineage`` reads files without the engine. Imports
inside functions count too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONTRACTS = {c["id"]: c["name"] for c in
             tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]}
LINT = ("import sys\nfrom importlinter.cli import lint_imports\n"
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))\n")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the ``alife`` package under ``root``, with ``root/pyproject.toml``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", LINT], cwd=root, env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_contracts_are_the_three_layers() -> None:
    assert set(CONTRACTS) == {"cli-on-top", "engine-alone", "lineage-without-engine"}


def test_the_package_keeps_every_contract() -> None:
    res = lint_imports(REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    for name in CONTRACTS.values():
        assert f"{name} KEPT" in res.stdout


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """A copy of the ``alife`` package and of pyproject.toml in a temporary folder."""
    shutil.copytree(REPO / "alife", tmp_path / "alife", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize("module, line, contract, message", [
    # an engine module importing the command line, inside a function: two contracts break
    ("events.py", "def _later():\n    from alife.cli import run  # noqa\n", "engine-alone",
     "alife.events is not allowed to import alife.cli"),
    ("events.py", "import alife.cli\n", "cli-on-top", "alife.events is not allowed to import alife.cli"),
    ("checkpoint.py", "import alife.recording.lineage\n", "engine-alone",
     "alife.checkpoint is not allowed to import alife.recording"),
    ("lineage/reader.py", "import alife.simulation\n", "lineage-without-engine",
     "alife.lineage is not allowed to import alife.simulation"),
    ("recording/replay.py", "import alife.cli.main\n", "cli-on-top",
     "alife.recording is not allowed to import alife.cli"),
])
def test_a_forbidden_import_breaks_its_contract(package_copy: Path, module: str, line: str, contract: str,
                                                message: str) -> None:
    path = package_copy / "alife" / module
    path.write_text(path.read_text() + "\n\n" + line)
    res = lint_imports(package_copy)
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"{CONTRACTS[contract]} BROKEN" in res.stdout
    assert message in res.stdout
    # the copy, not the checkout, was checked
    assert str(package_copy) in subprocess.run(
        [sys.executable, "-c", "import alife; print(alife.__file__)"], cwd=package_copy, capture_output=True,
        text=True, env={**os.environ, "PYTHONPATH": str(package_copy)}).stdout
