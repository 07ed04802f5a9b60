"""`make demo` keeps working: every platform's loop closes against the simulators."""

from __future__ import annotations

import pytest

from service.simulators.demo import demo
from tests.conftest import AMQP_URL

pytestmark = pytest.mark.e2e


async def test_the_demo_closes_every_loop(capsys: pytest.CaptureFixture[str]) -> None:
    assert await demo(AMQP_URL) == 0
    out = capsys.readouterr().out
    for vendor in ("leapwork", "robocorp", "uipath", "workato"):
        assert f"[{vendor:8}] run started" in out
        assert f"[{vendor:8}] Fact Sheet updated" in out
        assert f"{vendor}-done" in out
