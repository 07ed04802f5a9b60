"""Forged completions (issue 9 item 17), tried for real against the whole service.

The attack: correlation ids are computable from the LeanIX event (UUIDv5 of the event's
workspace and id, and the rule's name), and the old callback token was one static value
for every run, sent in Leapwork's runNow query string. A callback forged 50 ms after the
event won the completion and wrote the attacker's text to the Fact Sheet.

Here the attacker computes the new run's correlation id and posts completions 50 ms after
the event, and again once the run has started (when a forgery would have won: the run is
recorded and open), with every token it could have: the old shared token, a genuine token
of another run, this run's id signed for the other vendor, and a guess shaped like a token.
The platform's own callback is held back until the forgeries are answered, so they come
first for sure. Each must get 401 and publish nothing; the real completion must win and
the Fact Sheet must hold none of the attacker's text. A control sends the same forged body
with the run's genuine token at the same moment: it wins, so the refusals are what stops
the attack.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest

from service import callback_tokens
from service.automation.starter import correlation_id
from service.cloudevent import event_id
from service.simulators.lab import CALLBACK_SIGNING_KEY, HUMAN_USER, LEANIX_WEBHOOK_AUTH, Lab
from service.simulators.leanix_webhook import post
from service.store import Database
from tests.e2e import conftest as e2e
from tests.e2e.conftest import Service, logged_statuses
from tests.waiting import eventually

# The end-to-end tier's fixtures, under their names (our `lab` below replaces theirs).
make_service = e2e.make_service
service_factory = e2e.service_factory

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(45)]

Start = Callable[..., Awaitable[Service]]
ATTACKER = "ATTACKER-TEXT: approved, decommission now"
FORGED_AFTER_S = 0.05
OTHER = {"leapwork": "workato", "workato": "leapwork"}
# Runs complete by callback only here, so which callback wins is never a race with a poll.
NO_POLLING = {"poll_initial_s": 60.0, "poll_max_s": 60.0}


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    async with Lab(run_duration_s=0.2).running() as running:
        yield running


class Gate:
    """Holds a simulator's outbound callbacks until opened, so forgeries arrive first."""

    def __init__(self, simulator: Any) -> None:
        self.opened = asyncio.Event()
        self.held = 0
        self._post = simulator.post
        simulator.post = self.post

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int | None:
        self.held += 1
        await self.opened.wait()
        status: int | None = await self._post(url, body, headers)
        return status


def forged_body(vendor: str, cid: str) -> dict[str, Any]:
    """A completion in our documented shape, failed, carrying the attacker's text."""
    if vendor == "leapwork":
        return {"runId": str(uuid.uuid4()), "status": "Finished", "result": ATTACKER,
                "correlationId": cid, "outputs": {"note": ATTACKER}}  # fmt: skip
    return {"status": "failed", "jobId": "j-forged", "correlationId": cid,
            "error": ATTACKER, "outputs": {"note": ATTACKER}}  # fmt: skip


def tokens_an_attacker_could_have(vendor: str, cid: str) -> dict[str, str]:
    return {
        "the old static token": f"lab-{vendor}-callback-token",
        "a genuine token of another run": callback_tokens.sign(
            CALLBACK_SIGNING_KEY, vendor, correlation_id(str(uuid.uuid4()), "x")
        ),
        "this run's id signed for the other vendor": callback_tokens.sign(
            CALLBACK_SIGNING_KEY, OTHER[vendor], cid
        ),
        "a guess shaped like a token": "A" * callback_tokens.TOKEN_CHARS,
    }


async def forge(url: str, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=orjson.dumps(body), headers=headers) as answer,
    ):
        return answer.status, orjson.loads(await answer.read())


def sheet_text(lab: Lab, fact_sheet_id: str) -> str:
    """Everything written to the Fact Sheet: its fields, tags and comments."""
    sheet = lab.leanix.fact_sheets[fact_sheet_id]
    return repr(sheet) + repr(lab.leanix.comments.get(fact_sheet_id, []))


def tags(lab: Lab, fact_sheet_id: str) -> set[str]:
    return {tag["name"] for tag in lab.leanix.fact_sheets[fact_sheet_id].tags}


def run_started(lab: Lab, vendor: str) -> bool:
    """The platform was asked to start the run (it is recorded in the store before)."""
    return bool(lab.leapwork.runs) if vendor == "leapwork" else bool(lab.workato.calls)


async def attack(lab: Lab, vendor: str, rule: dict[str, Any]) -> tuple[str, str, float]:
    """LeanIX sends an event; the attacker, who sees it, computes the run's correlation
    id. Return (the Fact Sheet, that id, when the event was accepted)."""
    fact_sheet = lab.leanix.add_fact_sheet("Application", "Payroll")
    event = lab.leanix.event(fact_sheet, "FactSheetUpdatedEvent", HUMAN_USER)
    url = f"{lab.service_url}/webhooks/leanix"
    assert await post(url, LEANIX_WEBHOOK_AUTH, event, lab.leanix.workspace_id) == 202
    sent_at = time.monotonic()
    sender_id = f"{event['workspaceId']}/{event['id']}"
    return fact_sheet, correlation_id(event_id("leanix", sender_id, b""), rule["name"]), sent_at


async def forge_all(lab: Lab, vendor: str, cid: str, body: dict[str, Any]) -> None:
    """Every token the attacker could have: each forgery gets 401."""
    callback_url = f"{lab.service_url}/callbacks/{vendor}"
    for why, token in tokens_an_attacker_could_have(vendor, cid).items():
        status, problem = await forge(callback_url, token, body)
        assert status == 401, why
        assert problem["status"] == 401 and "token" in problem["detail"], why


def with_rule(lab: Lab, vendor: str) -> dict[str, Any]:
    """The lab's rule, writing the run's outputs and detail into its comment."""
    rule = lab.rule(vendor)
    rule["write_back"]["comment"] += " {{ run.outputs.note }} {{ run.detail }}"
    return rule


@pytest.mark.parametrize("vendor", ["leapwork", "workato"])
async def test_a_forged_completion_50ms_after_the_event_is_refused_and_the_real_one_wins(
    lab: Lab, service_factory: Start, vendor: str
) -> None:
    rule = with_rule(lab, vendor)
    service = await service_factory([rule], automation=NO_POLLING)
    gate = Gate(getattr(lab, vendor))
    fact_sheet, cid, sent_at = await attack(lab, vendor, rule)
    forged = forged_body(vendor, cid)

    await asyncio.sleep(FORGED_AFTER_S)  # times the attack; it waits for no result
    await forge_all(lab, vendor, cid, forged)
    first_wave_s = time.monotonic() - sent_at
    await eventually(lambda: run_started(lab, vendor), what="the run started")
    await forge_all(lab, vendor, cid, forged)  # the run is recorded and open now
    if vendor == "leapwork":  # its token went out in runNow's query: this run's own, only
        [started] = lab.leapwork.runs.values()
        own = callback_tokens.sign(CALLBACK_SIGNING_KEY, vendor, cid)
        assert started.variables["callbackToken"] == own
        assert CALLBACK_SIGNING_KEY not in started.query
    assert not lab.leanix.comments.get(fact_sheet)

    gate.opened.set()  # the platform's own callback, with the run's own token, goes out
    await eventually(
        lambda: f"{vendor}-done" in tags(lab, fact_sheet) and lab.leanix.comments.get(fact_sheet),
        what="the real outcome written back",
    )
    assert ATTACKER not in sheet_text(lab, fact_sheet)
    assert f"{vendor}-failed" not in tags(lab, fact_sheet)
    [comment] = lab.leanix.comments[fact_sheet]
    assert "succeeded" in comment["message"]

    # The attacker computed the right id, and lost: the platform completed the run.
    database = Database(service.settings.store.url)
    try:
        run = await database.runs.by_correlation(cid)
    finally:
        await database.close()
    assert run is not None and (run.status, run.outcome) == ("written_back", "succeeded")
    subject = forged.get("runId") or forged["jobId"]
    assert await logged_statuses(service.settings, subject) == []  # nothing was published
    print(f"{vendor}: 8 forgeries, the first 4 sent {FORGED_AFTER_S * 1000:.0f} ms after the "
          f"event and refused by {first_wave_s * 1000:.0f} ms; all 401")  # fmt: skip


@pytest.mark.parametrize("vendor", ["leapwork", "workato"])
async def test_control_the_same_forgery_with_the_runs_genuine_token_would_win(
    lab: Lab, service_factory: Start, vendor: str
) -> None:
    """Only the token stops the attack: body, timing and id are those of a winning one."""
    rule = with_rule(lab, vendor)
    await service_factory([rule], automation=NO_POLLING)
    gate = Gate(getattr(lab, vendor))
    fact_sheet, cid, _ = await attack(lab, vendor, rule)
    await eventually(lambda: run_started(lab, vendor), what="the run started")

    genuine = callback_tokens.sign(CALLBACK_SIGNING_KEY, vendor, cid)
    callback_url = f"{lab.service_url}/callbacks/{vendor}"
    assert (await forge(callback_url, genuine, forged_body(vendor, cid)))[0] == 202
    await eventually(lambda: lab.leanix.comments.get(fact_sheet), what="the forgery written")
    assert ATTACKER in sheet_text(lab, fact_sheet)
    assert f"{vendor}-failed" in tags(lab, fact_sheet)
    gate.opened.set()
