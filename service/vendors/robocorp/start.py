"""Robocorp runs: a rule's target, the client that starts process runs, and the secret
a run signs its callback with.

    start = { vendor = "robocorp", target = { process_id = "..." } }
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from service.runs import RunClient
from service.vendors.adapter import SharedKeys, require
from service.vendors.robocorp.client import RobocorpClient
from service.vendors.robocorp.settings import RobocorpApi
from service.vendors.tables import HmacSource


def client(session: aiohttp.ClientSession, settings: RobocorpApi) -> RunClient | None:
    """The client, once an API key and a workspace are set."""
    if not (settings.api_key and settings.workspace_id):
        return None
    return RobocorpClient(session, settings)


def check_target(target: Mapping[str, Any], key: str) -> None:
    require(target, ("process_id",), "robocorp", key)


def credential(source: HmacSource, keys: SharedKeys, correlation_id: str) -> str | None:
    """Robocorp signs its callbacks with the webhook secret it is given."""
    return source.secrets[0] if source.secrets else None
