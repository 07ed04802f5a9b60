"""`python -m service keys`: create (printed once), list and revoke admin API keys."""

from __future__ import annotations

import sys
from contextlib import AsyncExitStack
from typing import TextIO

import orjson

from service.resources import open_database
from service.settings import Settings
from service.store import Database


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


async def run_keys(
    settings: Settings,
    action: str,
    key_id: str | None,
    name: str | None,
    scopes: str,
    allow: str,
    out: TextIO = sys.stdout,
) -> int:
    """The CLI; returns the exit code."""
    async with AsyncExitStack() as stack:
        database = await open_database(settings, stack)
        if action == "create":
            return await _create(database, name, _split(scopes), _split(allow), out)
        if action == "revoke":
            return await _revoke(database, key_id, out)
        for key in await database.keys.list():
            out.write(orjson.dumps(key.public()).decode() + "\n")
        return 0


async def _create(
    database: Database, name: str | None, scopes: list[str], allow: list[str], out: TextIO
) -> int:
    if not name:
        out.write("keys create needs --name\n")
        return 2
    try:
        key, text = await database.keys.create(name, scopes, allow)
    except ValueError as exc:
        out.write(f"cannot create the key: {exc}\n")
        return 2
    out.write(f"created key {key.id} ({key.name}) with scopes {', '.join(sorted(key.scopes))}\n")
    out.write("the key (shown once, store it now):\n")
    out.write(text + "\n")
    return 0


async def _revoke(database: Database, key_id: str | None, out: TextIO) -> int:
    if not key_id:
        out.write("keys revoke needs the key's id (see keys list)\n")
        return 2
    if not await database.keys.revoke(key_id):
        out.write(f"no live key {key_id}\n")
        return 1
    out.write(f"revoked key {key_id}\n")
    return 0
