"""Cluster: one robust connection over the nodes of a RabbitMQ cluster.

aio-pika's RobustConnection reconnects to the one URL it was given, so losing that node
would leave the process retrying a dead node for ever. This connection takes every
node's URL and makes each new attempt, after a failed one or a lost connection, against
the next URL in turn; once connected it stays. Its channels and consumers are restored
by aio-pika as after any reconnect: declarations are re-run as they were made (durable,
idempotent: nothing is deleted or redeclared with other arguments), consumers resume.

The hook is public state, not a private method: RobustConnection sets `transport` to None
at the start of every connection attempt (robust_connection.py, aio-pika 9-10), so a new
attempt is seen there. tests/unit/test_cluster.py proves it on the pinned version.
It must never log a password: it names the node by its redacted URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aio_pika
import structlog
from yarl import URL

from service.bus.settings import redact_url

log = structlog.get_logger("service.bus")


class ClusterConnection(aio_pika.RobustConnection):
    """A RobustConnection that moves to the next node's URL on every new attempt."""

    def __init__(self, urls: Sequence[str], **kwargs: Any) -> None:
        if not urls:
            raise ValueError("no broker URL to connect to")
        self._urls = [URL(url) for url in urls]
        self._index = 0
        self._resets = 0  # `transport = None` once in __init__, then once per attempt
        super().__init__(self._urls[0], **kwargs)

    @property
    def url(self) -> URL:
        return self._urls[self._index]

    @url.setter
    def url(self, value: URL) -> None:  # aio-pika sets it on init and on update_secret
        self._urls[self._index] = value

    @property
    def transport(self) -> Any:
        return self._transport

    @transport.setter
    def transport(self, value: Any) -> None:
        if value is None and not getattr(self, "_close_called", False):
            self._next_node()
        self._transport = value

    @property
    def node(self) -> str:
        """The node this connection is (or is about to be) on, password masked."""
        return redact_url(str(self.url))

    def _next_node(self) -> None:
        """From the second attempt on, each attempt goes to the next node."""
        self._resets += 1
        if self._resets > 2:
            self._index = (self._index + 1) % len(self._urls)

    async def _on_connected(self) -> None:
        await super()._on_connected()
        log.info("broker.connected", node=self.node, nodes=len(self._urls))

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        if not self._close_called and not self.is_closed:
            log.warning("broker.connection_lost", node=self.node)
        await super()._on_connection_close(closing)
