"""Ingest: one webhook request -> one confirmed CloudEvent on the bus, or a 4xx/503.

    check the headers: encoding, size, credential (or signature form), media type
    -> reserve the body's bytes -> read the body (bounded) -> authenticate the raw bytes
    -> parse -> normalise -> publish and await the confirm -> 202

A pulled LeanIX event (service/pull/) takes the same path from `build_message` on.

Whatever the headers show is refused before the body is read, so a request without a
credential costs no memory. Nothing is published unless every step before it passed;
the 202 is sent only after the broker confirmed. Vendor APIs are never called here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from service.bus.broker import Broker
from service.cloudevent import CloudEvent, encode, event_id
from service.errors import MalformedEvent, SourceDisabled, Unauthorized, UnsupportedMedia
from service.receiver import body as bodies
from service.receiver.sources import Source
from service.settings import HttpSettings
from service.vendors.normalise import Facts
from service.vendors.signatures import Credential, Verifier

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# What the access log reports about a request, set as the request moves along.
SOURCE = web.RequestKey("source", str)
EVENT_ID = web.RequestKey("event_id", str)
DETAIL = web.RequestKey("detail", str)


def endpoint(source: Source, broker: Broker, http: HttpSettings, budget: bodies.Budget) -> Handler:
    """The aiohttp handler of one source's endpoint."""

    async def accept(request: web.Request) -> web.Response:
        request[SOURCE] = source.name
        verifier = enabled(source)
        refuse_encoded(request)
        size = bodies.announced_size(request, http.max_body_bytes)
        verifier.check(request.headers)
        require_json(request)
        with budget.reserve(size):
            body = await bodies.read(request, http.max_body_bytes, http.body_timeout_s)
            event, message = build_message(source, verifier.verify(request.headers, body), body)
            del body  # from here on only the message holds the sender's bytes
            request[EVENT_ID] = event.id
            await send(broker, event, message, http.publish_timeout_s)
        answer = orjson.dumps({"id": event.id, "status": "accepted"})
        return web.Response(body=answer, status=202, content_type="application/json")

    return accept


async def send(broker: Broker, event: CloudEvent, message: bytes, timeout_s: float) -> None:
    """Publish an event's message persistently and wait for the broker's confirm: the last
    step of every LeanIX event, pushed here or pulled by service/pull/puller.py."""
    await broker.publish(
        message, routing_key=event.routing_key, message_id=event.id, timeout_s=timeout_s
    )


def enabled(source: Source) -> Verifier:
    """The source's verifier; SourceDisabled when it has no credential configured."""
    if source.verifier is None:
        raise SourceDisabled(f"the {source.name} source is not enabled: {source.enable_hint}")
    return source.verifier


def build_message(source: Source, credential: Credential, body: bytes) -> tuple[CloudEvent, bytes]:
    """The CloudEvent of an authenticated body, and its encoded message (the body inside)."""
    facts = scoped(source.normalise(parse(body)), credential)
    event = build_event(source, facts, credential, body)
    require_routable(event)
    return event, encode(event, body)


def scoped(facts: Facts, credential: Credential) -> Facts:
    """A credential that vouches for one source (a LeanIX workspace's Authorization value)
    accepts that source's events only; an event that names no workspace is taken as its."""
    bound = credential.source
    if bound is None or facts.source == bound:
        return facts
    if ":" not in facts.source:  # e.g. a body a LeanIX callback script reshaped
        return dataclasses.replace(facts, source=bound)
    raise Unauthorized("this Authorization value is not one of the workspace the event names")


def refuse_encoded(request: web.Request) -> None:
    """Signatures cover the bytes sent: a compressed body would be checked after inflating."""
    coding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if coding not in ("", "identity"):
        raise UnsupportedMedia(f"send the body uncompressed (got Content-Encoding {coding!r})")


def require_routable(event: CloudEvent) -> None:
    """An AMQP routing key holds 255 bytes; a longer event type cannot be an event of ours."""
    if len(event.type.encode()) > 255:
        raise MalformedEvent("the event type is longer than 255 bytes")


def require_json(request: web.Request) -> None:
    """Accept application/json and application/*+json only."""
    media = request.content_type
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return
    raise UnsupportedMedia(f"send Content-Type: application/json (got {media!r})")


def parse(body: bytes) -> dict[str, Any]:
    """The body as a JSON object."""
    if not body or body.isspace():  # without copying a body of any size
        raise MalformedEvent("the body is empty")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedEvent(f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise MalformedEvent(f"the body must be a JSON object, not {type(payload).__name__}")
    return payload


def build_event(source: Source, facts: Facts, credential: Credential, body: bytes) -> CloudEvent:
    """The CloudEvent of an accepted request; `data` is the body, spliced in by `encode`."""
    received = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    sender_id = credential.message_id if credential.message_id is not None else facts.sender_id
    return CloudEvent(
        id=event_id(source.name, sender_id, body),
        source=facts.source,
        type=facts.type,
        subject=facts.subject,
        time=facts.time or received,
        extensions={
            "receivedat": received,
            "authsource": f"{source.name}/{credential.scheme}",
        },
    )
