"""Delivery: one message of the work queue, read into what the consumer works on.

Reading is total: whatever a message holds, `read` returns a Delivery or raises
Unreadable with the reason, and the consumer dead-letters it with that reason. Nothing
of a message's content reaches the consumer unread.

    the broker's frames could not be decoded
    (x-bridge-unreadable, service/bus/wire.py)  -> Unreadable: why
    content_encoding set (compressed)           -> Unreadable
    content_type neither absent nor JSON        -> Unreadable
    headers that cannot be sent on              -> Unreadable (a retry and a dead letter
    (over 64 KiB, or values AMQP cannot encode)    carry them)
    x-bridge-attempt not a whole number 1..10^6  -> Unreadable
    x-bridge-handlers not a list of names       -> Unreadable
    x-bridge-waited not true or false           -> Unreadable
    a body that is not a CloudEvent             -> Unreadable "not a CloudEvent: ..."
    an event type over 255 bytes (the routing key of its retry and dead letter),
    an empty id, source or type, or a subject or time that is not a string -> the same

Every x-bridge-* header is ours; a message with one we did not write in that shape was
not published by this service, so it is refused rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from pamqp import encode

from service.bus.wire import UNREADABLE
from service.cloudevent import CloudEvent, decode
from service.worker import policy

MAX_HEADERS_BYTES = 64 * 1024  # ours are added on retry: stay well under frame_max (128 KiB)
MAX_ATTEMPT = 1_000_000
MAX_SHORTSTR = 255  # AMQP short string: a routing key, a message id
_JSON_TYPES = ("application/cloudevents+json", "application/json")
_NAME_LIMIT = 200  # a handler name, as the store keeps it


class Unreadable(Exception):
    """The message cannot be worked on; `reason` says why (the dead letter's error)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Delivery:
    """A message read: its event and what our headers say about this delivery."""

    event: CloudEvent
    attempt: int  # 1 for the first delivery; our retry copies count up
    handlers: frozenset[str] | None  # a retry copy: only these run again; None: every match
    redelivered: bool  # delivered before: by the broker, as a retry, or after a wait
    body_size: int


def read(message: AbstractIncomingMessage) -> Delivery:
    """The delivery in `message`; Unreadable with the reason if it cannot be worked on."""
    headers = message.headers or {}
    _check_properties(message, headers)
    attempt = _attempt(headers.get(policy.ATTEMPT, 1))
    handlers = _handlers(headers.get(policy.HANDLERS))
    waited = _flag(headers.get(policy.WAITED, False), policy.WAITED)
    event = _event(message.body)
    redelivered = bool(message.redelivered) or attempt > 1 or waited
    return Delivery(event, attempt, handlers, redelivered, len(message.body))


def sendable_headers(message: AbstractIncomingMessage) -> dict[str, Any]:
    """The message's headers to copy onto its retry or dead letter: all of them if they
    can be sent, none if they cannot (the dead letter's error then says why)."""
    headers = dict(message.headers or {})
    headers.pop(UNREADABLE, None)
    return headers if _headers_problem(headers) is None else {}


def sendable_id(message: AbstractIncomingMessage) -> str:
    """The message id to send on: the message's own if it fits a short string."""
    return _short(message.message_id or "") or ""


def sendable_key(routing_key: str | None) -> str:
    """A routing key that can be sent: `routing_key` if it fits, else "unreadable"."""
    return _short(routing_key or "") or "unreadable"


def _short(text: str) -> str | None:
    try:
        return text if len(text.encode()) <= MAX_SHORTSTR else None
    except UnicodeEncodeError:
        return None


def _check_properties(message: AbstractIncomingMessage, headers: Mapping[str, Any]) -> None:
    if UNREADABLE in headers:
        raise Unreadable(f"unreadable message: {_clip(headers[UNREADABLE])}")
    if message.content_encoding:
        encoding = _clip(message.content_encoding)
        raise Unreadable(f"unreadable message: content encoding {encoding!r} is not supported")
    content_type = (message.content_type or "").split(";")[0].strip().lower()
    if content_type and content_type not in _JSON_TYPES:
        raise Unreadable(
            f"unreadable message: content type {_clip(message.content_type)!r} is not"
            " a structured-mode CloudEvent (application/cloudevents+json)"
        )
    problem = _headers_problem(headers)
    if problem is not None:
        raise Unreadable(f"unreadable message: {problem}")


def _headers_problem(headers: Mapping[str, Any]) -> str | None:
    """Why these headers cannot be sent on with the message, or None."""
    if not headers:
        return None
    try:
        size = len(encode.field_table(dict(headers)))
    except Exception as exc:  # pamqp raises TypeError, ValueError, struct.error...
        return f"its headers cannot be sent on: {_clip(exc)}"
    if size > MAX_HEADERS_BYTES:
        return f"its headers are {size} bytes, over the {MAX_HEADERS_BYTES} this service sends on"
    return None


def _attempt(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ATTEMPT:
        return value
    raise Unreadable(
        f"unreadable message: header {policy.ATTEMPT} is {_shown(value)},"
        f" not a whole number from 1 to {MAX_ATTEMPT}"
    )


def _handlers(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    names = value if isinstance(value, list | tuple) else None
    if names and all(isinstance(n, str) and 0 < len(n) <= _NAME_LIMIT for n in names):
        return frozenset(names)
    raise Unreadable(
        f"unreadable message: header {policy.HANDLERS} is {_shown(value)},"
        " not a list of handler names"
    )


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    raise Unreadable(f"unreadable message: header {name} is {_shown(value)}, not true or false")


def _event(body: bytes) -> CloudEvent:
    try:
        event = decode(body)
    except ValueError as exc:
        raise Unreadable(f"not a CloudEvent: {_clip(exc)}") from None
    for name in ("id", "source", "type"):
        if not getattr(event, name):
            raise Unreadable(f"not a CloudEvent: attribute {name!r} is empty")
    for name in ("subject", "time"):
        if getattr(event, name) is not None and not isinstance(getattr(event, name), str):
            raise Unreadable(f"not a CloudEvent: attribute {name!r} is not a string")
    if _short(event.type) is None:
        raise Unreadable(f"not a CloudEvent: its type is over {MAX_SHORTSTR} bytes")
    return event


def _shown(value: Any) -> str:
    """A header value as the reason shows it: its type, and the value itself if short."""
    text = repr(value)
    return f"{type(value).__name__} {text}" if len(text) <= 60 else f"a {type(value).__name__}"


def _clip(value: Any, limit: int = 300) -> str:
    return str(value)[:limit]
