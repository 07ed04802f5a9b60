"""A handler module for the fault tests' worker processes (named in HANDLER_MODULES).

Its effect is a line appended to a file; the work before it takes FAULT_SLOW_S seconds,
during which a test kills or stops the worker.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from service import CloudEvent, Context, handler


def _append(variable: str, line: str) -> None:
    with Path(os.environ[variable]).open("a", encoding="utf-8") as out:
        out.write(line + "\n")


@handler("#", name="faulty.effect", idempotent=True)
async def effect(event: CloudEvent, context: Context) -> None:
    """Record the start, work for a while (simulated), then record the effect."""
    _append("FAULT_STARTED_FILE", f"{event.id} {os.getpid()} {context.redelivered}")
    await asyncio.sleep(float(os.environ.get("FAULT_SLOW_S", "0")))
    _append("FAULT_EFFECTS_FILE", event.id)
