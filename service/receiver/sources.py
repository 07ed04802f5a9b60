"""Sources: each HTTP endpoint's sender, how it authenticates, and how it is normalised.

LeanIX's webhook is the system of record's own; every platform's callback endpoint comes
from the platform registry (service/vendors/registry.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.receiver import normalise
from service.receiver.normalise import Facts
from service.receiver.signatures import StaticAuthorization, Verifier
from service.settings import SourcesSettings
from service.vendors import registry
from service.vendors.adapter import AnyPlatform, SharedKeys


@dataclass(frozen=True)
class Source:
    name: str
    path: str
    verifier: Verifier | None  # None: no credential configured, the endpoint is closed
    normalise: Callable[[dict[str, Any]], Facts]
    enable_hint: str


def _leanix(settings: SourcesSettings) -> Source:
    values = settings.leanix.authorization
    verifier = StaticAuthorization(values) if values else None
    hint = "set LEANIX_WEBHOOK_AUTHORIZATION"
    return Source("leanix", "/webhooks/leanix", verifier, normalise.leanix, hint)


def _platform(platform: AnyPlatform, settings: SourcesSettings, keys: SharedKeys) -> Source:
    receiving = platform.receiving
    verifier = receiving.verifier(platform.source_settings(settings), keys)
    return Source(
        platform.name, receiving.path, verifier, receiving.normalise, receiving.enable_hint
    )


def build(settings: SourcesSettings) -> tuple[Source, ...]:
    """Every source, each with its verifier (or None when it has no credential)."""
    keys = registry.shared_keys(settings)
    platforms = (_platform(p, settings, keys) for p in registry.PLATFORMS)
    return (_leanix(settings), *platforms)
