"""`python -m service subscriptions` and `reconcile` as commands: wired, and telling the
user what to set when nothing is configured."""

from __future__ import annotations

import pytest

from service.__main__ import main
from service.settings import ENVIRONMENT


@pytest.fixture(autouse=True)
def bare(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*ENVIRONMENT, "SERVICE_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def test_plan_with_nothing_configured_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["subscriptions", "plan"]) == 0
    assert "nothing to manage" in capsys.readouterr().out


def test_reconcile_needs_the_leanix_token(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reconcile", "--since", "2h"]) == 2
    assert "clients.leanix.api_token" in capsys.readouterr().err


def test_reconcile_refuses_a_bad_since(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reconcile", "--since", "yesterday-ish"]) == 2
    assert "--since" in capsys.readouterr().err
