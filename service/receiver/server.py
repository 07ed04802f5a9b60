"""The HTTP server: aiohttp's runner, with a guard on every connection it accepts.

aiohttp reads a request's headers for as long as the client takes, serves every
connection the kernel hands it, and after an answer reads whatever is left of a body to
throw it away. The guard bounds all three, in each process:

- at most `http.max_connections` connections are open: one more is closed at once,
  before aiohttp sees it;
- a request's headers must arrive within `http.header_timeout_s` of the connection's
  opening, or of the first byte after its previous answer; else the connection closes;
- a body refused before it was all read (service/receiver/body.py) is not read on: the
  connection stops reading, the answer goes out, and LINGER_S later it closes (the
  client, still sending, has had time to get the answer before the reset).

An idle keep-alive connection closes after `http.keepalive_timeout_s` (aiohttp's own
timer). The guard learns that a request has started, and ended, from the middleware it
adds in front of the app's own.
"""

from __future__ import annotations

import asyncio
import socket
from typing import cast

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from service import processes
from service.processes import BACKLOG
from service.settings import HttpSettings

log = structlog.get_logger("service.server")

# After refusing a body unread, wait this long before closing: closing a socket with
# unread bytes resets the connection, and the client should have the answer by then.
LINGER_S = 1.0
# What aiohttp buffers of a body nobody reads yet (its default: 64 KiB, and twice that
# before it stops reading). Bodies that are read raise it for themselves (body.py); at
# 16 KiB, 200 connections sending bodies that are refused hold ~40 MB, not ~120 MB.
READ_BUFFER_BYTES = 16 * 1024


class Connections:
    """The open connections of one server, and its limits."""

    def __init__(self, http: HttpSettings) -> None:
        self.limit = http.max_connections
        self.header_timeout_s = http.header_timeout_s
        self.open: dict[asyncio.BaseTransport, Guard] = {}
        self.refused = 0  # connections closed at once: over the limit
        self.timed_out = 0  # connections closed: headers not in time
        self._full = False

    def admit(self, guard: Guard, transport: asyncio.BaseTransport) -> bool:
        """Count a new connection in, unless the limit is reached."""
        if len(self.open) >= self.limit:
            self.refused += 1
            if not self._full:  # once per episode, not once per connection
                log.warning("http.connections_full", limit=self.limit, action="closing new ones")
            self._full = True
            return False
        self._full = False
        self.open[transport] = guard
        return True

    def release(self, transport: asyncio.BaseTransport) -> None:
        self.open.pop(transport, None)

    def middleware(self) -> Middleware:
        """Tell each connection's guard when a request starts and ends."""

        @web.middleware
        async def mark(request: web.Request, handler: Handler) -> web.StreamResponse:
            guard = self.open.get(request.transport) if request.transport else None
            if guard is not None:
                guard.request_started()
            try:
                return await handler(request)
            finally:
                if guard is not None:
                    guard.request_ended(unread=not request.content.is_eof())

        return mark


def _stream(transport: asyncio.BaseTransport) -> asyncio.Transport:
    """A stream connection's transport. uvloop's have asyncio.Transport's methods without
    subclassing it, so an isinstance check would be false on the service's default loop."""
    return cast(asyncio.Transport, transport)


class Guard(asyncio.Protocol):
    """One connection: aiohttp's protocol inside, a deadline on its request headers."""

    def __init__(self, connections: Connections, server: web.Server) -> None:
        self.connections = connections
        self.server = server
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.BaseTransport | None = None
        self.deadline: asyncio.TimerHandle | None = None
        self.idle = True  # no request being handled: bytes that come start a request
        self.discarding = False  # a body was refused unread: nothing more is read

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        if not self.connections.admit(self, transport):
            _stream(transport).abort()
            return
        self.inner = self.server()
        self.inner.connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.inner is None or self.discarding:
            return
        if self.idle and self.deadline is None:
            self._arm()
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.inner is None or self.transport is None:
            return
        self.connections.release(self.transport)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def request_started(self) -> None:
        self.idle = False
        self._disarm()

    def request_ended(self, unread: bool) -> None:
        """`unread`: the body has not all arrived; stop reading, aiohttp closes after LINGER_S."""
        self.idle = True
        if unread and self.transport is not None:
            self.discarding = True
            _stream(self.transport).pause_reading()

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self.deadline = loop.call_later(self.connections.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _expired(self) -> None:
        self.deadline = None
        self.connections.timed_out += 1
        log.debug("http.header_timeout", after_s=self.connections.header_timeout_s)
        if self.transport is not None:
            self.transport.close()


class GuardedSite(web.BaseSite):
    """A listening socket whose connections each get a Guard."""

    def __init__(
        self, runner: web.AppRunner, connections: Connections, http: HttpSettings,
        sock: socket.socket | None = None,
    ) -> None:  # fmt: skip
        super().__init__(runner, backlog=BACKLOG)
        self.connections = connections
        self.http = http
        self.sock = sock
        self.bound_port: int | None = None

    @property
    def name(self) -> str:
        return f"http://{self.http.host}:{self.port}"

    @property
    def port(self) -> int:
        """The port listened on (the one picked, when http.port is 0)."""
        return self.http.port if self.bound_port is None else self.bound_port

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None

        def guard() -> Guard:
            return Guard(self.connections, server)

        loop = asyncio.get_running_loop()
        if self.sock is not None:
            listening = await loop.create_server(guard, sock=self.sock, backlog=BACKLOG)
        else:
            listening = await loop.create_server(
                guard, self.http.host, self.http.port, backlog=BACKLOG, reuse_address=True
            )
        self._server = listening
        self.bound_port = int(listening.sockets[0].getsockname()[1])


async def start(
    http: HttpSettings, app: web.Application, sock: socket.socket | None = None
) -> tuple[web.AppRunner, GuardedSite]:
    """Serve `app` on `sock`, or on http.host:http.port; the runner (to clean up) and site."""
    processes.return_large_blocks()
    connections = Connections(http)
    app.middlewares.insert(0, connections.middleware())
    runner = web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=http.shutdown_grace_s,
        keepalive_timeout=http.keepalive_timeout_s,
        lingering_time=LINGER_S,
        read_bufsize=READ_BUFFER_BYTES,
    )
    await runner.setup()
    site = GuardedSite(runner, connections, http, sock)
    await site.start()
    return runner, site
