"""The `http` platform in the lab (simulators/lab.py): the simulated endpoint with one
flow, called with a lab credential, calling back signed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from yarl import URL

from service.vendors.http.simulator import API_KEY_HEADER, HttpEndpointSimulator

# Local, throwaway values.
API_KEY = "lab-http-endpoint-key"
CALLBACK_SECRET = "whsec_bGFiLWh0dHAtY2FsbGJhY2stc2VjcmV0LTAx"


@dataclass
class HttpLab:
    simulator: HttpEndpointSimulator

    @property
    def host(self) -> str:
        return URL(self.simulator.base_url).host or "127.0.0.1"

    def target(self) -> dict[str, Any]:
        return {
            "url": self.simulator.add_flow("provision"),
            "credential": "lab",
            "callback_pointer": "/callbackUrl",
            "callback_token_pointer": "/callbackToken",
            "state": "/status",
            "outputs": "/outputs",
            "detail": "/error",
        }

    def clients(self) -> dict[str, Any]:
        return {"plain_http_hosts": [self.host], "credentials": self._credentials()}

    def sources(self) -> dict[str, Any]:
        return {"secrets": [CALLBACK_SECRET]}

    def connect(self, callback_url: str) -> None:
        """Nothing to point: each run is given its callback URL."""

    def credentials(self) -> dict[str, str]:
        return {
            "HTTP_CREDENTIALS": orjson.dumps(self._credentials()).decode(),
            "HTTP_PLAIN_HTTP_HOSTS": self.host,
            "HTTP_CALLBACK_SECRET": CALLBACK_SECRET,
        }

    def started_inputs(self) -> list[dict[str, Any]]:
        return [dict(run.body) for run in self.simulator.runs.values()]

    def fail_next_run(self) -> None:
        self.simulator.next_outcome("failed")

    def _credentials(self) -> list[dict[str, Any]]:
        return [{"name": "lab", "hosts": [self.host], "headers": {API_KEY_HEADER: API_KEY}}]


def lab(run_duration_s: float) -> HttpLab:
    return HttpLab(HttpEndpointSimulator(API_KEY, CALLBACK_SECRET, run_duration_s))
