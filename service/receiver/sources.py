"""Sources: each HTTP endpoint's sender, how it authenticates, and how it is normalised."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.receiver import normalise
from service.receiver.normalise import Facts
from service.receiver.runtoken import RunCallback, RunToken
from service.receiver.signatures import (
    BodyHmac,
    StandardWebhooks,
    StaticAuthorization,
    Verifier,
)
from service.settings import CallbackSource, SourcesSettings


@dataclass(frozen=True)
class Source:
    name: str
    path: str
    verifier: Verifier | None  # None: no credential configured, the endpoint is closed
    normalise: Callable[[dict[str, Any]], Facts]
    enable_hint: str


def _callback(
    settings: CallbackSource, tolerance_s: int, token: RunToken | None
) -> Verifier | None:
    signed = StandardWebhooks(settings.secrets, tolerance_s) if settings.secrets else None
    if signed is None and token is None:
        return None
    return RunCallback(signed, token)


def _run_token(vendor: str, settings: SourcesSettings) -> RunToken | None:
    """Each run's own callback token (runtoken.py), if a signing key is configured."""
    keys = settings.callback_signing_keys
    return RunToken(vendor, keys) if keys else None


def build(settings: SourcesSettings) -> tuple[Source, ...]:
    """Every source, each with its verifier (or None when it has no credential)."""
    leanix = settings.leanix.authorization
    uipath = settings.uipath.secrets
    robocorp = settings.robocorp.secrets
    tolerance = settings.timestamp_tolerance_s
    return (
        Source(
            "leanix",
            "/webhooks/leanix",
            StaticAuthorization(leanix) if leanix else None,
            normalise.leanix,
            "set LEANIX_WEBHOOK_AUTHORIZATION",
        ),
        Source(
            "uipath",
            "/callbacks/uipath",
            BodyHmac("X-UiPath-Signature", "base64", uipath) if uipath else None,
            normalise.uipath,
            "set UIPATH_WEBHOOK_SECRET",
        ),
        Source(
            "robocorp",
            "/callbacks/robocorp",
            BodyHmac("x-rc-signature", "hex", robocorp) if robocorp else None,
            normalise.robocorp,
            "set ROBOCORP_WEBHOOK_SECRET",
        ),
        Source(
            "leapwork",
            "/callbacks/leapwork",
            _callback(settings.leapwork, tolerance, _run_token("leapwork", settings)),
            normalise.leapwork,
            "set CALLBACK_SIGNING_KEY (run tokens) or LEAPWORK_CALLBACK_SECRET",
        ),
        Source(
            "workato",
            "/callbacks/workato",
            _callback(settings.workato, tolerance, _run_token("workato", settings)),
            normalise.workato,
            "set CALLBACK_SIGNING_KEY (run tokens) or WORKATO_CALLBACK_SECRET",
        ),
    )
