"""The LeanIX simulator's PULL subscriptions: an event log per subscription and its cursor.

    GET /services/webhooks/v1/subscriptions/{id}/events?autoCommit=false&timeout=N
        the events from the committed cursor on, up to maxBatchSize KiB (a soft limit: at
        least one event); none yet -> held open up to N seconds (default 10) for one to
        arrive, then an empty batch. Without a commit the next fetch answers the same batch
    PUT /services/webhooks/v1/subscriptions/{id}/cursor {"offset": n}
        the next fetch starts at n (0 <= n <= the end of the log); 400 otherwise

Events older than the retention (30 days) are gone. Faults besides the shared ones (5xx,
latency, hangs: base.Faults): `commit_fails_after_applied` answers 500 to that many
commits *after* moving the cursor; `hold_commits` (cleared) holds each commit before it is
applied, and a commit whose caller has gone meanwhile is not applied. The HTTP statuses
and the `status`/`type` strings of the envelope are not documented: guesses.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from service.simulators.base import json_response
from service.simulators.leanix_webhook import delivery

SUBSCRIPTIONS_PATH = "/services/webhooks/v1/subscriptions"
RETENTION_S = 30 * 86400.0
DEFAULT_TIMEOUT_S = 10


@dataclass
class Logged:
    offset: int
    at: float
    text: str  # the serialised event, as the API sends it


@dataclass
class Feed:
    """One PULL subscription: its events, where its cursor stands, its batch limit."""

    id: str
    payload_mode: str = "DEFAULT"
    max_batch_kib: int = 512
    retention_s: float = RETENTION_S
    cursor: int = 0
    log: list[Logged] = field(default_factory=list)
    commits: list[int] = field(default_factory=list)
    fetches: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # replaced per append

    def batch(self, now: float) -> list[Logged]:
        """From the cursor on, within the retention and the batch limit."""
        kept = [e for e in self.log if e.offset >= self.cursor and e.at >= now - self.retention_s]
        taken: list[Logged] = []
        size = 0
        for logged in kept:
            size += len(logged.text)
            if taken and size > self.max_batch_kib * 1024:
                break
            taken.append(logged)
        return taken


class PullApi:
    """The PULL endpoints of the LeanIX simulator; `authorised` names the bearer's user."""

    def __init__(self, authorised: Callable[[web.Request], str | None], clock: Callable[[], float]):
        self.authorised = authorised
        self.clock = clock
        self.feeds: dict[str, Feed] = {}
        self.commit_fails_after_applied = 0
        self.hold_commits = asyncio.Event()
        self.hold_commits.set()  # cleared: commits wait
        self.held: list[web.Request] = []  # commits waiting for hold_commits

    def routes(self, app: web.Application) -> None:
        app.router.add_get(SUBSCRIPTIONS_PATH + "/{id}/events", self._events)
        app.router.add_put(SUBSCRIPTIONS_PATH + "/{id}/cursor", self._cursor)

    def subscribe(
        self, payload_mode: str = "DEFAULT", max_batch_kib: int = 512, id: str | None = None
    ) -> str:
        """A PULL feed (under `id`: the subscription of that id made over the CRUD API)."""
        feed = Feed(id or str(uuid.uuid4()), payload_mode, max_batch_kib)
        self.feeds.setdefault(feed.id, feed)
        return feed.id

    def append(self, event: dict[str, Any]) -> None:
        """Log one event (payloadMode DEFAULT shape) on every PULL subscription."""
        for feed in self.feeds.values():
            text = orjson.dumps(delivery(event, feed.payload_mode)).decode()
            feed.log.append(Logged(len(feed.log), self.clock(), text))
            feed.arrived.set()
            feed.arrived = asyncio.Event()

    def callers_gone(self) -> bool:
        """Whether every held commit's caller has closed its connection."""
        return all(r.transport is None or r.transport.is_closing() for r in self.held)

    def pending(self, subscription_id: str) -> int:
        """Events after the committed cursor."""
        feed = self.feeds[subscription_id]
        return len(feed.log) - feed.cursor

    async def _events(self, request: web.Request) -> web.Response:
        feed, refused = self._feed(request)
        if feed is None:
            return refused
        try:
            timeout_s = int(request.query.get("timeout", DEFAULT_TIMEOUT_S))
        except ValueError:
            return _error(400, "timeout must be a whole number of seconds")
        feed.fetches += 1
        batch = await self._wait_for_batch(feed, max(0, timeout_s))
        next_offset = batch[-1].offset + 1 if batch else feed.cursor
        if request.query.get("autoCommit", "false").lower() == "true":
            feed.cursor = next_offset
        events = [{"cursor": {"offset": e.offset}, "event": e.text} for e in batch]
        data = {"events": events, "nextCursor": {"offset": next_offset}}
        return json_response({"status": "OK", "type": "PullResultResponse", "data": data})

    async def _wait_for_batch(self, feed: Feed, timeout_s: int) -> list[Logged]:
        """The batch, once there is one or `timeout_s` passed (the long poll)."""
        try:
            async with asyncio.timeout(timeout_s):
                while not (batch := feed.batch(self.clock())):
                    await feed.arrived.wait()
                return batch
        except TimeoutError:
            return []

    async def _cursor(self, request: web.Request) -> web.Response:
        feed, refused = self._feed(request)
        if feed is None:
            return refused
        body = await request.json()
        offset = body.get("offset") if isinstance(body, dict) else None
        if (
            not isinstance(offset, int)
            or isinstance(offset, bool)
            or not 0 <= offset <= len(feed.log)
        ):
            return _error(400, f"offset must be an integer from 0 to {len(feed.log)}")
        self.held.append(request)
        try:
            await self.hold_commits.wait()
        finally:
            self.held.remove(request)
        if request.transport is None or request.transport.is_closing():
            return _error(499, "the caller went away before the commit")  # never applied
        feed.cursor = offset
        feed.commits.append(offset)
        if self.commit_fails_after_applied > 0:
            self.commit_fails_after_applied -= 1
            return _error(500, "injected fault: the cursor moved, the answer failed")
        return json_response({"status": "OK", "type": "BasicResponse"})

    def _feed(self, request: web.Request) -> tuple[Feed | None, web.Response]:
        if self.authorised(request) is None:
            return None, _error(401, "Unauthorized")
        feed = self.feeds.get(request.match_info["id"])
        if feed is None:
            return None, _error(404, "no PULL subscription with this id")
        return feed, json_response({})


def _error(status: int, message: str) -> web.Response:
    return json_response({"status": "ERROR", "message": message, "errors": []}, status)
