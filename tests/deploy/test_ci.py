"""The CI script: lint is part of what lands, checked before the tests run."""

from __future__ import annotations

from pathlib import Path

CI = Path(__file__).resolve().parents[2] / ".ci" / "run"


def test_ci_runs_lint_then_the_tests() -> None:
    commands = [
        line.strip() for line in CI.read_text().splitlines() if line.strip().startswith("make ")
    ]
    assert commands == ["make lint", "make test"]
    assert "set -euo pipefail" in CI.read_text()  # a lint finding stops the run
