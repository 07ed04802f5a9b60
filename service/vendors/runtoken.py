"""Leapwork and Workato callbacks: authenticated by the run's own token, or a signature.

    Authorization: Bearer <the run's token>    given to the run as callbackToken / callback.token
    {"correlationId": "<the run's id>", ...}   the token is recomputed from this id

A static token shared by every run let anyone who saw one complete any run whose
correlation id they could compute from the LeanIX event: it is no longer accepted. The
checks, in order: no bearer token, or one that cannot be a run token -> 401, before the body
is parsed; a body that is not a JSON object with a `correlationId` string -> 400 (it cannot
be a callback of ours: the token is bound to that id); a token that is not that run's -> 401.
A Standard Webhooks signature (a secret the flow holds, never sent to the platform) is still
accepted instead. Error texts never echo the token or the body.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import orjson

from service import callback_tokens
from service.errors import MalformedEvent, Unauthorized
from service.vendors.signatures import OWS, Credential, StandardWebhooks, Verifier, message_id


@dataclass(frozen=True)
class RunToken:
    """`Authorization: Bearer <token>`, where the token is the run's own (callback_tokens.py)."""

    vendor: str
    keys: Sequence[str] = field(repr=False)

    def check(self, headers: Mapping[str, str]) -> None:
        bearer(headers)  # its shape, before the body is read: the run is named in the body

    def verify(self, headers: Mapping[str, str], body: bytes) -> Credential:
        token = bearer(headers)
        correlation_id = body_correlation_id(body)
        if not callback_tokens.matches(token, self.keys, self.vendor, correlation_id):
            raise Unauthorized("the bearer token is not the callback token of the body's run")
        return Credential("run-token", message_id=message_id(headers.get("webhook-id")))


def bearer(headers: Mapping[str, str]) -> str:
    """The bearer token, if it can be a run token at all; else Unauthorized."""
    scheme, _, token = headers.get("Authorization", "").strip(OWS).partition(" ")
    token = token.strip(OWS)  # as sent: no Unicode whitespace is taken away
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing Authorization: Bearer <the run's callback token>")
    if not callback_tokens.well_formed(token):
        raise Unauthorized("the bearer token is not a run's callback token")
    return token


def body_correlation_id(body: bytes) -> str:
    """The body's `correlationId`, which the run's token is bound to."""
    if not body.strip():
        raise MalformedEvent("the body is empty")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedEvent(f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise MalformedEvent("the body must be a JSON object with the run's 'correlationId'")
    correlation_id = payload.get("correlationId")
    if not isinstance(correlation_id, str) or not correlation_id:
        raise MalformedEvent(
            "a callback with a run's token needs that run's 'correlationId' (a string)"
        )
    return correlation_id


@dataclass(frozen=True)
class RunCallback:
    """Standard Webhooks if the callback is signed, else the run's own token."""

    signed: StandardWebhooks | None
    token: RunToken | None

    def check(self, headers: Mapping[str, str]) -> None:
        self._scheme(headers).check(headers)

    def verify(self, headers: Mapping[str, str], body: bytes) -> Credential:
        return self._scheme(headers).verify(headers, body)

    def _scheme(self, headers: Mapping[str, str]) -> Verifier:
        if headers.get("webhook-signature"):
            if self.signed is None:
                raise Unauthorized("signed callbacks are not enabled: no secret is configured")
            return self.signed
        if self.token is None:
            raise Unauthorized(
                "missing webhook-signature header (run tokens are not enabled: no "
                "callback signing key is configured)"
            )
        return self.token
