"""Verifiers: who sent this request? Checked on the raw body bytes, before parsing.

Each verifier works in two steps. `check(headers)` runs before a byte of the body is
read: a static credential is compared in full, a signature header must be present and
of the right form (and a timestamp within the window), so a request that cannot be
authentic is refused without reading its body. `verify(headers, body)` checks again and
then the signature over the body.

Every comparison of a secret is constant-time and runs over every accepted value, so
neither timing nor early exit tells an attacker which one, or how much, matched. Header
values are compared as sent: only the spaces and tabs HTTP allows around a field value
are ignored, never other (Unicode) whitespace. Error texts say what is missing or wrong,
never what was expected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from service.errors import MalformedEvent, Unauthorized


@dataclass(frozen=True)
class Credential:
    """What authenticated a request: the scheme, and the sender's message id if it gave one."""

    scheme: str
    message_id: str | None = None
    source: str | None = None  # the one event source it vouches for (a LeanIX workspace's)


class Verifier(Protocol):
    def check(self, headers: Mapping[str, str]) -> None:
        """Refuse (Unauthorized) what the headers alone show cannot be authentic."""
        ...

    def verify(self, headers: Mapping[str, str], body: bytes) -> Credential:
        """Return the credential that authenticated the request, or raise Unauthorized."""
        ...


OWS = " \t"  # the optional whitespace HTTP allows around a field value (RFC 9110 5.5)
BASE64_SHA256 = re.compile(r"[A-Za-z0-9+/]{43}=")  # 32 bytes of standard base64
HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def matches_any(candidate: bytes, accepted: Iterable[bytes]) -> bool:
    """Compare against every accepted value in constant time, without early exit."""
    found = False
    for value in accepted:
        found |= hmac.compare_digest(candidate, value)
    return found


def raw(text: str) -> bytes:
    """A header's bytes as sent: aiohttp decodes non-UTF-8 bytes as surrogate escapes."""
    return text.encode("utf-8", "surrogateescape")


def _hmac_sha256(secret: bytes, message: bytes) -> bytes:
    return hmac.new(secret, message, hashlib.sha256).digest()


@dataclass(frozen=True)
class StaticAuthorization:
    """LeanIX: the subscription's static `authorizationHeader`, sent as `Authorization`."""

    values: Sequence[str] = field(repr=False)

    def check(self, headers: Mapping[str, str]) -> None:
        given = headers.get("Authorization", "").strip(OWS)
        if not given:
            raise Unauthorized("missing Authorization header")
        if not matches_any(raw(given), (v.encode() for v in self.values)):
            raise Unauthorized("the Authorization header is not an accepted value")

    def verify(self, headers: Mapping[str, str], body: bytes) -> Credential:
        self.check(headers)
        return Credential("authorization-header")


@dataclass(frozen=True)
class ScopedAuthorization:
    """LeanIX with several workspaces: each workspace's static Authorization values, which
    vouch for that workspace's events only (the CloudEvent source `scopes` names)."""

    scopes: Sequence[tuple[str, Sequence[str]]] = field(repr=False)  # (source, values)

    def check(self, headers: Mapping[str, str]) -> None:
        self._source(headers)

    def verify(self, headers: Mapping[str, str], body: bytes) -> Credential:
        return Credential("authorization-header", source=self._source(headers))

    def _source(self, headers: Mapping[str, str]) -> str:
        given = headers.get("Authorization", "").strip(OWS)
        if not given:
            raise Unauthorized("missing Authorization header")
        found = None
        for source, values in self.scopes:  # every scope compared: no early exit
            if matches_any(raw(given), (v.encode() for v in values)):
                found = source
        if found is None:
            raise Unauthorized("the Authorization header is not an accepted value")
        return found


@dataclass(frozen=True)
class BodyHmac:
    """HMAC-SHA256 of the raw body in one header: UiPath (base64) and Robocorp (hex)."""

    header: str
    encoding: str  # "base64" or "hex"
    secrets: Sequence[str] = field(repr=False)

    def check(self, headers: Mapping[str, str]) -> None:
        self._given(headers)

    def verify(self, headers: Mapping[str, str], body: bytes) -> Credential:
        candidate = self._given(headers)
        if not matches_any(candidate, (self._sign(s, body) for s in self.secrets)):
            raise Unauthorized(f"the {self.header} signature does not match the body")
        return Credential(f"hmac-sha256-{self.encoding}")

    def _given(self, headers: Mapping[str, str]) -> bytes:
        """The signature sent, if it has the form of one (hex in lower case)."""
        given = headers.get(self.header, "").strip(OWS)
        if not given:
            raise Unauthorized(f"missing {self.header} header")
        form = HEX_SHA256 if self.encoding == "hex" else BASE64_SHA256
        if not form.fullmatch(given):
            raise Unauthorized(f"{self.header} is not a {self.encoding} HMAC-SHA256 signature")
        return given.lower().encode() if self.encoding == "hex" else given.encode()

    def _sign(self, secret: str, body: bytes) -> bytes:
        digest = _hmac_sha256(secret.encode(), body)
        if self.encoding == "hex":
            return digest.hex().encode()
        return base64.b64encode(digest)


def message_id(value: str | None) -> str | None:
    """The sender's `webhook-id` (None if absent); bytes that are not UTF-8 are refused."""
    if not value:
        return None
    try:
        value.encode()
    except UnicodeEncodeError:  # the header's bytes were not UTF-8 (surrogate-escaped)
        raise MalformedEvent("header webhook-id is not valid UTF-8") from None
    return value


def decode_whsec(secret: str) -> bytes:
    """The key bytes of a Standard Webhooks secret (`whsec_` prefix optional)."""
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign_standard(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` Standard Webhooks signature of one message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(_hmac_sha256(decode_whsec(secret), signed)).decode()


@dataclass(frozen=True)
class StandardWebhooks:
    """Standard Webhooks v1: `webhook-id`, `webhook-timestamp`, `webhook-signature`."""

    secrets: Sequence[str] = field(repr=False)
    tolerance_s: int = 300
    clock: Callable[[], float] = time.time

    def check(self, headers: Mapping[str, str]) -> None:
        self._headers(headers)

    def verify(self, headers: Mapping[str, str], body: bytes) -> Credential:
        msg_id, timestamp, signatures = self._headers(headers)
        signed = raw(f"{msg_id}.{timestamp}.") + body
        expected = [base64.b64encode(_hmac_sha256(decode_whsec(s), signed)) for s in self.secrets]
        found = False
        for candidate in signatures:
            found |= matches_any(candidate, expected)
        if not found:
            raise Unauthorized("no webhook-signature matches the body")
        return Credential("standard-webhooks", message_id=message_id(msg_id))

    def _headers(self, headers: Mapping[str, str]) -> tuple[str, int, list[bytes]]:
        """(id, timestamp, v1 signatures), each present, of the right form and in time."""
        names = ("webhook-id", "webhook-timestamp", "webhook-signature")
        missing = [n for n in names if not headers.get(n)]
        if missing:
            raise Unauthorized(f"missing header(s): {', '.join(missing)}")
        raw_ts = headers["webhook-timestamp"].strip(OWS)
        if not raw_ts.isascii() or not raw_ts.isdigit() or len(raw_ts) > 12:
            raise Unauthorized("webhook-timestamp must be an integer of unix seconds")
        self._check_timestamp(int(raw_ts))
        signatures = _v1_signatures(headers["webhook-signature"])
        if not signatures:
            raise Unauthorized("webhook-signature holds no v1,<base64 HMAC-SHA256> signature")
        return headers["webhook-id"], int(raw_ts), signatures

    def _check_timestamp(self, timestamp: int) -> None:
        now = self.clock()
        if timestamp < now - self.tolerance_s:
            raise Unauthorized("webhook-timestamp is too old")
        if timestamp > now + self.tolerance_s:
            raise Unauthorized("webhook-timestamp is too far in the future")


def _v1_signatures(header: str) -> list[bytes]:
    """The v1 signatures of the form of one, from the space-delimited list."""
    found = []
    for part in re.split(r"[ \t]+", header):
        version, _, signature = part.partition(",")
        if version == "v1" and BASE64_SHA256.fullmatch(signature):
            found.append(signature.encode())
    return found
