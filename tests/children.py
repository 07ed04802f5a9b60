"""Child processes of a test (a service started with `python -m service ...`): stopped the
way an orchestrator stops them, and never left behind."""

from __future__ import annotations

import asyncio
import signal

Child = asyncio.subprocess.Process


async def stop(child: Child, timeout_s: float = 30.0) -> int:
    """SIGTERM, then its exit code, within `timeout_s`."""
    child.send_signal(signal.SIGTERM)
    async with asyncio.timeout(timeout_s):
        return await child.wait()


async def reap(*children: Child | None) -> None:
    """SIGKILL whichever of `children` still runs, and wait for it."""
    for child in children:
        if child is not None and child.returncode is None:
            child.kill()
            await child.wait()
