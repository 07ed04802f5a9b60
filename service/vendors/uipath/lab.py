"""UiPath in the lab (simulators/lab.py): its simulator with one release to run, and its
tenant webhook pointed at the service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from service.vendors.uipath.simulator import UipathSimulator

# Local, throwaway values.
CLIENT = ("lab-uipath-client", "lab-uipath-client-secret")
WEBHOOK_SECRET = "lab-uipath-webhook-secret"
RELEASE_KEY = "3a2250c2-ce67-43a3-8853-ab051a19adee"  # fixed: deploy/demo-rules.toml names it


@dataclass
class UipathLab:
    simulator: UipathSimulator

    def target(self) -> dict[str, Any]:
        release = self.simulator.add_release(RELEASE_KEY, process_key="Provision_App")
        return {"release_key": release, "folder_id": 1}

    def clients(self) -> dict[str, Any]:
        client_id, secret = CLIENT
        return {
            "base_url": self.simulator.orchestrator_url,
            "identity_url": self.simulator.identity_url,
            "client_id": client_id,
            "client_secret": secret,
            "folder_id": 1,
        }

    def sources(self) -> dict[str, Any]:
        return {"secrets": [WEBHOOK_SECRET]}

    def connect(self, callback_url: str) -> None:
        self.simulator.configure_webhook(callback_url, WEBHOOK_SECRET)

    def credentials(self) -> dict[str, str]:
        return {"UIPATH_CLIENT_ID": CLIENT[0], "UIPATH_WEBHOOK_SECRET": WEBHOOK_SECRET}

    def started_inputs(self) -> list[dict[str, Any]]:
        return [orjson.loads(s["startInfo"]["InputArguments"]) for s in self.simulator.starts]

    def fail_next_run(self) -> None:
        self.simulator.next_outcome("Faulted")


def lab(run_duration_s: float) -> UipathLab:
    client_id, secret = CLIENT
    simulator = UipathSimulator(
        client_id=client_id, client_secret=secret, run_duration_s=run_duration_s
    )
    return UipathLab(simulator)
