"""UiPath: start an Orchestrator job; completion by the tenant webhook or by polling.

client.py     the Orchestrator API client (token, StartJobs, job status, find by Reference)
callback.py   /callbacks/uipath: base64 HMAC of the body; normalise; completion
settings.py   [clients.uipath] and [sources.uipath], checked at start-up
start.py      a rule's target; the client once configured
openapi.py    the webhook endpoint's description
webhooks.py   its webhook subscription, for `python -m service subscriptions`
simulator.py  a faithful local Orchestrator; lab.py wires it into the lab
"""

from __future__ import annotations

from service.vendors.adapter import LabPlatform, Platform, Receiving, Running, Tables
from service.vendors.tables import HmacSource
from service.vendors.uipath import callback, settings, start
from service.vendors.uipath.openapi import API
from service.vendors.uipath.settings import UipathApi
from service.vendors.uipath.webhooks import UipathWebhooks


def _lab(run_duration_s: float) -> LabPlatform:
    from service.vendors.uipath.lab import lab  # the simulator: for tests and the demo only

    return lab(run_duration_s)


PLATFORM = Platform[UipathApi, HmacSource](
    name="uipath",
    tables=Tables(
        UipathApi,
        HmacSource,
        validate=settings.validate,
        source_doc="The Orchestrator webhook's secret(s).",
    ),
    receiving=Receiving(
        path="/callbacks/uipath",
        verifier=callback.verifier,
        normalise=callback.normalise,
        enable_hint="set UIPATH_WEBHOOK_SECRET",
        completions=callback.COMPLETIONS,
        completion=callback.completion,
    ),
    running=Running(
        client=start.client,
        check_target=start.check_target,
    ),
    api=API,
    lab=_lab,
    webhooks=UipathWebhooks,
)
