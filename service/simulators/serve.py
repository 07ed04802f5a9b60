"""`python -m service simulators`: every simulator on fixed ports, for offline development.

Ports from 9101: LeanIX, Leapwork, Robocorp, UiPath, Workato. The UiPath simulator's
tenant webhook points at the service on http://127.0.0.1:8080 (or --service-url). The
credentials printed at start are the lab's throwaway values (service/simulators/lab.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from urllib.parse import urlsplit

from service.simulators import lab as lab_module
from service.simulators.lab import Lab
from service.simulators.leanix import DEFAULT_API_TOKEN

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
    credentials = {
        "LEANIX_API_TOKEN": DEFAULT_API_TOKEN,
        "LEANIX_WEBHOOK_AUTHORIZATION": lab_module.LEANIX_WEBHOOK_AUTH,
        "LEAPWORK_ACCESS_KEY": lab_module.LEAPWORK_ACCESS_KEY,
        "ROBOCORP_API_KEY": lab_module.ROBOCORP_API_KEY,
        "ROBOCORP_WORKSPACE_ID": lab_module.ROBOCORP_WORKSPACE,
        "UIPATH_CLIENT_ID": lab_module.UIPATH_CLIENT[0],
        "UIPATH_WEBHOOK_SECRET": lab_module.UIPATH_WEBHOOK_SECRET,
        "WORKATO_API_TOKEN": lab_module.WORKATO_API_TOKEN,
        "WORKATO_DEVELOPER_API_URL": lab.workato.developer_api_url,
        "WORKATO_DEVELOPER_API_TOKEN": lab_module.WORKATO_DEVELOPER_TOKEN,
    }
    for name, value in credentials.items():
        print(f"{name}={value}", flush=True)
