"""Sources: each HTTP endpoint's sender, how it authenticates, and how it is normalised."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.receiver import normalise
from service.receiver.normalise import Facts
from service.receiver.signatures import (
    BearerToken,
    BodyHmac,
    CallbackAuth,
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


def _callback(settings: CallbackSource, tolerance_s: int) -> Verifier | None:
    signed = StandardWebhooks(settings.secrets, tolerance_s) if settings.secrets else None
    bearer = BearerToken(settings.tokens) if settings.tokens else None
    if signed is None and bearer is None:
        return None
    return CallbackAuth(signed, bearer)


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
            _callback(settings.leapwork, tolerance),
            normalise.leapwork,
            "set LEAPWORK_CALLBACK_SECRET or LEAPWORK_CALLBACK_TOKEN",
        ),
        Source(
            "workato",
            "/callbacks/workato",
            _callback(settings.workato, tolerance),
            normalise.workato,
            "set WORKATO_CALLBACK_SECRET or WORKATO_CALLBACK_TOKEN",
        ),
    )
