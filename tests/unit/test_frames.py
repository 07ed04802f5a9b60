"""The fast path's hand-encoded publish is byte for byte what pamqp marshals."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pamqp import commands, frame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from service.bus import fastpath as frames

MAX_BODY_FRAME = 131072 - 8


def reference(
    channel: int, exchange: str, key: str, body: bytes, message_id: str, **extra: Any
) -> bytes:
    """The same publish, through pamqp: method, content header, body chunks."""
    properties = commands.Basic.Properties(
        content_type="application/cloudevents+json",
        delivery_mode=2,
        message_id=message_id,
        headers=extra.get("headers"),
        expiration=extra.get("expiration"),
    )
    parts = [
        frame.marshal(
            commands.Basic.Publish(exchange=exchange, routing_key=key, mandatory=True), channel
        ),
        frame.marshal(ContentHeader(0, len(body), properties), channel),
    ]
    for start in range(0, len(body), MAX_BODY_FRAME):
        parts.append(frame.marshal(ContentBody(body[start : start + MAX_BODY_FRAME]), channel))
    return b"".join(parts)


def ours(
    channel: int, exchange: str, key: str, body: bytes, message_id: str, **extra: Any
) -> bytes:
    props = frames.properties("application/cloudevents+json", message_id, **extra)
    return frames.publish(
        channel, exchange, key, body, props, mandatory=True, max_body_frame=MAX_BODY_FRAME
    )


@pytest.mark.parametrize(
    ("body", "extra"),
    [
        (b'{"specversion":"1.0"}', {}),
        (b"", {}),
        (b"x" * (3 * MAX_BODY_FRAME + 17), {}),
        (b"{}", {"headers": {"x-bridge-attempt": 3, "x-bridge-handlers": "a,b", "ok": True}}),
        (b"{}", {"expiration": "15000"}),
        (b"{}", {"headers": {"x-first-death": {"reason": "expired", "n": 1.5}}, "expiration": "1"}),
    ],
)
def test_a_publish_is_what_pamqp_marshals(body: bytes, extra: dict[str, Any]) -> None:
    args = (7, "events", "leanix.factsheet.updated", body, "0b0e5e4c-id")
    assert ours(*args, **extra) == reference(*args, **extra)


_short = st.text(max_size=40)


# A message id is never empty (ours are UUIDs); pamqp leaves an empty one out.
_exchange = st.from_regex(r"[a-zA-Z0-9_.:-]{0,60}", fullmatch=True)  # names AMQP allows


@given(exchange=_exchange, key=_short, message_id=_short.filter(bool), body=st.binary(max_size=300))
def test_any_names_and_body_encode_as_pamqp_does(
    exchange: str, key: str, message_id: str, body: bytes
) -> None:
    assert ours(1, exchange, key, body, message_id) == reference(1, exchange, key, body, message_id)


def test_a_routing_key_over_255_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="255 bytes"):
        ours(1, "events", "é" * 128, b"{}", "id")
