"""Tables: the settings shapes and checks platforms share (adapter.Tables).

    HmacSource       [sources.<name>] of a platform that signs its webhook with a secret
    CallbackSource   [sources.<name>] of one whose callbacks may be Standard Webhooks signed

The checks raise ConfigError naming the key and never echo a value: it may be a secret.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass

from service.config import setting
from service.errors import ConfigError

BLANK_CREDENTIAL = "holds an empty or whitespace-only credential: remove it or give a real value"


@dataclass(frozen=True)
class HmacSource:
    secrets: tuple[str, ...] = setting((), env="{table}_WEBHOOK_SECRET", secret=True)


@dataclass(frozen=True)
class CallbackSource:
    secrets: tuple[str, ...] = setting(
        (), "Standard Webhooks secrets (whsec_...)", env="{table}_CALLBACK_SECRET", secret=True
    )


def check(ok: bool, key: str, problem: str) -> None:
    """ConfigError naming `key` unless `ok`."""
    if not ok:
        raise ConfigError(key, problem)


def positive(value: float, key: str) -> None:
    check(value > 0, key, "must be positive")


def http_url(value: str, key: str) -> None:
    check(value.startswith(("http://", "https://")), key, "an http(s) URL")


def real_credentials(values: Iterable[str], key: str) -> None:
    """An empty or blank credential would let a request without one in: refuse to start."""
    check(all(value.strip() for value in values), key, BLANK_CREDENTIAL)


def standard_webhooks_secrets(secrets: Iterable[str], key: str) -> None:
    """Each is `whsec_<base64>` of at least 16 bytes."""
    for secret in secrets:
        try:
            raw = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except ValueError:
            raise ConfigError(key, "a Standard Webhooks secret is whsec_<base64>") from None
        check(len(raw) >= 16, key, "secret too short: use at least 24 random bytes")
