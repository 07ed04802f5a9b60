"""UiPath's settings: [clients.uipath] (Orchestrator, an external application) and
[sources.uipath] (the tenant webhook's secret)."""

from __future__ import annotations

from dataclasses import dataclass

from service.config import setting
from service.vendors.tables import HmacSource, check, positive, real_credentials


@dataclass(frozen=True)
class UipathApi:
    base_url: str = setting(
        "", "https://cloud.uipath.com/<org>/<tenant>/orchestrator_", env="UIPATH_BASE_URL"
    )
    identity_url: str = setting(
        "https://cloud.uipath.com/identity_/connect/token", env="UIPATH_IDENTITY_URL"
    )
    client_id: str = setting(
        "", "an external application (client credentials)", env="UIPATH_CLIENT_ID"
    )
    client_secret: str = setting("", env="UIPATH_CLIENT_SECRET", secret=True)
    scopes: str = setting(
        "OR.Jobs",
        'space-separated, the least the calls need (README "UiPath scopes"); or '
        '"OR.Jobs.Read OR.Jobs.Write"',
        env="UIPATH_SCOPES",
    )
    folder_id: int = setting(0, "sent as X-UIPATH-OrganizationUnitId", env="UIPATH_FOLDER_ID")
    timeout_s: float = 30.0


def validate(api: UipathApi, source: HmacSource) -> None:
    check(bool(api.scopes.split()), "clients.uipath.scopes", "e.g. OR.Jobs")
    positive(api.timeout_s, "clients.uipath.timeout_s")
    real_credentials(source.secrets, "sources.uipath.secrets")
