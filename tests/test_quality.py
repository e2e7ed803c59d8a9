"""The code stays strict: ruff clean and formatted, mypy strict, and the layers pointing one way.

These run the project's own linters as the test command runs, so CI enforces them with the
rest of the suite.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_is_clean() -> None:
    result = _run(str(BIN / "ruff"), "check", "reconciler", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_formatted() -> None:
    """`ruff format` is a habit, checked: long lines wrap (E501 is on), none is left to taste."""
    result = _run(str(BIN / "ruff"), "format", "--check", "reconciler", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_strict_is_clean() -> None:
    result = _run(sys.executable, "-m", "mypy", "reconciler", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_layers_point_one_way() -> None:
    result = _run(str(BIN / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
