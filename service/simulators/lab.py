"""Lab: every simulator running on loopback, and the service's settings pointing at them.

Used by the end-to-end tests and by `make demo`, so both exercise the same set-up: a
LeanIX workspace with Fact Sheets, one automation target per platform, the platforms
calling back to the service's receiver, and one rule per platform.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.settings import Settings, from_mapping
from service.simulators.base import Simulator
from service.simulators.leanix import DEFAULT_API_TOKEN, LeanixSimulator
from service.simulators.leapwork import LeapworkSimulator
from service.simulators.robocorp import RobocorpSimulator
from service.simulators.uipath import UipathSimulator
from service.simulators.workato import WorkatoSimulator

VENDORS = ("leapwork", "robocorp", "uipath", "workato")
HUMAN_USER = "9d0a7e52-3c1b-4f6e-8a2d-5b4c3e2f1a00"  # an architect editing in LeanIX

# Credentials between the lab's parts: local, throwaway values.
LEANIX_WEBHOOK_AUTH = "Bearer lab-leanix-webhook-credential"
UIPATH_WEBHOOK_SECRET = "lab-uipath-webhook-secret"
ROBOCORP_CALLBACK_SECRET = "lab-robocorp-callback-secret"
CALLBACK_SIGNING_KEY = "lab-callback-signing-key-0123456789abcdef"  # signs each run's token
LEAPWORK_ACCESS_KEY = "lab-leapwork-key"
ROBOCORP_API_KEY = "lab-robocorp-key"
ROBOCORP_WORKSPACE = "ws-lab"
UIPATH_CLIENT = ("lab-uipath-client", "lab-uipath-client-secret")
WORKATO_API_TOKEN = "lab-workato-token"
WORKATO_DEVELOPER_TOKEN = "lab-workato-developer-token"
SCHEDULE_ID = "ff9cf360-3fb2-4914-b423-16358a954e86"
PROCESS_ID = "2ab4fb3b-6faa-4017-8e1b-f75aa0cb3ffa"
RELEASE_KEY = "3a2250c2-ce67-43a3-8853-ab051a19adee"


def _merged(tree: Mapping[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    """`tree` with `layer` laid over it, tables merged key by key."""
    merged = dict(tree)
    for key, value in layer.items():
        below = merged.get(key)
        both = isinstance(value, Mapping) and isinstance(below, Mapping)
        merged[key] = _merged(below, value) if both else value  # type: ignore[arg-type]
    return merged


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Lab:
    """The simulators, their targets, and where the service will listen."""

    run_duration_s: float = 0.2
    service_port: int = field(default_factory=free_port)
    leanix: LeanixSimulator = field(init=False)
    leapwork: LeapworkSimulator = field(init=False)
    robocorp: RobocorpSimulator = field(init=False)
    uipath: UipathSimulator = field(init=False)
    workato: WorkatoSimulator = field(init=False)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        duration = self.run_duration_s
        self.leanix = LeanixSimulator()
        self.leapwork = LeapworkSimulator(LEAPWORK_ACCESS_KEY, run_duration_s=duration)
        self.robocorp = RobocorpSimulator(
            ROBOCORP_API_KEY, ROBOCORP_WORKSPACE, run_duration_s=duration
        )
        client_id, secret = UIPATH_CLIENT
        self.uipath = UipathSimulator(
            client_id=client_id, client_secret=secret, run_duration_s=duration
        )
        self.workato = WorkatoSimulator(
            WORKATO_API_TOKEN, developer_token=WORKATO_DEVELOPER_TOKEN, run_duration_s=duration
        )

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.service_port}"

    @property
    def simulators(self) -> tuple[Simulator, ...]:
        return (self.leanix, self.leapwork, self.robocorp, self.uipath, self.workato)

    @contextlib.asynccontextmanager
    async def running(
        self, host: str = "127.0.0.1", first_port: int = 0, service_url: str | None = None
    ) -> AsyncIterator[Lab]:
        """Serve every simulator (on free ports, or from `first_port` on) with targets."""
        async with contextlib.AsyncExitStack() as stack:
            for offset, simulator in enumerate(self.simulators):
                port = first_port + offset if first_port else 0
                await stack.enter_async_context(simulator.serve(host, port))
            self.targets = self._targets()
            service = (service_url or self.service_url).rstrip("/")
            self.uipath.configure_webhook(f"{service}/callbacks/uipath", UIPATH_WEBHOOK_SECRET)
            yield self

    def _targets(self) -> dict[str, dict[str, Any]]:
        # Fixed ids, so a configuration written for the lab (deploy/demo-rules.toml) fits.
        schedule = self.leapwork.add_schedule("Regression", ["Login", "Order"], True, SCHEDULE_ID)
        process = self.robocorp.add_process("Decommission application", PROCESS_ID)
        release = self.uipath.add_release(RELEASE_KEY, process_key="Provision_App")
        return {
            "leapwork": {"schedule_id": schedule},
            "robocorp": {"process_id": process},
            "uipath": {"release_key": release, "folder_id": 1},
            "workato": {  # the API recipe, and its recipe function whose jobs are polled
                "endpoint_url": self.workato.add_endpoint("onboard"),
                "recipe_id": self.workato.function_id("onboard"),
            },
        }

    def rule(self, vendor: str, **overrides: Any) -> dict[str, Any]:
        """A rule that starts a run on `vendor` for Application changes and writes back."""
        raw: dict[str, Any] = {
            "name": f"{vendor}-on-application-change",
            "on": ["leanix.factsheet.created", "leanix.factsheet.updated"],
            "when": {"fact_sheet_type": "Application"},
            "start": {
                "vendor": vendor,
                "target": self.targets[vendor],
                "inputs": {"factSheetId": "{{ fact_sheet.id }}", "name": "{{ fact_sheet.name }}"},
            },
            "write_back": {
                "comment": "{{ run.vendor }} run {{ run.id }} {{ run.outcome }}"
                " ({{ run.vendor_state }})",
                "on_success": {"tags": [f"{vendor}-done"]},
                "on_failure": {"tags": [f"{vendor}-failed"]},
            },
        }
        raw.update(overrides)
        return raw

    def settings(
        self, rules: Sequence[Mapping[str, Any]], base: Mapping[str, Any] | None = None
    ) -> Settings:
        """The service's settings: the lab's clients, credentials and callback URL."""
        tree: dict[str, Any] = {
            "http": {"host": "127.0.0.1", "port": self.service_port},
            "sources": self._sources(),
            "clients": self._clients(),
            "automation": {"callback_base_url": self.service_url},
            "rules": list(rules),
        }
        return from_mapping(_merged(tree, base or {}))

    def _sources(self) -> dict[str, Any]:
        return {
            "leanix": {"authorization": [LEANIX_WEBHOOK_AUTH]},
            "uipath": {"secrets": [UIPATH_WEBHOOK_SECRET]},
            "robocorp": {"secrets": [ROBOCORP_CALLBACK_SECRET]},
            "callback_signing_keys": [CALLBACK_SIGNING_KEY],
        }

    def _clients(self) -> dict[str, Any]:
        client_id, secret = UIPATH_CLIENT
        uipath = self.uipath
        return {
            "leanix": {"base_url": self.leanix.base_url, "api_token": DEFAULT_API_TOKEN},
            "leapwork": {"base_url": self.leapwork.base_url, "access_key": LEAPWORK_ACCESS_KEY},
            "robocorp": {"base_url": f"{self.robocorp.base_url}/api/v1",
                         "api_key": ROBOCORP_API_KEY, "workspace_id": ROBOCORP_WORKSPACE},
            "uipath": {"base_url": uipath.orchestrator_url, "identity_url": uipath.identity_url,
                       "client_id": client_id, "client_secret": secret, "folder_id": 1},
            "workato": {"api_token": WORKATO_API_TOKEN,
                        "developer_api_url": self.workato.developer_api_url,
                        "developer_api_token": WORKATO_DEVELOPER_TOKEN},
        }  # fmt: skip

    async def change(self, fact_sheet_id: str, event_type: str = "FactSheetUpdatedEvent") -> int:
        """An architect changed a Fact Sheet: LeanIX sends the webhook to the service."""
        return await self.leanix.send_event(
            f"{self.service_url}/webhooks/leanix",
            LEANIX_WEBHOOK_AUTH,
            fact_sheet_id,
            event_type,
            user_id=HUMAN_USER,
        )
