"""`reconcile` against the LeanIX simulator, a real RabbitMQ and a real store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service import reconcile
from service.automation import starter
from service.automation.rules import load as load_rules
from service.cloudevent import decode
from service.settings import Settings
from service.simulators.leanix import DEFAULT_API_TOKEN, LeanixSimulator
from service.store.database import Database
from tests.integration.conftest import Inspector

RULE = {
    "name": "provision",
    "on": ["leanix.factsheet.created", "leanix.factsheet.reconciled"],
    "when": {"fact_sheet_type": "Application", "tag": "automate"},
    "start": {"vendor": "uipath", "target": {"release_key": "r-1"}},
}


@pytest.fixture
async def leanix() -> AsyncIterator[LeanixSimulator]:
    simulator = LeanixSimulator()
    async with simulator.serve():
        yield simulator


@pytest.fixture
def configured(
    make_settings: Callable[..., Settings], leanix: LeanixSimulator, tmp_path: Path
) -> Settings:
    settings = make_settings(
        store={"url": f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}"},
        clients={"leanix": {"base_url": leanix.base_url, "api_token": DEFAULT_API_TOKEN}},
    )
    return settings.__class__(**{**settings.__dict__, "rules": (RULE,)})


@pytest.fixture
async def store(configured: Settings) -> AsyncIterator[Database]:
    database = Database(configured.store.url)
    await database.open()
    yield database
    await database.close()


def _sheets(leanix: LeanixSimulator) -> dict[str, str]:
    """Fact Sheets of every kind reconcile must tell apart; name -> id."""
    ids = {
        "missed": leanix.add_fact_sheet("Application", "Missed", tags=["automate"]),
        "handled": leanix.add_fact_sheet("Application", "Handled", tags=["automate"]),
        "untagged": leanix.add_fact_sheet("Application", "Untagged"),
        "component": leanix.add_fact_sheet("ITComponent", "Component", tags=["automate"]),
        "old": leanix.add_fact_sheet("Application", "Old", tags=["automate"]),
    }
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    leanix.fact_sheets[ids["old"]].updated_at = three_days_ago.isoformat().replace("+00:00", "Z")
    for n in range(5):  # more pages than one
        leanix.add_fact_sheet("Application", f"Filler {n}")
    return ids


async def test_reconcile_publishes_only_what_no_run_handled(
    configured: Settings,
    leanix: LeanixSimulator,
    store: Database,
    inspector: Inspector,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reconcile, "PAGE_SIZE", 2)
    ids = _sheets(leanix)
    await store.runs.begin(
        correlation_id="c-1", vendor="uipath", rule="provision", event_id="e-1",
        fact_sheet_id=ids["handled"], target={"release_key": "r-1"}, inputs={},
    )  # fmt: skip
    await inspector.observe()
    since = datetime.now(UTC) - timedelta(hours=24)

    assert await reconcile.run_command(configured, since, publish=False) == 0
    dry = capsys.readouterr().out
    assert "would publish leanix.factsheet.reconciled id=" in dry
    assert f'fact_sheet={ids["missed"]} (Application "Missed"' in dry
    assert "1 would publish, 1 already handled by a recorded run" in dry
    assert "--apply" in dry
    graphql_calls = leanix.requests["graphql"]
    assert graphql_calls >= 5  # ten Fact Sheets, two a page (the facet keeps the Applications)

    assert await reconcile.run_command(configured, since, publish=True) == 0
    assert "1 published, 1 already handled" in capsys.readouterr().out
    message = await inspector.next_event()
    event = decode(message.body)
    assert event.type == "leanix.factsheet.reconciled" and event.subject == ids["missed"]
    assert message.delivery_mode == 2  # persistent, like a webhook's event
    assert inspector.observed.empty()  # the dry run published nothing
    (rule,) = load_rules((RULE,))
    assert rule.matches(event.type, starter.fact_sheet_of(event))  # the rules decide as usual

    assert await reconcile.run_command(configured, since, publish=True) == 0
    again = decode((await inspector.next_event()).body)
    assert again.id == event.id  # the same change: the same id, handled once by the worker


async def test_rules_that_do_not_listen_are_told_how(
    configured: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    deaf = {**RULE, "on": ["leanix.factsheet.updated"]}
    settings = configured.__class__(**{**configured.__dict__, "rules": (deaf,)})
    assert await reconcile.run_command(settings, datetime.now(UTC), publish=False) == 0
    assert "no rule listens to leanix.factsheet.reconciled" in capsys.readouterr().out
