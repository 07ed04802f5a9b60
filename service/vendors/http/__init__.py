"""The `http` platform: start a run by calling any HTTPS endpoint a rule names (Power
Automate HTTP-triggered flows, n8n, Jenkins, GitHub workflow_dispatch, in-house services);
learn its end from a signed callback, by polling the status URL the start answered, or
by its deadline.

    settings.py   [clients.http]: named credentials bound to hosts; [sources.http]: secrets
    endpoint.py   a rule's start.target, checked at start-up; the URL built with the
                  inputs' values confined to its path and query
    client.py     the run client: start and status calls
    answer.py     start and status answers -> RunState
    callback.py   /callbacks/http: verification, normalisation, completion
    preflight.py  at start-up, the rules whose first run would be refused, logged
    openapi.py    the callback endpoint's description
    simulator.py  a simulated endpoint; lab.py wires it into the lab
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from service.runs import RunClient
from service.vendors.adapter import LabPlatform, Platform, Receiving, Running, Tables
from service.vendors.http import callback
from service.vendors.http.client import HttpClient
from service.vendors.http.endpoint import endpoint
from service.vendors.http.openapi import API
from service.vendors.http.preflight import check_rules
from service.vendors.http.settings import HttpApi, HttpSource, validate


def _client(session: aiohttp.ClientSession, settings: HttpApi) -> RunClient | None:
    """Always there: each rule names its endpoint, and its credential by name."""
    return HttpClient(session, settings)


def _check_target(target: Mapping[str, Any], key: str) -> None:
    endpoint(target, key)


def _lab(run_duration_s: float) -> LabPlatform:
    from service.vendors.http.lab import lab  # the simulator: for tests and the demo only

    return lab(run_duration_s)


PLATFORM = Platform[HttpApi, HttpSource](
    name="http",
    tables=Tables(
        HttpApi,
        HttpSource,
        validate=validate,
        client_doc="Any HTTPS endpoint a rule names (README: Any HTTP endpoint)",
        source_doc="/callbacks/http: Standard Webhooks secrets (run tokens need none)",
    ),
    receiving=Receiving(
        path=callback.PATH,
        verifier=callback.verifier,
        normalise=callback.normalise,
        enable_hint=callback.ENABLE_HINT,
        completions=callback.COMPLETIONS,
        completion=callback.completion,
    ),
    running=Running(
        client=_client,
        check_target=_check_target,
        credential=callback.credential,
        preflight=check_rules,
    ),
    api=API,
    lab=_lab,
)
