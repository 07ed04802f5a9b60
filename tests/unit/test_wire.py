"""service/bus/wire.py: frames pamqp cannot decode still deliver their message."""

from __future__ import annotations

import struct

import pamqp.frame
import pytest
from pamqp import commands
from pamqp.exceptions import UnmarshalingException
from pamqp.header import ContentHeader

from service.bus import wire


def _frame(kind: int, payload: bytes, channel: int = 1) -> bytes:
    return struct.pack(">BHI", kind, channel, len(payload)) + payload + b"\xce"


def _short(raw: bytes) -> bytes:
    return bytes((len(raw),)) + raw


def test_install_puts_the_lenient_unmarshal_where_aiormq_calls_it() -> None:
    wire.install()
    wire.install()  # once: the original is kept, not wrapped twice
    assert pamqp.frame.unmarshal is wire.unmarshal
    assert wire._strict is not None and wire._strict is not wire.unmarshal


def test_a_content_header_that_cannot_be_decoded_keeps_its_body_size() -> None:
    properties = _short(b"\xff\xfe")  # message_id, not UTF-8
    payload = struct.pack(">HHQH", 60, 0, 12345, 1 << 7) + properties
    consumed, channel, header = wire.unmarshal(_frame(2, payload, channel=3))
    assert isinstance(header, ContentHeader)
    assert (consumed, channel, header.body_size) == (len(payload) + 8, 3, 12345)
    assert "cannot be decoded" in header.properties.headers[wire.UNREADABLE]
    assert header.properties.message_id is None


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [("delivery_mode", 3, "delivery mode 3"), ("expiration", "soon", "'soon' is not a number")],
)
def test_properties_aio_pika_refuses_are_left_out_and_named(
    name: str, value: object, problem: str
) -> None:
    props = commands.Basic.Properties(headers={"keep": "me"}, message_id="m")
    setattr(props, name, value)
    raw = ContentHeader(0, 2, props).marshal()
    _, _, header = wire.unmarshal(_frame(2, raw))
    assert getattr(header.properties, name) is None
    assert problem in header.properties.headers[wire.UNREADABLE]
    assert header.properties.headers["keep"] == "me"
    assert header.properties.message_id == "m"


def test_a_delivery_with_a_routing_key_that_is_not_utf8_is_decoded_with_replacements() -> None:
    args = _short(b"ctag") + struct.pack(">QB", 7, 1) + _short(b"events") + _short(b"a.\xff")
    method = commands.Basic.Deliver.index
    _, _, deliver = wire.unmarshal(_frame(1, struct.pack(">I", method) + args))
    assert isinstance(deliver, commands.Basic.Deliver)
    assert (deliver.consumer_tag, deliver.delivery_tag, deliver.redelivered) == ("ctag", 7, True)
    assert (deliver.exchange, deliver.routing_key) == ("events", "a.\ufffd")


def test_a_get_ok_and_a_return_are_decoded_the_same_way() -> None:
    get_ok = struct.pack(">IQB", commands.Basic.GetOk.index, 9, 0) + _short(b"\xff") * 2
    _, _, got = wire.unmarshal(_frame(1, get_ok + struct.pack(">I", 4)))
    assert isinstance(got, commands.Basic.GetOk)
    assert (got.delivery_tag, got.routing_key, got.message_count) == (9, "\ufffd", 4)
    returned = struct.pack(">IH", commands.Basic.Return.index, 312) + _short(b"NO_ROUTE")
    _, _, back = wire.unmarshal(_frame(1, returned + _short(b"x") + _short(b"\xfe")))
    assert isinstance(back, commands.Basic.Return)
    assert (back.reply_code, back.routing_key) == (312, "\ufffd")


def test_other_frames_that_cannot_be_decoded_still_fail() -> None:
    queue_declare_ok = struct.pack(">I", commands.Queue.DeclareOk.index) + _short(b"\xff")
    with pytest.raises(UnmarshalingException):
        wire.unmarshal(_frame(1, queue_declare_ok))


def test_good_frames_are_decoded_as_pamqp_does() -> None:
    raw = ContentHeader(0, 5, commands.Basic.Properties(message_id="ok")).marshal()
    _, _, header = wire.unmarshal(_frame(2, raw))
    assert header.properties.message_id == "ok"
    assert header.properties.headers is None
