"""Fixtures of the contract tests: the recorder, an HTTP session and a callback inbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.clients.conftest import inbox, session
from tests.contracts.contract import contracts_dir
from tests.contracts.recording import Recorder

__all__ = ["inbox", "recorder", "session"]


@pytest.fixture(autouse=True)
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    """What crosses every simulator served in the test (the tests check it themselves)."""
    contracts_dir()  # fail at once, saying where, when ../shared/contracts is missing
    yield Recorder.install(monkeypatch)
