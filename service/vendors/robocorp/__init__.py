"""Robocorp: start a process run; completion by its signed callback or by polling.

client.py     the Control Room API client (start, run status, find by correlation id)
callback.py   /callbacks/robocorp: hex HMAC of the body; normalise; completion
settings.py   [clients.robocorp] and [sources.robocorp], checked at start-up
start.py      a rule's target; the client once configured; the secret runs sign with
openapi.py    the callback endpoint's description
webhooks.py   its webhook subscription, for `python -m service subscriptions`
simulator.py  a faithful local Control Room; lab.py wires it into the lab
"""

from __future__ import annotations

from service.vendors.adapter import LabPlatform, Platform, Receiving, Running, Tables
from service.vendors.robocorp import callback, settings, start
from service.vendors.robocorp.openapi import API
from service.vendors.robocorp.settings import RobocorpApi
from service.vendors.robocorp.webhooks import RobocorpWebhooks
from service.vendors.tables import HmacSource


def _lab(run_duration_s: float) -> LabPlatform:
    from service.vendors.robocorp.lab import lab  # the simulator: for tests and the demo only

    return lab(run_duration_s)


PLATFORM = Platform[RobocorpApi, HmacSource](
    name="robocorp",
    tables=Tables(
        RobocorpApi,
        HmacSource,
        validate=settings.validate,
        source_doc="The Control Room webhook / callback secret(s).",
    ),
    receiving=Receiving(
        path="/callbacks/robocorp",
        verifier=callback.verifier,
        normalise=callback.normalise,
        enable_hint="set ROBOCORP_WEBHOOK_SECRET",
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
    webhooks=RobocorpWebhooks,
)
