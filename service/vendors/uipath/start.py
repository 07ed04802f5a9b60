"""UiPath runs: a rule's target and the client that starts Orchestrator jobs.

    start = { vendor = "uipath", target = { release_key = "...", folder_id = 1 } }

Runs are not given a callback: UiPath calls back through its tenant webhook, if one is
configured in Orchestrator, and is polled either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from service.runs import RunClient
from service.vendors.adapter import require
from service.vendors.uipath.client import UipathClient
from service.vendors.uipath.settings import UipathApi


def client(session: aiohttp.ClientSession, settings: UipathApi) -> RunClient | None:
    """The client, once the Orchestrator URL and an external application are set."""
    if not (settings.base_url and settings.client_id and settings.client_secret):
        return None
    return UipathClient(session, settings)


def check_target(target: Mapping[str, Any], key: str) -> None:
    require(target, ("release_key",), "uipath", key)
