"""ruff and mypy are part of the test suite: a lint or type error fails the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def check(*command: str) -> None:
    result = subprocess.run([sys.executable, "-m", *command], cwd=REPO, capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff() -> None:
    """ruff finds nothing in the package or the tests."""
    check("ruff", "check", ".")


def test_mypy() -> None:
    """mypy --strict (with the zope plugin) passes on the package."""
    check("mypy")
