"""Runs: what an automation run is, and what a platform's client must do with one.

The vendor-neutral state of a run (`RunState`, its `RunStatus` and the `TERMINAL`
statuses) and the protocol the automation loop drives every platform's client through
(`RunClient`). The store keeps runs, the clients answer them, the automation loop starts
and polls them: all three import this module, so it imports nothing above it (only the
standard library), and the layering goes one way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

# timed_out: no completion came within the platform's deadline (written back as a failure).
RunStatus = Literal["pending", "running", "succeeded", "failed", "timed_out"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "timed_out"})


@dataclass(frozen=True)
class RunState:
    """A run on any platform, as the service sees it."""

    vendor: str
    run_id: str
    status: RunStatus
    vendor_state: str = ""  # the platform's own word: "Finished", "Faulted", "unresolved", ...
    outputs: Mapping[str, Any] = field(default_factory=dict)
    detail: str | None = None
    url: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


class RunClient(Protocol):
    """What the automation loop needs from a platform's client.

    `clients.base.RunnerApi` is the HTTP implementation every platform client builds on.
    """

    vendor: str
    run_deadline_s: float | None  # an open run this old is timed out; None: never

    async def start(
        self,
        target: Mapping[str, Any],
        inputs: Mapping[str, Any],
        *,
        correlation_id: str,
        callback_url: str | None = None,
        callback_secret: str | None = None,
    ) -> RunState: ...

    async def status(self, run_id: str, target: Mapping[str, Any]) -> RunState: ...

    async def find(self, target: Mapping[str, Any], correlation_id: str) -> RunState | None: ...
