"""Workato's settings: [clients.workato] (the API Platform, and the Developer API to poll
jobs) and [sources.workato]."""

from __future__ import annotations

from dataclasses import dataclass

from service.config import setting
from service.vendors.tables import (
    CallbackSource,
    http_url,
    positive,
    real_credentials,
    standard_webhooks_secrets,
)


@dataclass(frozen=True)
class WorkatoApi:
    api_token: str = setting(
        "", "API Platform token, sent as API-TOKEN", env="WORKATO_API_TOKEN", secret=True
    )
    timeout_s: float = 60.0
    developer_api_url: str = setting(
        "https://www.workato.com/api",
        "The Developer API, to poll the jobs of a rule's recipe (start.target.recipe_id): an "
        "API client's token (Authorization: Bearer; the legacy x-user-email/x-user-token keys "
        "are refused since 2025-07-14) and its data centre's URL (EU "
        "https://app.eu.workato.com/api, JP https://app.jp.workato.com/api, SG, AU, IL: "
        "app.<dc>.workato.com/api).",
        env="WORKATO_DEVELOPER_API_URL",
    )
    developer_api_token: str = setting(
        "", "empty: no polling", env="WORKATO_DEVELOPER_API_TOKEN", secret=True
    )
    run_deadline_s: float = setting(
        86400.0, "a run not completed a day after its start is written back as timed out"
    )


def validate(api: WorkatoApi, source: CallbackSource) -> None:
    positive(api.timeout_s, "clients.workato.timeout_s")
    http_url(api.developer_api_url, "clients.workato.developer_api_url")
    positive(api.run_deadline_s, "clients.workato.run_deadline_s")
    real_credentials(source.secrets, "sources.workato.secrets")
    standard_webhooks_secrets(source.secrets, "sources.workato.secrets")


def run_tokens(api: WorkatoApi) -> bool:
    """A configured client's runs call back with their own token: recipes cannot sign."""
    return bool(api.api_token)
