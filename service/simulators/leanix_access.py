"""Who may call the LeanIX simulator, and how often: access tokens and per-user rate limits.

An API token comes in `Basic base64(apitoken:<token>)`; the access token handed out for it
is JWT-shaped, signed HS256 with the simulator's own key. Each technical user has a token
bucket that refills at the configured rate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass
class Issued:
    """An access token the simulator handed out."""

    user_id: str
    expires_at: float  # on the simulator's epoch clock


@dataclass
class Bucket:
    """Per-user token bucket: `rate` requests a second, as many at once."""

    rate: float
    tokens: float
    stamp: float = field(default_factory=time.monotonic)

    def take(self) -> float:
        """Take a token: 0 if allowed, else the seconds until one is due."""
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return (1 - self.tokens) / self.rate
        self.tokens -= 1
        return 0.0


def basic_api_token(header: str) -> str | None:
    """The API token in `Basic base64(apitoken:<token>)`, else None."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
    except ValueError:
        return None
    return password if user == "apitoken" else None


def jwt(claims: dict[str, Any], key: bytes) -> str:
    """A JWT carrying `claims`, signed HS256 with `key`."""
    header = _b64url(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
    signing_input = f"{header}.{_b64url(orjson.dumps(claims))}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256)
    return f"{signing_input}.{_b64url(signature.digest())}"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
