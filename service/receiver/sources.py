"""Sources: each HTTP endpoint's sender, how it authenticates, and how it is normalised.

LeanIX's webhook is the system of record's own; every platform's callback endpoint comes
from the platform registry (service/vendors/registry.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from service.settings import SourcesSettings
from service.vendors import normalise, registry
from service.vendors.adapter import AnyPlatform, SharedKeys
from service.vendors.normalise import Facts
from service.vendors.signatures import ScopedAuthorization, StaticAuthorization, Verifier
from service.workspaces import Workspace


@dataclass(frozen=True)
class Source:
    name: str
    path: str
    verifier: Verifier | None  # None: no credential configured, the endpoint is closed
    normalise: Callable[[dict[str, Any]], Facts]
    enable_hint: str


def _leanix(settings: SourcesSettings, workspaces: Sequence[Workspace]) -> Source:
    """One endpoint for every workspace: an Authorization value names its workspace."""
    hint = "set LEANIX_WEBHOOK_AUTHORIZATION"
    verifier: Verifier | None = None
    scoped = [(w.source, w.authorization) for w in workspaces if w.source and w.authorization]
    if scoped:
        verifier = ScopedAuthorization(scoped)
    elif settings.leanix.authorization:
        verifier = StaticAuthorization(settings.leanix.authorization)
    return Source("leanix", "/webhooks/leanix", verifier, normalise.leanix, hint)


def _platform(platform: AnyPlatform, settings: SourcesSettings, keys: SharedKeys) -> Source:
    receiving = platform.receiving
    verifier = receiving.verifier(platform.source_settings(settings), keys)
    return Source(
        platform.name, receiving.path, verifier, receiving.normalise, receiving.enable_hint
    )


def build(settings: SourcesSettings, workspaces: Sequence[Workspace] = ()) -> tuple[Source, ...]:
    """Every source, each with its verifier (or None when it has no credential)."""
    keys = registry.shared_keys(settings)
    platforms = (_platform(p, settings, keys) for p in registry.PLATFORMS)
    return (_leanix(settings, workspaces), *platforms)
