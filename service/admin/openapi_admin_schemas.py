"""The admin API's bodies in the OpenAPI document: events, runs, dead letters, rules, status.

Named in components.schemas and referenced by openapi_admin.py, which also takes the run
statuses and the text on times from here.
"""

from __future__ import annotations

from service.admin.openapi_parts import OBJECT, Schema, ref
from service.automation.rules import VENDORS
from service.store.eventlog import STATUSES

RUN_STATUSES = ("starting", "running", "completed", "written_back")
RUN_OUTCOMES = ("pending", "running", "succeeded", "failed", "timed_out")
ATTEMPT_OUTCOMES = ("ok", "retry", "dead_letter", "skipped")
TIME_TEXT = "An ISO 8601 time (UTC when it has no offset), or an age like `30m`, `2h`, `1d`."

STRINGS: Schema = {"type": "array", "items": {"type": "string"}}
COUNTS: Schema = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}


def schemas() -> dict[str, Schema]:
    """The admin API's bodies, by name."""
    return {
        "LoggedEvent": _logged_event(),
        "Attempt": _attempt(),
        "EventPage": _page("LoggedEvent"),
        "EventDetail": {"allOf": [ref("LoggedEvent"), {
            "type": "object", "required": ["attempt_log"],
            "properties": {"attempt_log": {"type": "array", "items": ref("Attempt")}},
        }]},
        "Run": _run(),
        "RunPage": _page("Run"),
        "DeadLetter": _dead_letter(),
        "DeadLetterList": {"type": "object", "required": ["items"],
                           "properties": {"items": {"type": "array", "items": ref("DeadLetter")}}},
        "ReplayRequest": _replay_request(),
        "ReplayResult": {"type": "object", "required": ["replayed"],
                         "properties": {"replayed": STRINGS}},
        "Rule": _rule(),
        "Outcome": _outcome(),
        "Status": _status_schema(),
    }  # fmt: skip


def _nullable(kind: str) -> Schema:
    return {"type": [kind, "null"]}


def _object(properties: Schema) -> Schema:
    """An object that always has all these properties."""
    return {"type": "object", "required": list(properties), "properties": properties}


def _page(item: str) -> Schema:
    return _object({"items": {"type": "array", "items": ref(item)},
                    "next_cursor": {**_nullable("string"),
                                    "description": "null on the last page"}})  # fmt: skip


def _logged_event() -> Schema:
    return _object({
        "id": {"type": "string"}, "type": {"type": "string"}, "source": {"type": "string"},
        "subject": _nullable("string"), "time": _nullable("string"),
        "received_at": {"type": "number", "description": "unix seconds"},
        "updated_at": {"type": "number"}, "status": {"enum": list(STATUSES)},
        "attempts": {"type": "integer", "minimum": 0}, "last_error": _nullable("string"),
        "data": {"description": "The event's data, or null when it was too large to keep."},
    })  # fmt: skip


def _attempt() -> Schema:
    return _object({
        "handler": {"type": "string"}, "attempt": {"type": "integer"},
        "outcome": {"enum": list(ATTEMPT_OUTCOMES)}, "error": _nullable("string"),
        "at": {"type": "number"}, "duration_ms": {"type": "number"},
    })  # fmt: skip


def _run() -> Schema:
    return _object({
        "id": {"type": "integer"}, "correlation_id": {"type": "string"},
        "vendor": {"enum": list(VENDORS)}, "rule": {"type": "string"},
        "event_id": {"type": "string"}, "status": {"enum": list(RUN_STATUSES)},
        "started_at": {"type": "number"}, "run_id": _nullable("string"),
        "fact_sheet_id": _nullable("string"), "target": OBJECT, "inputs": OBJECT,
        "outcome": {"enum": [*RUN_OUTCOMES, None]}, "vendor_state": _nullable("string"),
        "outputs": OBJECT, "detail": _nullable("string"), "run_url": _nullable("string"),
        "completed_by": _nullable("string"), "completed_at": _nullable("number"),
        "written_back_at": _nullable("number"), "next_poll_at": _nullable("number"),
        "poll_count": {"type": "integer", "minimum": 0},
    })  # fmt: skip


def _dead_letter() -> Schema:
    return _object({
        "id": {"type": "string"}, "type": {"type": "string"},
        "attempts": _nullable("integer"), "dead_lettered_at": _nullable("string"),
        "failed_handlers": STRINGS, "error": _nullable("string"),
    })  # fmt: skip


def _replay_request() -> Schema:
    return {
        "type": "object",
        "description": 'Give `ids`, `id`, `type` or `since`, or `"all": true` to replay '
        "every dead letter.",
        "properties": {
            "ids": STRINGS, "id": {"type": "string"},
            "type": {"type": "string", "description": "An AMQP topic pattern of event types."},
            "since": {"type": "string", "description": f"Dead-lettered since. {TIME_TEXT}"},
            "all": {"type": "boolean"},
        },
        "additionalProperties": True,
    }  # fmt: skip


def _rule() -> Schema:
    when = _object({"fact_sheet_types": STRINGS, "tags": STRINGS, "lifecycle_phases": STRINGS,
                    "fields": OBJECT})  # fmt: skip
    write_back = _object({"comment": _nullable("string"), "on_success": ref("Outcome"),
                          "on_failure": ref("Outcome")})  # fmt: skip
    return _object({
        "name": {"type": "string"}, "patterns": STRINGS, "vendor": {"enum": list(VENDORS)},
        "target": OBJECT, "inputs": OBJECT, "when": when, "write_back": write_back,
        "dry_run": {"type": "boolean"},
    })  # fmt: skip


def _outcome() -> Schema:
    return _object({"fields": OBJECT, "tags": STRINGS,
                    "lifecycle": {"type": "object", "additionalProperties": {"type": "string"}},
                    "lx_state": _nullable("string")})  # fmt: skip


def _status_schema() -> Schema:
    broker = _object({"ready": {"type": "boolean"}, "queues": COUNTS})
    events = {**COUNTS, "propertyNames": {"enum": list(STATUSES)}}
    return _object({"version": {"type": "string"}, "broker": broker, "runs_in_flight": COUNTS,
                    "events_last_24h": events})  # fmt: skip
