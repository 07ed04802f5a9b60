"""Leapwork in the lab (simulators/lab.py): its simulator with one schedule to run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.vendors.leapwork.simulator import LeapworkSimulator

ACCESS_KEY = "lab-leapwork-key"  # a local, throwaway value
SCHEDULE_ID = "ff9cf360-3fb2-4914-b423-16358a954e86"  # fixed: deploy/demo-rules.toml names it


@dataclass
class LeapworkLab:
    simulator: LeapworkSimulator

    def target(self) -> dict[str, Any]:
        schedule = self.simulator.add_schedule("Regression", ["Login", "Order"], True, SCHEDULE_ID)
        return {"schedule_id": schedule}

    def clients(self) -> dict[str, Any]:
        return {"base_url": self.simulator.base_url, "access_key": ACCESS_KEY}

    def sources(self) -> dict[str, Any]:
        return {}  # its flows call back with each run's own token

    def connect(self, callback_url: str) -> None:
        """Nothing to point: each run is given its callback URL."""

    def credentials(self) -> dict[str, str]:
        return {"LEAPWORK_ACCESS_KEY": ACCESS_KEY}

    def started_inputs(self) -> list[dict[str, Any]]:
        return [dict(run.variables) for run in self.simulator.runs.values()]

    def fail_next_run(self) -> None:
        self.simulator.next_outcome("Failed")


def lab(run_duration_s: float) -> LeapworkLab:
    return LeapworkLab(LeapworkSimulator(ACCESS_KEY, run_duration_s=run_duration_s))
