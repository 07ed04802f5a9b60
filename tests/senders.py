"""Test-side senders: build each platform's request (headers + body) the way it signs it.

Signatures are computed here independently of service.vendors.signatures, so the tests
check the verifiers against the platforms' documented schemes, not against themselves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson

FIXTURES = Path(__file__).parent / "fixtures"

LEANIX_AUTH = "Basic bGVhbml4OnMzY3JldC1wYXNzd29yZA=="
LEANIX_AUTH_OLD = "Basic b2xkOnJvdGF0ZWQtb3V0"
UIPATH_SECRET = "uipath-signing-secret-0123456789"
ROBOCORP_SECRET = "robocorp-signing-secret-abcdef"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WHSEC_OLD = "whsec_" + base64.b64encode(b"an-older-rotated-secret-32-bytes").decode()
CALLBACK_TOKEN = "callback-bearer-token-7f3a9c"  # a static token: no longer accepted
CALLBACK_SIGNING_KEY = "callback-signing-key-5e1d0c9b8a7f6e5d4c3b"  # signs each run's token

ALL_SECRETS = (
    LEANIX_AUTH,
    LEANIX_AUTH_OLD,
    UIPATH_SECRET,
    ROBOCORP_SECRET,
    WHSEC,
    CALLBACK_TOKEN,
    CALLBACK_SIGNING_KEY,
)


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def json_headers(**extra: str) -> dict[str, str]:
    return {"Content-Type": "application/json", **extra}


def leanix(body: bytes | None = None, auth: str = LEANIX_AUTH) -> Request:
    body = fixture("leanix-factsheet-created.json") if body is None else body
    return Request("/webhooks/leanix", json_headers(Authorization=auth), body)


def uipath(body: bytes | None = None, secret: str = UIPATH_SECRET) -> Request:
    body = fixture("uipath-job-completed.json") if body is None else body
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return Request(
        "/callbacks/uipath", json_headers(**{"X-UiPath-Signature": signature.decode()}), body
    )


def robocorp(body: bytes | None = None, secret: str = ROBOCORP_SECRET) -> Request:
    body = fixture("robocorp-process-run-completed.json") if body is None else body
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return Request("/callbacks/robocorp", json_headers(**{"x-rc-signature": signature}), body)


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_callback(
    path: str,
    body: bytes,
    secret: str = WHSEC,
    msg_id: str | None = None,
    timestamp: int | None = None,
) -> Request:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = json_headers(
        **{
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": standard_signature(secret, msg_id, timestamp, body),
        }
    )
    return Request(path, headers, body)


def leapwork(body: bytes | None = None, **kwargs: object) -> Request:
    body = fixture("leapwork-run-finished.json") if body is None else body
    return signed_callback("/callbacks/leapwork", body, **kwargs)  # type: ignore[arg-type]


def workato(body: bytes | None = None, **kwargs: object) -> Request:
    body = fixture("workato-job-completed.json") if body is None else body
    return signed_callback("/callbacks/workato", body, **kwargs)  # type: ignore[arg-type]


def run_token(vendor: str, correlation_id: str, key: str = CALLBACK_SIGNING_KEY) -> str:
    """A run's own callback token: base64url(HMAC-SHA256(key, "<vendor>:<correlation id>"))."""
    digest = hmac.new(key.encode(), f"{vendor}:{correlation_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def body_correlation_id(body: bytes) -> str:
    """The body's correlationId, or "" when it has none."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    found = doc.get("correlationId") if isinstance(doc, dict) else None
    return found if isinstance(found, str) else ""


def bearer_callback(path: str, body: bytes, token: str | None = None) -> Request:
    """A Leapwork or Workato callback with a bearer token: by default the token of the run
    the body's correlationId names, as the run was given it when it started."""
    if token is None:
        token = run_token(path.rsplit("/", 1)[-1], body_correlation_id(body))
    return Request(path, json_headers(Authorization=f"Bearer {token}"), body)


def dumps(doc: object) -> bytes:
    return orjson.dumps(doc)
