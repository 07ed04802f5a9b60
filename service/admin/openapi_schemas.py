"""The admin API's bodies in the OpenAPI document, derived from their classes by pydantic.

Every body a route answers or takes (bodies.py), and every class its fields name (the
store's `LoggedEvent`, `Attempt`, `Run`, the automation's `Rule`, ...), becomes one schema
under its class name. An answer always carries every field, so every property of an answer
is required. The store keeps statuses and vendors as plain `str`: `REFINED` adds the values
the API promises.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, get_args

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import core_schema

from service.admin import bodies
from service.admin.openapi_parts import Schema
from service.automation.rules import VENDORS, Rule
from service.runs import RunStatus
from service.store import eventlog, runs, waiting

NOT_NEGATIVE: Schema = {"minimum": 0}
REFINED: dict[tuple[type, str], Schema] = {
    (eventlog.LoggedEvent, "status"): {"enum": list(eventlog.STATUSES)},
    (eventlog.LoggedEvent, "attempts"): NOT_NEGATIVE,
    (eventlog.LoggedEvent, "received_at"): {"description": "unix seconds"},
    (eventlog.LoggedEvent, "data"): {
        "description": "The event's data, or null when it was too large to keep."
    },
    (eventlog.LoggedEvent, "attributes"): {
        "description": "Every CloudEvent context attribute as it was on the wire (extensions "
        "too): what a replay rebuilds the event from. null when logged before they were kept."
    },
    (eventlog.LoggedEvent, "accepted_at"): {
        "description": "unix seconds: when the receiver accepted the event (its `receivedat`); "
        "null for one that came another way. Latency counts from here."
    },
    (eventlog.Attempt, "outcome"): {"enum": list(eventlog.OUTCOMES)},
    (runs.Run, "vendor"): {"enum": list(VENDORS)},
    (runs.Run, "status"): {"enum": list(runs.STATUSES)},
    (runs.Run, "outcome"): {"enum": [*get_args(RunStatus), None]},
    (runs.Run, "poll_count"): NOT_NEGATIVE,
    (Rule, "vendor"): {"enum": list(VENDORS)},
    (bodies.WaitingStart, "state"): {"enum": list(waiting.STATES)},
    (bodies.WaitingStart, "vendor"): {"enum": [*VENDORS, None]},
    (bodies.WaitingStart, "first_seen"): {"description": "unix seconds: its first event"},
    (bodies.WaitingStart, "due_at"): {
        "description": "unix seconds: when its window closes (or closed), or when it came; "
        "its place in its target's line"
    },
    (bodies.WaitingStart, "retry_at"): {
        "description": "unix seconds: when a start that failed for now is tried again; "
        "null unless `retrying`"
    },
    (bodies.WaitingStart, "last_error"): {"description": "Why its last attempt failed."},
    (bodies.Status, "events_last_24h"): {"propertyNames": {"enum": list(eventlog.STATUSES)}},
    (eventlog.MinuteCount, "status"): {"enum": list(eventlog.STATUSES)},
    (eventlog.MinuteCount, "count"): NOT_NEGATIVE,
    (eventlog.MinuteCount, "minute"): {"description": "unix seconds"},
    (eventlog.Latency, "count"): NOT_NEGATIVE,
    (bodies.Stats, "since"): {"description": "unix seconds"},
    (bodies.EventReplayRequest, "status"): {"enum": ["", *eventlog.STATUSES]},
}


def schemas(answers: Iterable[type], requests: Iterable[type]) -> dict[str, Schema]:
    """Each answer and request body, and each class they name, by class name."""
    modes: list[tuple[type, JsonSchemaMode]] = [
        *((body, "serialization") for body in answers),
        *((body, "validation") for body in requests),
    ]
    _, definitions = TypeAdapter.json_schemas(
        [(body, mode, TypeAdapter(body)) for body, mode in modes],
        ref_template="#/components/schemas/{model}",
        schema_generator=_Generator,
    )
    return dict(definitions.get("$defs", {}))


class _Generator(GenerateJsonSchema):
    """Pydantic's JSON Schema, without titles and defaults, with `REFINED` applied."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def field_is_required(self, field: Any, total: bool) -> bool:
        return self.mode == "serialization" or super().field_is_required(field, total)

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        inner = self.generate_inner(schema["schema"])
        if list(inner) == ["type"] and isinstance(inner["type"], str):
            return {"type": [inner["type"], "null"]}
        return super().nullable_schema(schema)

    def dataclass_schema(self, schema: core_schema.DataclassSchema) -> JsonSchemaValue:
        generated = super().dataclass_schema(schema)
        generated.pop("title", None)
        for owner in schema["cls"].__mro__:
            for (cls, name), extra in REFINED.items():
                if cls is owner and name in generated["properties"]:
                    generated["properties"][name].update(extra)
        return generated
