"""Robocorp's settings: [clients.robocorp] (the Control Room API) and [sources.robocorp]."""

from __future__ import annotations

from dataclasses import dataclass

from service.config import setting
from service.vendors.tables import HmacSource, positive, real_credentials


@dataclass(frozen=True)
class RobocorpApi:
    base_url: str = setting("https://cloud.robocorp.com/api/v1", env="ROBOCORP_BASE_URL")
    api_key: str = setting("", 'sent as "RC-WSKEY <key>"', env="ROBOCORP_API_KEY", secret=True)
    workspace_id: str = setting("", env="ROBOCORP_WORKSPACE_ID")
    timeout_s: float = 30.0


def validate(api: RobocorpApi, source: HmacSource) -> None:
    positive(api.timeout_s, "clients.robocorp.timeout_s")
    real_credentials(source.secrets, "sources.robocorp.secrets")
