"""Handlers for the ledger tests' worker processes (HANDLER_MODULES=tests.hostile.ledger_handlers).

LEDGER_HANDLERS names which to register (comma-separated); each writes what it did to a
file in LEDGER_DIR, one line per run ("<event id> <pid> ..."), or to PostgreSQL.

- plain:     works LEDGER_SLOW_S, then records its effect (not idempotent)
- claimed:   idempotent=True, records its effect
- external:  idempotent=True with an effect outside the store: records the call (a raw
             count) and sends context.idempotency_key to a "vendor" table that keeps one
             row per key; then LEDGER_WINDOW_S passes before the handler returns (the
             window between an effect and the done mark)
- stored:    idempotent=True, its effect a row written in context.transaction()
- takeover:  idempotent=True; records its start, works LEDGER_SLOW_S on a first delivery
             only, then records its effect
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import asyncpg
import sqlalchemy as sa

from service import CloudEvent, Context
from service.worker.registry import registry

WANTED = set(os.environ.get("LEDGER_HANDLERS", "").split(","))
DIRECTORY = Path(os.environ.get("LEDGER_DIR", "."))
SLOW_S = float(os.environ.get("LEDGER_SLOW_S", "0"))
WINDOW_S = float(os.environ.get("LEDGER_WINDOW_S", "0"))
_vendor: list[asyncpg.Pool] = []


def _append(name: str, *words: object) -> None:
    line = " ".join(str(w) for w in words) + "\n"
    fd = os.open(DIRECTORY / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one write: lines of several processes never interleave
    finally:
        os.close(fd)


_opening = asyncio.Lock()


async def _vendor_pool() -> asyncpg.Pool:
    async with _opening:
        if not _vendor:
            dsn = os.environ["LEDGER_VENDOR_DSN"]
            _vendor.append(await asyncpg.create_pool(dsn, min_size=1, max_size=4))
    return _vendor[0]


async def plain(event: CloudEvent, context: Context) -> None:
    await asyncio.sleep(SLOW_S)
    _append("plain.txt", event.id, os.getpid())


async def claimed(event: CloudEvent, context: Context) -> None:
    _append("claimed.txt", event.id, os.getpid())


async def external(event: CloudEvent, context: Context) -> None:
    _append("external-calls.txt", event.id, os.getpid())
    pool = await _vendor_pool()
    await pool.execute(
        "INSERT INTO vendor_effects (key, event_id) VALUES ($1, $2) ON CONFLICT (key) DO "
        "UPDATE SET calls = vendor_effects.calls + 1",
        context.idempotency_key,
        event.id,
    )
    await asyncio.sleep(WINDOW_S)


async def stored(event: CloudEvent, context: Context) -> None:
    async with context.transaction() as connection:
        insert = sa.text("INSERT INTO stored_effects (event_id, pid) VALUES (:event_id, :pid)")
        await connection.execute(insert, {"event_id": event.id, "pid": os.getpid()})
        await asyncio.sleep(WINDOW_S)


async def takeover(event: CloudEvent, context: Context) -> None:
    _append("takeover-started.txt", event.id, os.getpid(), context.redelivered, time.time())
    if not context.redelivered:
        await asyncio.sleep(SLOW_S)
    _append("takeover-effects.txt", event.id, os.getpid())


if "plain" in WANTED:
    registry.add("ledger.#", plain, name="ledger.plain")
for name, func in (
    ("claimed", claimed),
    ("external", external),
    ("stored", stored),
    ("takeover", takeover),
):
    if name in WANTED:
        registry.add("ledger.#", func, name=f"ledger.{name}", idempotent=True)
