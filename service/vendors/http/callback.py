"""Callbacks of the `http` platform: a Standard Webhooks-signed POST to /callbacks/http.

    webhook-id / webhook-timestamp / webhook-signature   signed with a secret of
                                                         clients.http.callback_secrets
    {"correlationId": "<X-Correlation-Id of the start>", "status": "succeeded",
     "outputs": {...}, "detail": "...", "runId": "...", "url": "..."}

`status` is one of the common words (answer.WORDS: succeeded, failed, running, ...).
The run is named by the correlation id only: that is what the start handed the endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.cloudevent import CloudEvent
from service.errors import MalformedEvent
from service.receiver.normalise import Facts, event_type
from service.receiver.signatures import StandardWebhooks
from service.runs import RunState, RunStatus
from service.vendors.http.answer import VENDOR, WORDS
from service.vendors.http.settings import HttpApi

PATH = "/callbacks/http"
PATTERN = "http.run.*"
ENABLE_HINT = "set HTTP_CALLBACK_SECRET (clients.http.callback_secrets)"


def verifier(settings: HttpApi, tolerance_s: int) -> StandardWebhooks | None:
    """Standard Webhooks over the configured secrets; None (endpoint closed) without one."""
    secrets = settings.callback_secrets
    return StandardWebhooks(secrets, tolerance_s) if secrets else None


def normalise(payload: dict[str, Any]) -> Facts:
    """`{"correlationId", "status", ...}` -> `http.run.<succeeded|failed|running|pending>`."""
    correlation_id = payload.get("correlationId")
    if not isinstance(correlation_id, str) or not correlation_id:
        raise MalformedEvent("an http callback needs 'correlationId' (the X-Correlation-Id sent)")
    word = payload.get("status")
    status = WORDS.get(word.lower()) if isinstance(word, str) else None
    if status is None:
        raise MalformedEvent("an http callback needs 'status': 'succeeded', 'failed' or 'running'")
    event_type(correlation_id, "correlationId")
    finished_at = payload.get("finishedAt")
    return Facts(
        source=VENDOR,
        type=f"{VENDOR}.run.{status}",
        subject=correlation_id,
        time=finished_at if isinstance(finished_at, str) else None,
    )


def parse(event: CloudEvent) -> tuple[list[str], RunState]:
    """The run key (our correlation id) and the state an http callback carries."""
    data = event.data if isinstance(event.data, Mapping) else {}
    correlation_id = str(data.get("correlationId") or event.subject or "")
    status: RunStatus = WORDS.get(event.type.rsplit(".", 1)[-1], "running")
    outputs = data.get("outputs")
    detail, url = data.get("detail"), data.get("url")
    state = RunState(
        VENDOR, str(data.get("runId") or correlation_id), status, str(data.get("status") or ""),
        outputs if isinstance(outputs, Mapping) else {},
        None if detail is None else str(detail)[:2000],
        url if isinstance(url, str) and url.startswith("https://") else None,
    )  # fmt: skip
    return [correlation_id], state
