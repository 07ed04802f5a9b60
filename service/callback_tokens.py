"""Per-run callback tokens: each run's own credential for its completion callback.

    token = base64url(HMAC-SHA256(key, "<vendor>:<correlation id>")), 43 characters

The starter hands a Leapwork or Workato run its token with the callback URL; the flow or
recipe sends it back as `Authorization: Bearer <token>` with the run's `correlationId` in
the body, and the receiver recomputes it from that id. A token completes its own run
only: correlation ids can be computed from a LeanIX event, tokens cannot without the key
(`sources.callback_signing_keys`), which never leaves the service. The first key signs;
every key verifies, so a key can be rotated while runs are in flight.

The vendor is signed too, so a Workato run's token cannot complete a Leapwork run.
Nothing here logs, and no token or key appears in an error text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable

TOKEN_CHARS = 43  # base64url of a 32-byte digest, unpadded
SHAPE = re.compile(r"[A-Za-z0-9_-]{43}\Z")
MIN_KEY_CHARS = 32


def sign(key: str, vendor: str, correlation_id: str) -> str:
    """The token of the run `correlation_id` on `vendor`, under `key`."""
    message = f"{vendor}:{correlation_id}".encode()
    digest = hmac.new(key.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def well_formed(token: str) -> bool:
    """Whether `token` could be a run token at all (checked before reading the body)."""
    return SHAPE.match(token) is not None


def matches(token: str, keys: Iterable[str], vendor: str, correlation_id: str) -> bool:
    """Whether `token` is the run's token under any key: constant-time, without early exit."""
    if not well_formed(token):
        return False
    found = False
    for key in keys:
        found |= hmac.compare_digest(token.encode(), sign(key, vendor, correlation_id).encode())
    return found
