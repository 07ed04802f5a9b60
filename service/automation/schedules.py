"""Leapwork schedules, checked at start-up for the variables our runs pass.

Leapwork applies a runNow variable only when the schedule defines it and drops the others
without a word: a schedule without `callbackUrl` never calls back (its runs complete by
polling alone), one without `correlationId` or an input's name runs without that value.
The worker reads each Leapwork rule's schedule once, when it starts, and logs
`leapwork.schedule_variables_missing` naming the schedule, its rules and the variables it
lacks. [U] Leapwork documents no field listing a schedule's variables: a controller that
sends none gets `leapwork.schedule_variables_unverified`, naming what to define by hand.
It never stops start-up, and never logs a variable's value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

import structlog

from service.automation.rules import Rule
from service.automation.starter import callback_for
from service.clients.leapwork import LeapworkClient, schedule_variables
from service.errors import VendorRejected, VendorUnavailable
from service.resources import Resources

log = structlog.get_logger("service.automation.schedules")

MISSING_HINT = "define them on the schedule in Leapwork Studio: runNow drops the others"


def wanted_variables(
    rules: Iterable[Rule], resources: Resources
) -> dict[str, tuple[list[str], set[str]]]:
    """Per Leapwork schedule: its rules' names and every variable their runs pass."""
    url, secret = callback_for("leapwork", resources)
    wanted: dict[str, tuple[list[str], set[str]]] = {}
    for rule in rules:
        schedule = rule.target.get("schedule_id")
        if rule.vendor != "leapwork" or rule.dry_run or not isinstance(schedule, str):
            continue
        names, variables = wanted.setdefault(schedule, ([], set()))
        names.append(rule.name)
        variables.update(schedule_variables(rule.inputs, "-", url, secret))
    return wanted


async def check_schedules(resources: Resources) -> None:
    """Read each Leapwork rule's schedule and log the variables it does not define."""
    client = resources.runners.get("leapwork")
    if not isinstance(client, LeapworkClient):
        return
    for schedule, (rules, variables) in wanted_variables(resources.rules, resources).items():
        await _check(client, schedule, rules, variables)


async def _check(
    client: LeapworkClient, schedule: str, rules: list[str], variables: set[str]
) -> None:
    context: Mapping[str, object] = {"schedule_id": schedule, "rules": rules}
    try:
        defined = await client.defined_variables(schedule)
    except (VendorUnavailable, VendorRejected) as exc:
        log.warning("leapwork.schedule_check_failed", **context, error=str(exc))
        return
    if defined is None:
        log.info("leapwork.schedule_variables_unverified", **context, define=sorted(variables))
        return
    missing = sorted(variables - defined)
    if missing:
        log.warning(
            "leapwork.schedule_variables_missing", **context, missing=missing, hint=MISSING_HINT
        )


async def check_at_start(resources: Resources, halt: asyncio.Event) -> None:
    """Run the check beside the worker's start; give it up when the worker stops first."""
    check = asyncio.create_task(check_schedules(resources))
    halted = asyncio.create_task(halt.wait())
    try:
        await asyncio.wait({check, halted}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (check, halted):
            task.cancel()
        await asyncio.gather(check, halted, return_exceptions=True)
    if check.done() and not check.cancelled() and (error := check.exception()) is not None:
        log.error("leapwork.schedule_check_crashed", error=repr(error))
