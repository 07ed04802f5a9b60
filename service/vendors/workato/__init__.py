"""Workato: call an API recipe; completion by its answer, the recipe's callback, polling
its recipe function's jobs, or the deadline.

    client.py     the API Platform client (call the endpoint, read its answer)
    jobs.py       the Developer API client (a recipe's jobs, found by correlation id)
    callback.py   /callbacks/workato: the run's token or a signature; normalise; completion
    settings.py   [clients.workato] and [sources.workato], checked at start-up
    start.py      a rule's target; the client once configured; the run's callback token
    openapi.py    the callback endpoint's description
    simulator.py  a faithful local Workato; lab.py wires it into the lab
"""

from __future__ import annotations

from service.vendors.adapter import LabPlatform, Platform, Receiving, Running, Tables
from service.vendors.tables import CallbackSource
from service.vendors.workato import callback, settings, start
from service.vendors.workato.openapi import API
from service.vendors.workato.settings import WorkatoApi


def _lab(run_duration_s: float) -> LabPlatform:
    from service.vendors.workato.lab import lab  # the simulator: for tests and the demo only

    return lab(run_duration_s)


PLATFORM = Platform[WorkatoApi, CallbackSource](
    name="workato",
    tables=Tables(
        WorkatoApi, CallbackSource, validate=settings.validate, run_tokens=settings.run_tokens
    ),
    receiving=Receiving(
        path="/callbacks/workato",
        verifier=callback.verifier,
        normalise=callback.normalise,
        enable_hint="set CALLBACK_SIGNING_KEY (run tokens) or WORKATO_CALLBACK_SECRET",
        completions=callback.COMPLETIONS,
        completion=callback.completion,
    ),
    running=Running(
        client=start.client,
        check_target=start.check_target,
        credential=start.credential,
    ),
    api=API,
    lab=_lab,
)
