"""A user's handler module on the kit, in the whole service: its lifespan opens before
the worker consumes and closes after it drained; its handler calls LeanIX through
`context.leanix`, beside the built-in automation (itself a module on the kit)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from service import CloudEvent, Context, Registry, Services, StateKey
from service.simulators.lab import Lab
from tests.e2e.conftest import Service
from tests.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

NOTE = StateKey("myteam.note", str)


async def test_a_users_module_runs_with_its_lifespan_beside_the_automation(
    lab: Lab, service_factory: Callable[..., Awaitable[Service]]
) -> None:
    seen: list[str] = []
    mine = Registry()

    @mine.lifespan
    async def note(services: Services) -> AsyncIterator[None]:
        services.state[NOTE] = "noted by myteam"
        seen.append("open")
        try:
            yield
        finally:
            seen.append("close")

    @mine.handler("leanix.factsheet.updated", name="myteam.note", idempotent=True)
    async def comment(event: CloudEvent, context: Context) -> None:
        await context.leanix.create_comment(event.subject or "", context.state[NOTE])

    service = await service_factory([lab.rule("leapwork")], registry=mine)
    fact_sheet = lab.leanix.add_fact_sheet("Application", "Billing")
    assert await lab.change(fact_sheet) == 202

    def notes() -> list[str]:
        return [c["message"] for c in lab.leanix.comments.get(fact_sheet, [])]

    await eventually(lambda: "noted by myteam" in notes(), what="the user's comment")
    await eventually(lambda: len(notes()) == 2, what="the automation's write-back comment")
    await service.halt()
    assert seen == ["open", "close"]
