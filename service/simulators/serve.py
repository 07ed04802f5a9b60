"""`python -m service simulators`: every simulator on fixed ports, for offline development.

Ports from 9101: LeanIX, then each platform in registry order. The UiPath simulator's
tenant webhook points at the service on http://127.0.0.1:8080 (or --service-url). The
credentials printed at start are the lab's throwaway values (service/simulators/lab.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from urllib.parse import urlsplit

from service.simulators.lab import Lab

FIRST_PORT = 9101


async def serve_all(host: str, first_port: int, service_url: str) -> None:
    """Serve until SIGINT/SIGTERM."""
    lab = Lab(run_duration_s=2.0, service_port=urlsplit(service_url).port or 8080)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with lab.running(host, first_port, service_url):
        _describe(lab)
        await stop.wait()


def _describe(lab: Lab) -> None:
    for simulator in lab.simulators:
        print(f"{simulator.name:9} {simulator.base_url}", flush=True)
    print("targets:", lab.targets, flush=True)
    for name, value in lab.credentials().items():
        print(f"{name}={value}", flush=True)
