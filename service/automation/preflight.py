"""Preflight: each platform checks its rules' targets once, when the worker starts.

A platform with a start-up check (its adapter's `running.preflight`, e.g. Leapwork's
schedule variables) is handed the starts of the rules that will run on it. The checks
run beside the worker's start, log what they find, never stop start-up, and give way
when the worker stops first.
"""

from __future__ import annotations

import asyncio

import structlog

from service.automation.rules import Rule
from service.automation.starter import callback_for
from service.resources import Resources
from service.vendors import registry
from service.vendors.adapter import PlannedRun

log = structlog.get_logger("service.automation.preflight")


def planned_runs(rules: tuple[Rule, ...], vendor: str) -> list[PlannedRun]:
    """The starts of the rules that will run on `vendor` (dry runs start nothing)."""
    return [
        PlannedRun(rule.name, rule.target, rule.inputs)
        for rule in rules
        if rule.vendor == vendor and not rule.dry_run
    ]


async def check_targets(resources: Resources) -> None:
    """Run every configured platform's start-up check over its rules' starts."""
    for platform in registry.PLATFORMS:
        client = resources.runners.get(platform.name)
        check = platform.running.preflight
        if client is None or check is None:
            continue
        calls_back = callback_for(platform.name, resources)[1] is not None
        await check(client, planned_runs(resources.rules, platform.name), calls_back)


async def check_at_start(resources: Resources, halt: asyncio.Event) -> None:
    """Run the checks beside the worker's start; give them up when the worker stops first."""
    check = asyncio.create_task(check_targets(resources))
    halted = asyncio.create_task(halt.wait())
    try:
        await asyncio.wait({check, halted}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (check, halted):
            task.cancel()
        await asyncio.gather(check, halted, return_exceptions=True)
    if check.done() and not check.cancelled() and (error := check.exception()) is not None:
        log.error("preflight.crashed", error=repr(error))
