"""Lab: every simulator running on loopback, and the service's settings pointing at them.

Used by the end-to-end tests and by `make demo`, so both exercise the same set-up: a
LeanIX workspace with Fact Sheets, one automation target per platform, the platforms
calling back to the service's receiver, and one rule per platform. Each platform's part
comes from its adapter (`lab`, service/vendors/<name>/lab.py); `lab.<name>` is that
platform's simulator.
"""

from __future__ import annotations

import contextlib
import random
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.settings import Settings, from_mapping
from service.simulators.base import Simulator
from service.simulators.leanix import DEFAULT_API_TOKEN, LeanixSimulator
from service.vendors import registry
from service.vendors.adapter import LabPlatform

VENDORS = registry.names()
HUMAN_USER = "9d0a7e52-3c1b-4f6e-8a2d-5b4c3e2f1a00"  # an architect editing in LeanIX

# Credentials between the lab's parts: local, throwaway values.
LEANIX_WEBHOOK_AUTH = "Bearer lab-leanix-webhook-credential"
CALLBACK_SIGNING_KEY = "lab-callback-signing-key-0123456789abcdef"  # signs each run's token


def _merged(tree: Mapping[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    """`tree` with `layer` laid over it, tables merged key by key."""
    merged = dict(tree)
    for key, value in layer.items():
        below = merged.get(key)
        both = isinstance(value, Mapping) and isinstance(below, Mapping)
        merged[key] = _merged(below, value) if both else value  # type: ignore[arg-type]
    return merged


# Ports named before whatever listens on them binds them are drawn below Linux's ephemeral
# range (32768-60999), where bind(("", 0)) and every outgoing connection take theirs: a port
# from bind(0) could be taken by a connection in between, and its bind fail "in use".
NAMED_PORTS = range(20000, 32768)


def free_port() -> int:
    """A port on 127.0.0.1 free now, for a server that binds it a little later."""
    for _ in range(100):
        port = random.choice(NAMED_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port in {NAMED_PORTS}")


@dataclass
class Lab:
    """The simulators, their targets, and where the service will listen."""

    run_duration_s: float = 0.2
    service_port: int = field(default_factory=free_port)
    leanix: LeanixSimulator = field(init=False)
    platforms: dict[str, LabPlatform] = field(init=False)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.leanix = LeanixSimulator()
        self.platforms = {p.name: p.lab(self.run_duration_s) for p in registry.PLATFORMS}

    def __getattr__(self, name: str) -> Any:
        """`lab.<platform>`: that platform's simulator."""
        platforms = self.__dict__.get("platforms", {})
        if name not in platforms:
            raise AttributeError(name)
        return platforms[name].simulator

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.service_port}"

    @property
    def simulators(self) -> tuple[Simulator, ...]:
        return (self.leanix, *(p.simulator for p in self.platforms.values()))

    @contextlib.asynccontextmanager
    async def running(
        self, host: str = "127.0.0.1", first_port: int = 0, service_url: str | None = None
    ) -> AsyncIterator[Lab]:
        """Serve every simulator (on free ports, or from `first_port` on) with targets."""
        async with contextlib.AsyncExitStack() as stack:
            for offset, simulator in enumerate(self.simulators):
                port = first_port + offset if first_port else 0
                await stack.enter_async_context(simulator.serve(host, port))
            # Fixed ids, so a configuration written for the lab (deploy/demo-rules.toml) fits.
            self.targets = {name: p.target() for name, p in self.platforms.items()}
            service = (service_url or self.service_url).rstrip("/")
            for name, platform in self.platforms.items():
                platform.connect(service + registry.platform(name).receiving.path)
            yield self

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
        platforms = {name: p.sources() for name, p in self.platforms.items()}
        return {
            "leanix": {"authorization": [LEANIX_WEBHOOK_AUTH]},
            **{name: table for name, table in platforms.items() if table},
            "callback_signing_keys": [CALLBACK_SIGNING_KEY],
        }

    def _clients(self) -> dict[str, Any]:
        leanix = {"base_url": self.leanix.base_url, "api_token": DEFAULT_API_TOKEN}
        return {"leanix": leanix, **{n: p.clients() for n, p in self.platforms.items()}}

    def credentials(self) -> dict[str, str]:
        """The environment variables that point a service at the served lab."""
        platforms = (p.credentials() for p in self.platforms.values())
        return {
            "LEANIX_API_TOKEN": DEFAULT_API_TOKEN,
            "LEANIX_WEBHOOK_AUTHORIZATION": LEANIX_WEBHOOK_AUTH,
            **{name: value for table in platforms for name, value in table.items()},
        }

    async def change(self, fact_sheet_id: str, event_type: str = "FactSheetUpdatedEvent") -> int:
        """An architect changed a Fact Sheet: LeanIX sends the webhook to the service."""
        return await self.leanix.send_event(
            f"{self.service_url}/webhooks/leanix",
            LEANIX_WEBHOOK_AUTH,
            fact_sheet_id,
            event_type,
            user_id=HUMAN_USER,
        )
