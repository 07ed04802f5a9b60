"""Leapwork's settings: [clients.leapwork] (the Controller's REST API) and [sources.leapwork]."""

from __future__ import annotations

from dataclasses import dataclass

from service.config import setting
from service.vendors.tables import (
    CallbackSource,
    positive,
    real_credentials,
    standard_webhooks_secrets,
)


@dataclass(frozen=True)
class LeapworkApi:
    base_url: str = setting(
        "http://localhost:9001", "the Controller's REST API", env="LEAPWORK_BASE_URL"
    )
    access_key: str = setting("", env="LEAPWORK_ACCESS_KEY", secret=True)
    timeout_s: float = 30.0


def validate(api: LeapworkApi, source: CallbackSource) -> None:
    positive(api.timeout_s, "clients.leapwork.timeout_s")
    real_credentials(source.secrets, "sources.leapwork.secrets")
    standard_webhooks_secrets(source.secrets, "sources.leapwork.secrets")


def run_tokens(api: LeapworkApi) -> bool:
    """A configured client's runs call back with their own token: flows cannot sign."""
    return bool(api.access_key)
