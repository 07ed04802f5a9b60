"""Preflight: when the worker starts, say which `http` rules would be refused at their
first run (an unknown credential, one not bound to the URL's host, plain http, a URL
variable no input fills), so they are fixed before an event is dead-lettered for it.

Logs only, never raises, and never names a header value.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from service.errors import VendorRejected
from service.runs import RunClient
from service.vendors.adapter import PlannedRun
from service.vendors.http.client import HttpClient
from service.vendors.http.endpoint import VARIABLE

log = structlog.get_logger("service.vendors.http")


async def check_rules(client: RunClient, runs: Sequence[PlannedRun], calls_back: bool) -> None:
    """Log each rule whose target the client would refuse; nothing is called."""
    if not isinstance(client, HttpClient):
        return
    for run in runs:
        problem = _problem(client, run)
        if problem is not None:
            log.error("http.rule_refused_at_start", rule=run.rule, problem=problem)


def _problem(client: HttpClient, run: PlannedRun) -> str | None:
    try:
        spec = client.endpoint(run.target)
        client.headers(spec, spec.origin)
    except VendorRejected as exc:
        return str(exc)
    missing = [name for name in VARIABLE.findall(spec.url) if name not in run.inputs]
    if missing:
        return f"start.inputs has no {missing[0]!r} for the URL's {{{missing[0]}}}"
    return None
