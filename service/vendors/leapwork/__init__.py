"""Leapwork: run a schedule now; completion by the flow's callback or by polling the run.

client.py     the REST API v4 client (runNow, run status, run items, schedules)
callback.py   /callbacks/leapwork: the run's token or a signature; normalise; completion
settings.py   [clients.leapwork] and [sources.leapwork], checked at start-up
start.py      a rule's target; the client once configured; the run's callback token
schedules.py  the start-up check that each schedule defines the variables runs pass
openapi.py    the callback endpoint's description
simulator.py  a faithful local Leapwork; lab.py wires it into the lab
"""

from __future__ import annotations

from service.vendors.adapter import LabPlatform, Platform, Receiving, Running, Tables
from service.vendors.leapwork import callback, schedules, settings, start
from service.vendors.leapwork.openapi import API
from service.vendors.leapwork.settings import LeapworkApi
from service.vendors.tables import CallbackSource


def _lab(run_duration_s: float) -> LabPlatform:
    from service.vendors.leapwork.lab import lab  # the simulator: for tests and the demo only

    return lab(run_duration_s)


PLATFORM = Platform[LeapworkApi, CallbackSource](
    name="leapwork",
    tables=Tables(
        LeapworkApi, CallbackSource, validate=settings.validate, run_tokens=settings.run_tokens
    ),
    receiving=Receiving(
        path="/callbacks/leapwork",
        verifier=callback.verifier,
        normalise=callback.normalise,
        enable_hint="set CALLBACK_SIGNING_KEY (run tokens) or LEAPWORK_CALLBACK_SECRET",
        completions=callback.COMPLETIONS,
        completion=callback.completion,
    ),
    running=Running(
        client=start.client,
        check_target=start.check_target,
        credential=start.credential,
        preflight=schedules.check_schedules,
    ),
    api=API,
    lab=_lab,
)
