"""Workato runs: a rule's target and the client that calls API recipes.

start = { vendor = "workato", target = { endpoint_url = "https://apim.workato.com/...",
                                         recipe_id = 1234 } }   # recipe_id: to poll
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from service.errors import ConfigError
from service.runs import RunClient
from service.vendors.adapter import SharedKeys, require, run_token
from service.vendors.tables import CallbackSource
from service.vendors.workato.client import WorkatoClient
from service.vendors.workato.settings import WorkatoApi


def client(session: aiohttp.ClientSession, settings: WorkatoApi) -> RunClient | None:
    """The client, once an API Platform token is set."""
    return WorkatoClient(session, settings) if settings.api_token else None


def credential(source: CallbackSource, keys: SharedKeys, correlation_id: str) -> str | None:
    """A recipe cannot sign: each run gets its own token, bound to its correlation id
    (callback_tokens.py), so a token seen in one run's start cannot complete another."""
    return run_token("workato", keys, correlation_id)


def check_target(target: Mapping[str, Any], key: str) -> None:
    """An endpoint URL, and the recipe id to poll if one is given."""
    require(target, ("endpoint_url",), "workato", key)
    if "recipe_id" in target:
        _recipe_id(target["recipe_id"], f"{key}.recipe_id")


def _recipe_id(value: Any, key: str) -> None:
    """A Workato recipe id (the recipe whose jobs are polled): a positive integer."""
    number = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str) and value.isdigit():
        number = int(value)
    if number is None or number <= 0:
        raise ConfigError(key, "must be a Workato recipe id (a positive integer)")
