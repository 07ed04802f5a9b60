"""Robocorp in the lab (simulators/lab.py): its simulator with one process to run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.vendors.robocorp.simulator import RobocorpSimulator

# Local, throwaway values.
API_KEY = "lab-robocorp-key"
WORKSPACE = "ws-lab"
CALLBACK_SECRET = "lab-robocorp-callback-secret"
PROCESS_ID = "2ab4fb3b-6faa-4017-8e1b-f75aa0cb3ffa"  # fixed: deploy/demo-rules.toml names it


@dataclass
class RobocorpLab:
    simulator: RobocorpSimulator

    def target(self) -> dict[str, Any]:
        return {"process_id": self.simulator.add_process("Decommission application", PROCESS_ID)}

    def clients(self) -> dict[str, Any]:
        return {
            "base_url": f"{self.simulator.base_url}/api/v1",
            "api_key": API_KEY,
            "workspace_id": WORKSPACE,
        }

    def sources(self) -> dict[str, Any]:
        return {"secrets": [CALLBACK_SECRET]}

    def connect(self, callback_url: str) -> None:
        """Nothing to point: each run is given its callback URL."""

    def credentials(self) -> dict[str, str]:
        return {"ROBOCORP_API_KEY": API_KEY, "ROBOCORP_WORKSPACE_ID": WORKSPACE}

    def started_inputs(self) -> list[dict[str, Any]]:
        return [dict(run.payloads[0]) for run in self.simulator.runs.values()]

    def fail_next_run(self) -> None:
        self.simulator.next_outcome("unresolved")


def lab(run_duration_s: float) -> RobocorpLab:
    return RobocorpLab(RobocorpSimulator(API_KEY, WORKSPACE, run_duration_s=run_duration_s))
