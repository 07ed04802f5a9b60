"""Callbacks of the `http` platform: a POST to /callbacks/http naming the run by our
correlation id, authenticated by a Standard Webhooks signature or by the run's own token.

    webhook-id / webhook-timestamp / webhook-signature   signed with a secret of
                                                         sources.http.secrets, or
    Authorization: Bearer <the run's callback token>     (callback_token_pointer; for
                                                         endpoints that cannot sign)
    {"correlationId": "<X-Correlation-Id of the start>", "status": "succeeded",
     "outputs": {...}, "detail": "...", "runId": "...", "finishedAt": "..."}

`status` is one of the common words (answer.WORDS: succeeded, failed, running, ...). The
run is named by the correlation id only: it is what the start handed the endpoint, and
what a run token vouches for.
"""

from __future__ import annotations

from typing import Any

from service.cloudevent import CloudEvent
from service.errors import MalformedEvent
from service.runs import RunState, RunStatus
from service.vendors.adapter import Completion, SharedKeys, run_token, signed_or_run_token
from service.vendors.http.answer import VENDOR, WORDS
from service.vendors.http.settings import HttpSource
from service.vendors.normalise import Facts, event_type
from service.vendors.signatures import Verifier

PATH = "/callbacks/http"
COMPLETIONS = ("http.run.*",)
ENABLE_HINT = "set CALLBACK_SIGNING_KEY (run tokens) or HTTP_CALLBACK_SECRET"
# What a run is given when there are no run tokens but its endpoint signs: not a secret.
SIGNED = "signed"
DETAIL_CHARS = 2000


def verifier(source: HttpSource, keys: SharedKeys) -> Verifier | None:
    """A Standard Webhooks signature, or the run's own token; None if neither is set."""
    return signed_or_run_token(VENDOR, source.secrets, keys)


def credential(source: HttpSource, keys: SharedKeys, correlation_id: str) -> str | None:
    """The run's own token; SIGNED when only signatures are set up; None: no callback."""
    token = run_token(VENDOR, keys, correlation_id)
    if token is None and source.secrets:
        return SIGNED
    return token


def normalise(payload: dict[str, Any]) -> Facts:
    """`{"correlationId", "status", ...}` -> `http.run.<succeeded|failed|running|pending>`."""
    correlation_id = payload.get("correlationId")
    if not isinstance(correlation_id, str) or not correlation_id:
        raise MalformedEvent("an http callback needs 'correlationId' (the X-Correlation-Id sent)")
    word = payload.get("status")
    status = WORDS.get(word.lower()) if isinstance(word, str) else None
    if status is None:
        raise MalformedEvent("an http callback needs 'status': 'succeeded', 'failed' or 'running'")
    event_type(correlation_id, "correlationId")  # no longer than a routing key
    finished_at = payload.get("finishedAt")
    return Facts(
        source=VENDOR,
        type=f"{VENDOR}.run.{status}",
        subject=correlation_id,
        time=finished_at if isinstance(finished_at, str) else None,
    )


def completion(event: CloudEvent) -> Completion:
    """The run an http callback names (by correlation id only), and its state."""
    data = event.data if isinstance(event.data, dict) else {}
    correlation_id = str(data.get("correlationId") or event.subject or "")
    status: RunStatus = WORDS.get(event.type.rsplit(".", 1)[-1], "running")
    outputs, detail = data.get("outputs"), data.get("detail")
    state = RunState(
        VENDOR, str(data.get("runId") or correlation_id), status, str(data.get("status") or ""),
        outputs if isinstance(outputs, dict) else {},
        None if detail is None else str(detail)[:DETAIL_CHARS],
    )  # fmt: skip
    return Completion((correlation_id,), state)
