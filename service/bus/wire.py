"""Wire: what the broker delivers, decoded so that no message can stop a consumer.

aiormq decodes every incoming frame with `pamqp.frame.unmarshal` in its connection's
reader. The broker passes on whatever a publisher sent, and pamqp cannot decode all of
it: a message id or header key that is not UTF-8, a timestamp past the year 9999, a
header of an unknown type. Such a frame stops the reader, which closes the connection;
the message comes again after the reconnect and closes it again, for every consumer on
that connection. aio-pika in turn refuses a delivery mode other than 1 or 2 and an
expiration that is not a number, before any consumer callback runs, so the message is
never settled.

`install()` (the Broker and the tail call it before they connect) wraps
`pamqp.frame.unmarshal`, the one function aiormq decodes with, looked up on the module
at each call, so that:

    a content header that cannot be decoded  -> the same body size, with properties that
                                                carry only UNREADABLE: why
    properties aio-pika cannot take          -> those left out, UNREADABLE added
    a delivery whose exchange or routing key
    is not UTF-8                             -> decoded with replacement characters
    anything else                            -> as pamqp decodes it (or fails)

The consumer dead-letters a message carrying UNREADABLE with its reason. This leans on
aiormq calling `pamqp.frame.unmarshal` (aiormq 7, pamqp 4: pinned through aiormq in
pyproject.toml); tests/hostile/test_worker_messages.py sends such frames to the real
broker and proves it for the versions installed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pamqp.frame
from pamqp import commands
from pamqp.frame import FrameTypes
from pamqp.header import ContentHeader

UNREADABLE = "x-bridge-unreadable"

_HEADER_FRAME, _METHOD_FRAME = 2, 1
_FRAME_HEAD = struct.Struct(">BHI")
_CONTENT_HEAD = struct.Struct(">HHQ")
_DELIVERY_MODES = (None, 0, 1, 2)  # aio-pika takes 0 and None as "not persistent"
# Methods that carry a message, with their arguments in wire order (s: shortstr,
# Q: longlong, b: bit, H: short, I: long); their strings are decoded leniently.
_CARRIERS: dict[int, tuple[type[Any], tuple[tuple[str, str], ...]]] = {
    commands.Basic.Deliver.index: (commands.Basic.Deliver, (
        ("consumer_tag", "s"), ("delivery_tag", "Q"), ("redelivered", "b"),
        ("exchange", "s"), ("routing_key", "s"))),
    commands.Basic.GetOk.index: (commands.Basic.GetOk, (
        ("delivery_tag", "Q"), ("redelivered", "b"), ("exchange", "s"),
        ("routing_key", "s"), ("message_count", "I"))),
    commands.Basic.Return.index: (commands.Basic.Return, (
        ("reply_code", "H"), ("reply_text", "s"), ("exchange", "s"), ("routing_key", "s"))),
}  # fmt: skip

Unmarshal = Callable[[bytes], tuple[int, int, FrameTypes]]
_strict: Unmarshal | None = None


def install() -> None:
    """Make aiormq decode every frame through `unmarshal` (once per process)."""
    global _strict
    if _strict is None:
        _strict = pamqp.frame.unmarshal
        pamqp.frame.unmarshal = unmarshal


def unmarshal(data_in: bytes) -> tuple[int, int, FrameTypes]:
    """pamqp's unmarshal, made total for the frames that carry a message."""
    strict = _strict or pamqp.frame.unmarshal
    try:
        consumed, channel, frame = strict(data_in)
    except Exception as exc:
        lenient = _lenient(data_in, exc)
        if lenient is None:
            raise
        return lenient
    if isinstance(frame, ContentHeader):
        _check_properties(frame)
    return consumed, channel, frame


def _lenient(data: bytes, exc: Exception) -> tuple[int, int, FrameTypes] | None:
    """The frame decoded despite `exc`, or None if it does not carry a message."""
    if len(data) < _FRAME_HEAD.size:
        return None
    kind, channel, size = _FRAME_HEAD.unpack_from(data)
    payload = data[_FRAME_HEAD.size : _FRAME_HEAD.size + size]
    consumed = _FRAME_HEAD.size + size + 1
    if kind == _HEADER_FRAME and len(payload) >= _CONTENT_HEAD.size:
        _, weight, body_size = _CONTENT_HEAD.unpack_from(payload)
        reason = f"its properties cannot be decoded: {_text(exc)}"
        properties = commands.Basic.Properties(headers={UNREADABLE: reason})
        return consumed, channel, ContentHeader(weight, body_size, properties)
    if kind == _METHOD_FRAME and len(payload) >= 4:
        carrier = _CARRIERS.get(struct.unpack_from(">I", payload)[0])
        if carrier is not None:
            try:
                return consumed, channel, _method(*carrier, payload[4:])
            except (struct.error, IndexError):
                return None
    return None


def _method(kind: type[Any], arguments: tuple[tuple[str, str], ...], data: bytes) -> Any:
    """A message-carrying method decoded with replacement characters for bad UTF-8."""
    method = kind()
    offset = 0
    for name, code in arguments:
        if code == "s":
            length = data[offset]
            value: Any = data[offset + 1 : offset + 1 + length].decode(errors="replace")
            offset += 1 + length
        elif code == "b":
            value = bool(data[offset] & 1)
            offset += 1
        else:
            value = struct.unpack_from(f">{code}", data, offset)[0]
            offset += struct.calcsize(f">{code}")
        setattr(method, name, value)
    return method


def _check_properties(header: ContentHeader) -> None:
    """Leave out what aio-pika cannot build a message from, and say so in UNREADABLE."""
    properties = header.properties
    problems = []
    if properties.delivery_mode not in _DELIVERY_MODES:
        problems.append(f"delivery mode {properties.delivery_mode!r} is not 1 or 2")
        properties.delivery_mode = None
    if properties.expiration is not None and not _is_number(properties.expiration):
        problems.append(f"expiration {properties.expiration[:50]!r} is not a number")
        properties.expiration = None
    if problems:
        headers = properties.headers if isinstance(properties.headers, dict) else {}
        properties.headers = {**headers, UNREADABLE: "; ".join(problems)}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _text(exc: Exception) -> str:
    return (str(exc) or type(exc).__name__)[:500]
