"""Ingest: one webhook request -> one confirmed CloudEvent on the bus, or a 4xx/503.

    read the body (bounded) -> authenticate the raw bytes -> check the media type
    -> parse -> normalise -> publish and await the confirm -> 202

Nothing is published unless every step before it passed; the 202 is sent only after
the broker confirmed. Vendor APIs are never called here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from service.bus.broker import Broker
from service.cloudevent import CloudEvent, encode, event_id
from service.errors import (
    MalformedEvent,
    PayloadTooLarge,
    SourceDisabled,
    UnsupportedMedia,
)
from service.receiver.normalise import Facts
from service.receiver.signatures import Credential
from service.receiver.sources import Source
from service.settings import HttpSettings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# What the access log reports about a request, set as the request moves along.
SOURCE = web.RequestKey("source", str)
EVENT_ID = web.RequestKey("event_id", str)
DETAIL = web.RequestKey("detail", str)


def endpoint(source: Source, broker: Broker, http: HttpSettings) -> Handler:
    """The aiohttp handler of one source's endpoint."""

    async def accept(request: web.Request) -> web.Response:
        request[SOURCE] = source.name
        if source.verifier is None:
            raise SourceDisabled(f"the {source.name} source is not enabled: {source.enable_hint}")
        refuse_encoded(request)
        body = await read_body(request, http.max_body_bytes)
        credential = source.verifier.verify(request.headers, body)
        require_json(request)
        event = build_event(source, source.normalise(parse(body)), credential, body)
        require_routable(event)
        request[EVENT_ID] = event.id
        await broker.publish(
            encode(event, body),
            routing_key=event.routing_key,
            message_id=event.id,
            timeout_s=http.publish_timeout_s,
        )
        answer = orjson.dumps({"id": event.id, "status": "accepted"})
        return web.Response(body=answer, status=202, content_type="application/json")

    return accept


async def read_body(request: web.Request, limit: int) -> bytes:
    """The raw body, refusing anything over `limit` bytes before reading it all."""
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"the body is {length} bytes; the limit is {limit}")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(f"the body exceeds the limit of {limit} bytes") from None
    except RequestPayloadError as exc:
        raise MalformedEvent(f"the body could not be read: {exc}") from None


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
    if not body.strip():
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
