"""`make demo`: the whole loop, once per platform, against the simulators.

Starts every simulator and the service (receiver + worker + poller, in this process),
creates one Application Fact Sheet per platform in the simulated LeanIX, fires its
webhook, and prints each run as it goes: started -> completed -> written back, then the
final state of every Fact Sheet. Cleans up its RabbitMQ exchange and queues afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import orjson

from service.bus import topology
from service.runtime import serve
from service.settings import Settings
from service.simulators.lab import VENDORS, Lab
from service.store import Database
from service.worker.registry import Registry

STEPS = {
    "running": "run started",
    "completed": "run completed",
    "written_back": "Fact Sheet updated",
}
TIMEOUT_S = 60.0


def say(text: str) -> None:
    print(text, flush=True)


async def demo(amqp_url: str) -> int:
    """Run the demo; 0 when every platform's loop closed."""
    prefix = f"demo-{secrets.token_hex(3)}"
    with tempfile.TemporaryDirectory() as folder:
        lab = Lab(run_duration_s=1.0)
        async with lab.running():
            settings = _settings(lab, amqp_url, prefix, Path(folder))
            try:
                return await _run(lab, settings)
            finally:
                await _delete_topology(settings)


def _settings(lab: Lab, amqp_url: str, prefix: str, folder: Path) -> Settings:
    rules = [
        lab.rule(v, when={"fact_sheet_type": "Application", "tag": f"via-{v}"}) for v in VENDORS
    ]
    return lab.settings(
        rules,
        {
            "amqp": {"url": amqp_url, "exchange": f"{prefix}.events", "queue": f"{prefix}.worker"},
            "store": {"url": f"sqlite+aiosqlite:///{folder / 'demo.sqlite3'}"},
            "automation": {"poll_initial_s": 3.0, "poll_interval_s": 0.2},
            "worker": {"retry_delays_s": [1.0, 2.0, 4.0]},
            "log": {"level": "warning", "format": "console"},
        },
    )


async def _run(lab: Lab, settings: Settings) -> int:
    stop = asyncio.Event()
    service = asyncio.create_task(serve(settings, "all", Registry(), stop))
    try:
        await _wait_ready(lab.service_url, service)
        say(f"service ready on {lab.service_url}; simulators: " + ", ".join(
            f"{s.name} {s.base_url}" for s in lab.simulators))  # fmt: skip
        sheets = await _fire(lab)
        closed = await _follow(settings, sheets)
        _show(lab, sheets)
        return 0 if closed else 1
    finally:
        stop.set()
        await service


async def _wait_ready(url: str, service: asyncio.Task[None]) -> None:
    async with asyncio.timeout(TIMEOUT_S), aiohttp.ClientSession() as session:
        while not service.done():
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{url}/readyz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    service.result()


async def _fire(lab: Lab) -> dict[str, str]:
    sheets = {}
    for vendor in VENDORS:
        name = f"Demo application ({vendor})"
        sheet = lab.leanix.add_fact_sheet("Application", name, tags=[f"via-{vendor}"])
        status = await lab.change(sheet)
        say(f"[{vendor:8}] LeanIX: '{name}' changed -> webhook answered {status}")
        sheets[vendor] = sheet
    return sheets


async def _follow(settings: Settings, sheets: dict[str, str]) -> bool:
    """Print each run's steps as the store records them; True when all are written back."""
    database = Database(settings.store.url)
    seen: dict[str, str] = {}
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while time.monotonic() < deadline and len(_done(seen)) < len(sheets):
            for run in await database.runs.search(limit=50):
                _report(run, seen)
            await asyncio.sleep(0.1)
    finally:
        await database.close()
    return len(_done(seen)) == len(sheets)


def _done(seen: dict[str, str]) -> list[str]:
    return [vendor for vendor, status in seen.items() if status == "written_back"]


def _report(run: Any, seen: dict[str, str]) -> None:
    order = list(STEPS)
    last = seen.get(run.vendor)
    if run.status not in STEPS or (last and order.index(run.status) <= order.index(last)):
        return
    start = order.index(last) + 1 if last else 0
    for status in order[start : order.index(run.status) + 1]:
        detail = {"running": f"run id {run.run_id}",
                  "completed": f"{run.outcome} ({run.vendor_state})",
                  "written_back": f"Fact Sheet {run.fact_sheet_id}"}[status]  # fmt: skip
        say(f"[{run.vendor:8}] {STEPS[status]}: {detail}")
    seen[run.vendor] = run.status


def _show(lab: Lab, sheets: dict[str, str]) -> None:
    state = lab.leanix.state()
    say("\nFinal Fact Sheets in the simulated LeanIX:")
    for vendor, sheet in sheets.items():
        snapshot = state["fact_sheets"][sheet]
        summary = {
            "id": sheet,
            "name": snapshot.get("name"),
            "rev": snapshot.get("rev"),
            "tags": [t.get("name") for t in snapshot.get("tags", [])],
            "comments": [c["message"] for c in state["comments"].get(sheet, [])],
        }
        say(f"[{vendor:8}] " + orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())


async def _delete_topology(settings: Settings) -> None:
    with contextlib.suppress(Exception):
        connection = await aio_pika.connect(settings.amqp.urls[0])
        async with connection:
            channel = await connection.channel()
            await topology.delete(channel, settings.amqp, settings.worker.retry_delays_s)


def main(amqp_url: str) -> int:
    try:
        return asyncio.run(demo(amqp_url))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "amqp://guest:guest@127.0.0.1:5672/"))
