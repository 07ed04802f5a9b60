"""Workato in the lab (simulators/lab.py): its simulator with one API recipe (and its
recipe function, whose jobs are polled)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.vendors.workato.simulator import WorkatoSimulator

# Local, throwaway values.
API_TOKEN = "lab-workato-token"
DEVELOPER_TOKEN = "lab-workato-developer-token"


@dataclass
class WorkatoLab:
    simulator: WorkatoSimulator

    def target(self) -> dict[str, Any]:
        return {  # the API recipe, and its recipe function whose jobs are polled
            "endpoint_url": self.simulator.add_endpoint("onboard"),
            "recipe_id": self.simulator.function_id("onboard"),
        }

    def clients(self) -> dict[str, Any]:
        return {
            "api_token": API_TOKEN,
            "developer_api_url": self.simulator.developer_api_url,
            "developer_api_token": DEVELOPER_TOKEN,
        }

    def sources(self) -> dict[str, Any]:
        return {}  # its recipes call back with each run's own token

    def connect(self, callback_url: str) -> None:
        """Nothing to point: each run is given its callback URL."""

    def credentials(self) -> dict[str, str]:
        return {
            "WORKATO_API_TOKEN": API_TOKEN,
            "WORKATO_DEVELOPER_API_URL": self.simulator.developer_api_url,
            "WORKATO_DEVELOPER_API_TOKEN": DEVELOPER_TOKEN,
        }

    def started_inputs(self) -> list[dict[str, Any]]:
        return [dict(call["inputs"]) for call in self.simulator.calls if "inputs" in call]

    def fail_next_run(self) -> None:
        self.simulator.next_outcome("failed")


def lab(run_duration_s: float) -> WorkatoLab:
    simulator = WorkatoSimulator(
        API_TOKEN, developer_token=DEVELOPER_TOKEN, run_duration_s=run_duration_s
    )
    return WorkatoLab(simulator)
