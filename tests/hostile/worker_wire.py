"""A raw AMQP 0-9-1 publisher: sends frames byte for byte as a hostile client would.

aio-pika and pamqp refuse to encode much of what the broker accepts and delivers (a
message id that is not UTF-8, a delivery mode of 3, a timestamp past the year 9999, an
unsigned 64-bit header), so the attacks are written here from bytes: a plain socket,
the handshake, publisher confirms, and a content header built field by field.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Mapping
from typing import Any

from pamqp import commands, constants, encode, frame

_FRAME_HEAD = struct.Struct(">BHI")
_PROPERTY_ORDER = sorted(commands.Basic.Properties.flags.items(), key=lambda item: -item[1])


def shortstr(raw: bytes) -> bytes:
    """An AMQP short string from raw bytes (not checked: that is the point)."""
    return bytes((len(raw),)) + raw


def table(fields: Mapping[str, Any]) -> bytes:
    """A field table as pamqp encodes it (for values pamqp can encode)."""
    return encode.field_table(dict(fields))


def raw_table(*entries: bytes) -> bytes:
    """A field table from raw entries (see `entry`)."""
    body = b"".join(entries)
    return struct.pack(">I", len(body)) + body


def entry(key: bytes, kind: bytes, value: bytes) -> bytes:
    """One raw field-table entry: key, type octet, encoded value."""
    return shortstr(key) + kind + value


def properties(**raw: bytes) -> tuple[int, bytes]:
    """Property flags and list from raw encoded values, e.g. message_id=shortstr(b"\\xff")."""
    flags, parts = 0, []
    for name, bit in _PROPERTY_ORDER:
        if name in raw:
            flags |= bit
            parts.append(raw[name])
    return flags, b"".join(parts)


class Refused(Exception):
    """The broker refused the publish (closed the channel or nacked it)."""


class RawPublisher:
    """One connection and one confirmed channel, written to byte for byte."""

    def __init__(self, host: str = "127.0.0.1", port: int = 5672) -> None:
        self.host, self.port = host, port
        self.frame_max = 131072
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RawPublisher:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._writer.write(constants.AMQP + b"\x00\x00\x09\x01")
        await self._expect(commands.Connection.Start)
        self._send(0, commands.Connection.StartOk(
            client_properties={}, mechanism="PLAIN", response="\0guest\0guest", locale="en_US"
        ))  # fmt: skip
        tune = await self._expect(commands.Connection.Tune)
        self.frame_max = tune.frame_max
        self._send(0, commands.Connection.TuneOk(channel_max=1, frame_max=tune.frame_max))
        self._send(0, commands.Connection.Open(virtual_host="/"))
        await self._expect(commands.Connection.OpenOk)
        await self._open_channel()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._writer is not None
        self._writer.close()
        with contextlib.suppress(ConnectionError):  # the broker may have closed it first
            await self._writer.wait_closed()

    async def publish(
        self,
        body: bytes,
        *,
        routing_key: bytes,
        exchange: str = "",
        props: tuple[int, bytes] = (0, b""),
    ) -> None:
        """Publish and wait for the broker's confirm; Refused if it did not take it."""
        assert self._writer is not None
        method = bytearray(frame.marshal(commands.Basic.Publish(exchange=exchange), 1))
        at = len(method) - 3  # the empty routing key's length octet, then the bits, frame end
        method[at : at + 1] = shortstr(routing_key)
        method[3:7] = struct.pack(">I", len(method) - 8)
        flags, property_list = props
        header = struct.pack(">HHQH", 60, 0, len(body), flags) + property_list
        parts = [bytes(method), self._frame(2, header)]
        step = self.frame_max - 8
        parts += [self._frame(3, body[i : i + step]) for i in range(0, len(body), step)]
        self._writer.write(b"".join(parts))
        answer = await self._read()
        if isinstance(answer, commands.Channel.Close):
            self._send(1, commands.Channel.CloseOk())
            await self._open_channel()
            raise Refused(answer.reply_text)
        if isinstance(answer, commands.Connection.Close):
            raise Refused(answer.reply_text)
        if not isinstance(answer, commands.Basic.Ack):
            raise Refused(repr(answer))

    async def _open_channel(self) -> None:
        self._send(1, commands.Channel.Open())
        await self._expect(commands.Channel.OpenOk)
        self._send(1, commands.Confirm.Select())
        await self._expect(commands.Confirm.SelectOk)

    def _frame(self, kind: int, payload: bytes) -> bytes:
        return _FRAME_HEAD.pack(kind, 1, len(payload)) + payload + b"\xce"

    def _send(self, channel: int, method: Any) -> None:
        assert self._writer is not None
        self._writer.write(frame.marshal(method, channel))

    async def _read(self) -> Any:
        assert self._reader is not None
        async with asyncio.timeout(10):
            head = await self._reader.readexactly(_FRAME_HEAD.size)
            _, _, size = _FRAME_HEAD.unpack(head)
            rest = await self._reader.readexactly(size + 1)
        return frame.unmarshal(head + rest)[2]

    async def _expect(self, kind: type[Any]) -> Any:
        answer = await self._read()
        if not isinstance(answer, kind):
            raise AssertionError(f"expected {kind.__name__}, got {answer!r}")
        return answer
