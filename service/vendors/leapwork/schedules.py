"""Leapwork schedules, checked at start-up for the variables our runs pass.

Leapwork applies a runNow variable only when the schedule defines it and drops the others
without a word: a schedule without `callbackUrl` never calls back (its runs complete by
polling alone), one without `correlationId` or an input's name runs without that value.
When the worker starts, the automation loop hands this preflight each Leapwork rule's
start (automation/preflight.py); it reads each schedule once and logs
`leapwork.schedule_variables_missing` naming the schedule, its rules and the variables it
lacks. [U] Leapwork documents no field listing a schedule's variables: a controller that
sends none gets `leapwork.schedule_variables_unverified`, naming what to define by hand.
It never stops start-up, and never logs a variable's value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import structlog

from service.errors import VendorRejected, VendorUnavailable
from service.runs import RunClient
from service.vendors.adapter import PlannedRun
from service.vendors.leapwork.client import LeapworkClient, schedule_variables

log = structlog.get_logger("service.vendors.leapwork.schedules")

MISSING_HINT = "define them on the schedule in Leapwork Studio: runNow drops the others"
# Stand-ins: only which variables a run passes matters here, never their values.
_SOME_URL, _SOME_TOKEN = "-", "-"


def wanted_variables(
    runs: Iterable[PlannedRun], calls_back: bool
) -> dict[str, tuple[list[str], set[str]]]:
    """Per Leapwork schedule: its rules' names and every variable their runs pass."""
    url, token = (_SOME_URL, _SOME_TOKEN) if calls_back else (None, None)
    wanted: dict[str, tuple[list[str], set[str]]] = {}
    for run in runs:
        schedule = run.target.get("schedule_id")
        if not isinstance(schedule, str):
            continue
        names, variables = wanted.setdefault(schedule, ([], set()))
        names.append(run.rule)
        variables.update(schedule_variables(run.inputs, "-", url, token))
    return wanted


async def check_schedules(client: RunClient, runs: Iterable[PlannedRun], calls_back: bool) -> None:
    """Read each rule's schedule and log the variables it does not define; never raise."""
    if not isinstance(client, LeapworkClient):
        return
    try:
        for schedule, (rules, variables) in wanted_variables(runs, calls_back).items():
            await _check(client, schedule, rules, variables)
    except Exception as error:  # a bug here must not stop the worker
        log.error("leapwork.schedule_check_crashed", error=repr(error))


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
