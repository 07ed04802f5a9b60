"""Bodies: read one request's body bounded in bytes, time and memory, or refuse it unread.

A request reserves its body's size (its Content-Length, or `http.max_body_bytes` for a
chunked body) from the process's `Budget` before a byte of it is read, and holds it
until the request is answered: it is the body, and the CloudEvent made of it, that take
memory. A request that would go over the budget is refused (Overloaded: 503 +
Retry-After) with its body unread. A body of known length is read into one buffer of
that length, so a 25 MiB body costs 25 MiB, not the doubling copies of a growing buffer;
it must arrive within `http.body_timeout_s`.

A client that hangs up mid-body is a ClientAborted (nobody is left to answer), never a
crash.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from aiohttp import HttpVersion11, StreamReader, web
from aiohttp.web_protocol import RequestPayloadError

from service.errors import BodyTimeout, ClientAborted, MalformedEvent, Overloaded, PayloadTooLarge

# How much of an admitted body aiohttp buffers before its reader takes it: larger than
# aiohttp's 64 KiB default, so a 25 MiB body is read in a few hundred steps, not a few
# thousand; small next to the body itself.
READ_CHUNK_BYTES = 1024 * 1024


class Budget:
    """Body bytes this process holds at once; each request reserves its size first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    @contextlib.contextmanager
    def reserve(self, size: int) -> Iterator[None]:
        """Hold `size` bytes for the block; Overloaded if that would go over the limit."""
        if self.in_use + size > self.limit:
            raise Overloaded("the receiver is holding as many request bodies as it may")
        self.in_use += size
        try:
            yield
        finally:
            self.in_use -= size


def announced_size(request: web.Request, limit: int) -> int:
    """The bytes to reserve: the Content-Length, refused (413) over `limit`; else `limit`."""
    length = request.content_length
    if length is None:
        return limit
    if length > limit:
        raise PayloadTooLarge(f"the body is {length} bytes; the limit is {limit}")
    return length


async def defer_continue(request: web.Request) -> None:
    """An `expect_handler` that answers `Expect: 100-continue` only when the body is read
    (aiohttp's own answers at once): a refused request's body is then never sent."""


async def read(request: web.Request, limit: int, timeout_s: float) -> bytes:
    """The raw body, in full, within `timeout_s`: at most `limit` bytes."""
    stream = request.content
    stream.set_read_chunk_size(READ_CHUNK_BYTES)
    length = request.content_length
    try:
        async with asyncio.timeout(timeout_s):
            await _continue(request)
            if length is None:
                return await _read_to_end(stream, limit)
            return await _read_exactly(stream, length)
    except TimeoutError:
        raise BodyTimeout(f"the body did not arrive within {timeout_s:g} s") from None
    except RequestPayloadError as exc:
        raise MalformedEvent(f"the body could not be read: {exc}") from None
    except ConnectionError:
        raise ClientAborted("the client closed the connection before its body was read") from None


async def _continue(request: web.Request) -> None:
    """Ask for the body, if the client waits to be asked (as aiohttp's own handler does)."""
    expect = request.headers.get("Expect", "").lower()
    if request.version == HttpVersion11 and expect == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the answer itself has not started


async def _read_exactly(stream: StreamReader, length: int) -> bytes:
    buffer = bytearray(length)
    filled = 0
    with memoryview(buffer) as view:
        while filled < length:
            chunk = await stream.readany()
            if not chunk or filled + len(chunk) > length:
                raise MalformedEvent(f"the body is not the {length} bytes its Content-Length says")
            view[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
    return bytes(buffer)  # one copy, in one step: never two bodies held across an await


async def _read_to_end(stream: StreamReader, limit: int) -> bytes:
    buffer = bytearray()
    while chunk := await stream.readany():
        if len(buffer) + len(chunk) > limit:
            raise PayloadTooLarge(f"the body exceeds the limit of {limit} bytes")
        buffer += chunk
    return bytes(buffer)
