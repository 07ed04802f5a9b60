"""Answers: what an endpoint's start and status answers say about a run.

    start answer   -> the run's id, its status URL (same scheme and host only), and, if the
                      rule's `state` pointer finds a finished state there, its outcome
    status answer  -> RunState: the `state` pointer's word through the rule's `states`
                      (then common words); without a pointer, 202 is running, 2xx done

A status URL on another scheme, host or port is never followed: the run is then left to
its callback (or its deadline), as an endpoint must not steer our credentials elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from yarl import URL

from service.clients.base import Response
from service.runs import RunState, RunStatus
from service.vendors.http.endpoint import Endpoint, same_origin

VENDOR = "http"
RUN_ID_CHARS = 200  # the store keeps run ids this long: a longer status path is not polled
# Common words, used when the rule's `states` does not name a word.
WORDS: Mapping[str, RunStatus] = {
    "succeeded": "succeeded", "success": "succeeded", "successful": "succeeded",
    "completed": "succeeded", "complete": "succeeded", "done": "succeeded", "ok": "succeeded",
    "failed": "failed", "failure": "failed", "error": "failed", "errored": "failed",
    "cancelled": "failed", "canceled": "failed", "aborted": "failed", "timed_out": "failed",
    "queued": "pending", "pending": "pending", "accepted": "pending", "waiting": "pending",
    "running": "running", "in_progress": "running", "started": "running",
}  # fmt: skip
AWAITING_CALLBACK = "awaiting the endpoint's callback (its start answer gave no status URL)"


def pointer(doc: Any, path: str | None) -> Any:
    """The value at a JSON pointer (RFC 6901) in `doc`; None if absent."""
    if path is None:
        return None
    value = doc
    for raw in path.split("/")[1:]:
        step = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(value, Mapping):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return None
    return value


def document(response: Response) -> Any:
    """The answer's JSON, or None: the run has started, so an odd body must not fail it."""
    if not response.body.strip():
        return None
    try:
        return orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return None


def status_path(endpoint: Endpoint, response: Response, called: URL) -> str | None:
    """The path and query of the run's status URL, if the start answer gives one on the
    endpoint's own scheme, host and port (relative URLs are resolved against `called`)."""
    if endpoint.status_url == "location":
        given = response.headers.get("Location")
    else:
        given = pointer(document(response), endpoint.status_url)
    if not isinstance(given, str) or not given.strip():
        return None
    try:
        url = called.join(URL(given.strip()))
    except ValueError:
        return None
    if not url.is_absolute() or not same_origin(url, endpoint.origin) or url.raw_fragment:
        return None
    path = url.raw_path_qs
    return path if len(path) <= RUN_ID_CHARS else None


def started(endpoint: Endpoint, response: Response, called: URL, correlation_id: str) -> RunState:
    """The run a start answer describes: finished already, or running under an id.

    The run id is the status path when there is one (the poller asks there), else the
    answer's own id, else our correlation id (which the callback carries)."""
    doc = document(response)
    path = status_path(endpoint, response, called)
    own_id = _text(pointer(doc, endpoint.run_id))
    run_id = path or own_id or correlation_id
    url = str(endpoint.origin.join(URL(path, encoded=True))) if path else None
    says = endpoint.state is not None and pointer(doc, endpoint.state) is not None
    finished = _stated(endpoint, doc) if says else None
    if finished is not None and finished.terminal:
        return RunState(VENDOR, run_id, finished.status, finished.vendor_state,
                        finished.outputs, finished.detail, url)  # fmt: skip
    detail = None if path else AWAITING_CALLBACK
    word = finished.vendor_state if finished else str(response.status)
    return RunState(VENDOR, run_id, "running", word, detail=detail, url=url)


def polled(endpoint: Endpoint, response: Response, run_id: str, url: str) -> RunState:
    """The run's state from its status answer."""
    doc = document(response)
    if endpoint.state is None:
        status: RunStatus = "running" if response.status == 202 else "succeeded"
        state = RunState(VENDOR, run_id, status, str(response.status),
                         _outputs(endpoint, doc), _text(pointer(doc, endpoint.detail)))  # fmt: skip
    else:
        state = _stated(endpoint, doc)
    return RunState(VENDOR, run_id, state.status, state.vendor_state, state.outputs,
                    state.detail, url)  # fmt: skip


def _stated(endpoint: Endpoint, doc: Any) -> RunState:
    """The state the `state` pointer finds, mapped by the rule's words, then common ones."""
    word = _text(pointer(doc, endpoint.state)) or ""
    status = endpoint.states.get(word) or WORDS.get(word.lower().replace(" ", "_"))
    detail = _text(pointer(doc, endpoint.detail))
    if status is None:
        status = "running"  # until a word it knows, or the run's deadline
        if word:
            detail = detail or f"the endpoint's state {word[:50]!r} is not mapped (rule: states)"
    return RunState(VENDOR, "", status, word[:50], _outputs(endpoint, doc), detail)


def _outputs(endpoint: Endpoint, doc: Any) -> Mapping[str, Any]:
    found = pointer(doc, endpoint.outputs)
    return found if isinstance(found, Mapping) else {}


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode() if isinstance(value, Mapping | list) else str(value)
