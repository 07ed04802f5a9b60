"""Frames: a basic.publish and a basic.ack encoded straight to AMQP 0-9-1 bytes.

pamqp builds, validates and marshals an object per frame, and aiormq one more per
publish; the receiver publishes one shape of message thousands of times a second, so it
encodes that shape with `struct` and caches the method frame per exchange and routing
key. A publish is three frames or more (AMQP 0-9-1 §2.3.5): the `basic.publish` method,
the content header with the properties, and the body in chunks of at most frame_max - 8
bytes. A `basic.ack` is one method frame. tests/unit/test_frames.py holds these bytes equal
to pamqp's for the same message and the same ack.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pamqp import encode

FRAME_END = b"\xce"
_METHOD, _HEADER, _BODY = 1, 2, 3
_BASIC, _PUBLISH, _ACK = 60, 40, 80
# Property flags of class basic, most significant bit first (§4.2.6.1): only those we send.
_CONTENT_TYPE = 1 << 15
_HEADERS = 1 << 13
_DELIVERY_MODE = 1 << 12
_EXPIRATION = 1 << 8
_MESSAGE_ID = 1 << 7
_FRAME_HEAD = struct.Struct(">BHI")
_CONTENT_HEAD = struct.Struct(">HHQH")
# frame type, channel, payload size 13; class, method, delivery tag, `multiple` bit; frame end
_ACK_FRAME = struct.Struct(">BHIHHQBB")


def ack(channel: int, delivery_tag: int) -> bytes:
    """A `basic.ack` of one delivery (multiple=false) on `channel`."""
    return _ACK_FRAME.pack(_METHOD, channel, 13, _BASIC, _ACK, delivery_tag, 0, FRAME_END[0])


def shortstr(text: str) -> bytes:
    """An AMQP short string: a length octet, then at most 255 bytes of UTF-8."""
    raw = text.encode()
    if len(raw) > 255:
        raise ValueError(f"an AMQP short string holds 255 bytes, not {len(raw)}")
    return bytes((len(raw),)) + raw


def frame(kind: int, channel: int, payload: bytes) -> bytes:
    return b"".join((_FRAME_HEAD.pack(kind, channel, len(payload)), payload, FRAME_END))


@lru_cache(maxsize=4096)
def method(channel: int, exchange: str, routing_key: str, mandatory: bool) -> bytes:
    """The `basic.publish` method frame (cached: a service publishes to few keys)."""
    arguments = b"".join((
        struct.pack(">HHH", _BASIC, _PUBLISH, 0),  # class, method, reserved-1
        shortstr(exchange),
        shortstr(routing_key),
        b"\x01" if mandatory else b"\x00",  # bits: mandatory, immediate (never)
    ))  # fmt: skip
    return frame(_METHOD, channel, arguments)


def properties(
    content_type: str,
    message_id: str,
    *,
    persistent: bool = True,
    headers: Mapping[str, Any] | None = None,
    expiration: str | None = None,
) -> tuple[int, bytes]:
    """The property flags and the property list, in the order of their flags."""
    flags = _CONTENT_TYPE | _DELIVERY_MODE | _MESSAGE_ID
    parts = [shortstr(content_type)]
    if headers:
        flags |= _HEADERS
        parts.append(encode.field_table(dict(headers)))
    parts.append(b"\x02" if persistent else b"\x01")
    if expiration is not None:
        flags |= _EXPIRATION
        parts.append(shortstr(expiration))
    parts.append(shortstr(message_id))
    return flags, b"".join(parts)


def publish(
    channel: int,
    exchange: str,
    routing_key: str,
    body: bytes,
    props: tuple[int, bytes],
    *,
    mandatory: bool,
    max_body_frame: int,
) -> bytes:
    """Every frame of one publish, as the bytes to write to the socket."""
    flags, property_list = props
    header = _CONTENT_HEAD.pack(_BASIC, 0, len(body), flags) + property_list
    parts = [method(channel, exchange, routing_key, mandatory), frame(_HEADER, channel, header)]
    for start in range(0, len(body), max_body_frame):
        parts.append(frame(_BODY, channel, body[start : start + max_body_frame]))
    return b"".join(parts)
