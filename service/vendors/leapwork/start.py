"""Leapwork runs: a rule's target, and the client that starts schedules.

start = { vendor = "leapwork", target = { schedule_id = "<GUID>" } }
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import aiohttp

from service.errors import ConfigError
from service.runs import RunClient
from service.vendors.adapter import SharedKeys, require, run_token
from service.vendors.leapwork.client import LeapworkClient
from service.vendors.leapwork.settings import LeapworkApi
from service.vendors.tables import CallbackSource


def client(session: aiohttp.ClientSession, settings: LeapworkApi) -> RunClient | None:
    """The client, once an access key is set."""
    return LeapworkClient(session, settings) if settings.access_key else None


def credential(source: CallbackSource, keys: SharedKeys, correlation_id: str) -> str | None:
    """A flow cannot sign: each run gets its own token, bound to its correlation id
    (callback_tokens.py), so a token seen in one run's start cannot complete another."""
    return run_token("leapwork", keys, correlation_id)


def check_target(target: Mapping[str, Any], key: str) -> None:
    """A schedule id, which must be a GUID."""
    require(target, ("schedule_id",), "leapwork", key)
    _guid(target["schedule_id"], f"{key}.schedule_id")


def _guid(value: Any, key: str) -> None:
    """A Leapwork schedule id: its API takes only a GUID, so the client would refuse any
    other at the first run and the event would be dead-lettered; refuse it at start-up."""
    try:
        uuid.UUID(value if isinstance(value, str) else "")
    except ValueError:
        raise ConfigError(
            key, "must be a Leapwork schedule id (a GUID, as GET /api/v4/schedules lists it)"
        ) from None
