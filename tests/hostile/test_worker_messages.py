"""Hostile messages on the work queue: whatever a message holds, the worker settles it.

Each attack is published byte for byte (tests/hostile/worker_wire.py) straight to the
real work queue, followed by a valid event. Asserted: the attack is dead-lettered with a
reason readable in the dead letter's headers (or, where it is readable after all,
handled), the valid event after it is handled, and once the worker stops nothing is left
unacknowledged: every message was settled.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage

from service.bus.broker import Broker
from service.cloudevent import CloudEvent
from service.deadletters import DeadLetterQueue, replay_all
from service.errors import RetryLater
from service.settings import Settings
from service.store import Database
from service.worker.consumer import Consumer
from service.worker.registry import Context, Registration, Registry
from tests.conftest import AMQP_URL, delete_topology
from tests.hostile.worker_wire import (
    RawPublisher,
    Refused,
    entry,
    properties,
    raw_table,
    shortstr,
    table,
)
from tests.waiting import eventually, poll_interval

pytestmark = pytest.mark.integration

CLOUDEVENTS = shortstr(b"application/cloudevents+json")
BIG_BYTES = 20 * 1024 * 1024  # LeanIX sends up to 20 MB


def event_body(id: str = "after-the-attack", type: str = "leanix.factsheet.updated",
               **more: Any) -> bytes:  # fmt: skip
    doc = {"specversion": "1.0", "id": id, "source": "hostile", "type": type,
           "time": "2026-11-23T10:00:00Z", "data": {"n": 1}, **more}  # fmt: skip
    return orjson.dumps(doc)


def without(name: str) -> bytes:
    doc = orjson.loads(event_body())
    del doc[name]
    return orjson.dumps(doc)


def nested(depth: int) -> bytes:
    data = b"[" * depth + b"]" * depth
    return event_body()[:-1] + b',"deep":' + data + b"}"


def headers(**values: Any) -> tuple[int, bytes]:
    return properties(content_type=CLOUDEVENTS, headers=table(values))


@dataclass(frozen=True)
class Attack:
    name: str
    body: bytes
    props: tuple[int, bytes]
    reason: str  # in the dead letter's x-bridge-error

    def __str__(self) -> str:
        return self.name


_BAD_UTF8 = b"\xff\xfe"
_HUGE_U64 = struct.pack(">Q", 2**64 - 1)
_HANDLERS = "x-bridge-handlers"
_ATTEMPT = "x-bridge-attempt"
_NOT_NAMES = "x-bridge-handlers is"
_NOT_ATTEMPT = "not a whole number from 1 to"
_NOT_EVENT = "not a CloudEvent"
_UNDECODABLE = "its properties cannot be decoded"
_NOT_SENDABLE = "its headers cannot be sent on"
VALID = event_body("the-attack")

DEAD: list[Attack] = [
    # our own headers, with a type or value we never write
    Attack("handlers-int", VALID, headers(**{_HANDLERS: 7}), "x-bridge-handlers is int 7"),
    Attack("handlers-bytes", VALID, properties(content_type=CLOUDEVENTS, headers=raw_table(
        entry(_HANDLERS.encode(), b"S", struct.pack(">I", 2) + _BAD_UTF8))), _NOT_SENDABLE),
    Attack("handlers-ints", VALID, headers(**{_HANDLERS: [1, 2]}), _NOT_NAMES),
    Attack("handlers-table", VALID, headers(**{_HANDLERS: {"a": "b"}}), _NOT_NAMES),
    Attack("handlers-empty", VALID, headers(**{_HANDLERS: []}), _NOT_NAMES),
    Attack("handlers-name-too-long", VALID, headers(**{_HANDLERS: ["x" * 5000]}), _NOT_NAMES),
    Attack("handlers-huge", VALID, headers(**{_HANDLERS: [f"h{n:09}" for n in range(7000)]}),
           "over the 65536"),
    Attack("attempt-string", VALID, headers(**{_ATTEMPT: "3"}), "x-bridge-attempt is str '3'"),
    Attack("attempt-zero", VALID, headers(**{_ATTEMPT: 0}), _NOT_ATTEMPT),
    Attack("attempt-negative", VALID, headers(**{_ATTEMPT: -1}), _NOT_ATTEMPT),
    Attack("attempt-huge", VALID, headers(**{_ATTEMPT: 2**62}), _NOT_ATTEMPT),
    Attack("attempt-bool", VALID, headers(**{_ATTEMPT: True}), _NOT_ATTEMPT),
    Attack("attempt-float", VALID, headers(**{_ATTEMPT: 1.5}), _NOT_ATTEMPT),
    Attack("waited-string", VALID, headers(**{"x-bridge-waited": "yes"}), "x-bridge-waited is"),
    Attack("unreadable-marker-forged", VALID, headers(**{"x-bridge-unreadable": "forged"}),
           "unreadable message: forged"),
    # headers and properties the client library cannot decode, or that cannot be sent on
    Attack("header-key-not-utf8", VALID, properties(headers=raw_table(
        entry(_BAD_UTF8, b"s", shortstr(b"x")))), _UNDECODABLE),
    Attack("header-timestamp-overflow", VALID, properties(headers=raw_table(
        entry(b"when", b"T", _HUGE_U64))), _UNDECODABLE),
    Attack("header-bytes-not-utf8", VALID, properties(headers=raw_table(
        entry(b"b", b"S", struct.pack(">I", 2) + _BAD_UTF8))), _NOT_SENDABLE),
    Attack("header-over-64k", VALID, headers(junk="x" * 100_000), "over the 65536"),
    Attack("message-id-not-utf8", VALID, properties(message_id=shortstr(_BAD_UTF8)),
           _UNDECODABLE),
    Attack("timestamp-overflow", VALID, properties(timestamp=_HUGE_U64), _UNDECODABLE),
    Attack("content-type-not-utf8", VALID, properties(content_type=shortstr(b"\xc3\x28")),
           _UNDECODABLE),
    Attack("content-type-text", VALID, properties(content_type=shortstr(b"text/plain")),
           "content type 'text/plain'"),
    Attack("content-type-xml", VALID, properties(content_type=shortstr(b"application/xml")),
           "content type 'application/xml'"),
    Attack("content-encoding-gzip", VALID, properties(
        content_type=CLOUDEVENTS, content_encoding=shortstr(b"gzip")),
           "content encoding 'gzip'"),
    # bodies that are not a CloudEvent
    Attack("body-not-utf8", b"\xff\xfe{", properties(content_type=CLOUDEVENTS), _NOT_EVENT),
    Attack("body-empty", b"", properties(content_type=CLOUDEVENTS), _NOT_EVENT),
    Attack("body-null", b"null", properties(), _NOT_EVENT),
    Attack("body-array", b"[1,2]", properties(), _NOT_EVENT),
    Attack("body-number", b"42", properties(), _NOT_EVENT),
    Attack("body-string", b'"text"', properties(), _NOT_EVENT),
    Attack("body-other-json", b'{"a": 1}', properties(), _NOT_EVENT),
    Attack("no-id", without("id"), properties(), "'id' is missing"),
    Attack("no-type", without("type"), properties(), "'type' is missing"),
    Attack("no-source", without("source"), properties(), "'source' is missing"),
    Attack("id-empty", event_body(""), properties(), "'id' is empty"),
    Attack("id-number", event_body().replace(b'"after-the-attack"', b"123"), properties(),
           "'id' is missing"),
    Attack("type-empty", event_body(type=""), properties(), "'type' is empty"),
    Attack("type-over-255-bytes", event_body(type="leanix." + "é" * 130), properties(),
           "its type is over 255 bytes"),
    Attack("specversion-0.3", event_body(specversion="0.3"), properties(), _NOT_EVENT),
    Attack("subject-number", event_body(subject=5), properties(), "'subject' is not a string"),
    Attack("time-number", event_body(time=5), properties(), "'time' is not a string"),
    Attack("nested-too-deep", nested(2000), properties(), _NOT_EVENT),
    Attack("body-huge-not-json", b"x" * BIG_BYTES, properties(content_type=CLOUDEVENTS),
           _NOT_EVENT),
]  # fmt: skip


@dataclass
class Readable:
    name: str
    body: bytes
    props: tuple[int, bytes]
    routing_key: bytes | None = None  # None: straight to the work queue
    id: str = "the-attack"

    def __str__(self) -> str:
        return self.name


def _big_event() -> bytes:
    return event_body("the-attack", data={"blob": "x" * BIG_BYTES})


HANDLED: list[Readable] = [
    Readable("no-content-type", VALID, properties()),
    Readable("json-with-charset", VALID, properties(
        content_type=shortstr(b"application/cloudevents+json; charset=utf-8"))),
    Readable("message-id-empty", VALID, properties(message_id=shortstr(b""))),
    Readable("message-id-255", VALID, properties(message_id=shortstr(b"m" * 255))),
    Readable("message-id-unicode", VALID, properties(message_id=shortstr("ïd ✓".encode()))),
    Readable("x-death-string", VALID, headers(**{"x-death": "garbage"})),
    Readable("x-death-ints", VALID, headers(**{"x-death": [1, 2, 3]})),
    Readable("priority-255", VALID, properties(priority=b"\xff")),
    Readable("header-int64-min", VALID, properties(headers=raw_table(
        entry(b"n", b"l", struct.pack(">q", -(2**63)))))),
    Readable("header-decimal", VALID, properties(headers=raw_table(
        entry(b"d", b"D", b"\x02" + struct.pack(">i", 12345))))),
    Readable("our-headers-well-formed", VALID, headers(**{
        _ATTEMPT: 2, _HANDLERS: ["recorder"], "x-bridge-waited": False})),
    Readable("routing-key-not-utf8", VALID, properties(), routing_key=b"leanix.\xff.x"),
    Readable("id-300-characters", event_body("i" * 300), properties(), id="i" * 300),
    Readable("body-20-mb", _big_event(), properties(content_type=CLOUDEVENTS)),
]  # fmt: skip


# --- the worker under attack --------------------------------------------------------------


@dataclass
class Worker:
    settings: Settings
    broker: Broker
    registry: Registry
    seen: asyncio.Queue[tuple[CloudEvent, Context]] = field(default_factory=asyncio.Queue)
    consumer: Consumer | None = None
    database: Database | None = None

    async def start(self) -> None:
        if self.database is None:  # the store of `settings`: the event log and claims
            self.database = Database(self.settings.store.url)
            await self.database.open()
        self.consumer = Consumer(self.settings, self.broker, self.registry, database=self.database)
        await self.consumer.start()

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop(5)
            self.consumer = None
        if self.database is not None:
            await self.database.close()
            self.database = None

    async def next_handled(self, timeout_s: float = 15) -> tuple[CloudEvent, Context]:
        async with asyncio.timeout(timeout_s):
            return await self.seen.get()


@pytest.fixture
def settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    return make_settings(
        worker={"prefetch": 4, "retry_delays_s": [0.2]},
        store={"url": f"sqlite+aiosqlite:///{tmp_path / 'store.sqlite3'}"},
    )


@pytest.fixture
async def broker(settings: Settings) -> AsyncIterator[Broker]:
    broker = Broker(settings.amqp)
    await broker.start()
    await broker.wait_ready(15)
    yield broker
    await broker.close()
    await delete_topology(settings)


@pytest.fixture
async def worker(settings: Settings, broker: Broker) -> AsyncIterator[Worker]:
    """A consumer whose one handler, `recorder`, records every event (not started yet)."""
    registry = Registry()
    worker = Worker(settings, broker, registry)

    @registry.handler("#", name="recorder")
    async def record(event: CloudEvent, context: Context) -> None:
        await worker.seen.put((event, context))

    yield worker
    await worker.stop()


async def publish(settings: Settings, body: bytes, props: tuple[int, bytes],
                  routing_key: bytes | None = None) -> None:  # fmt: skip
    """Publish byte for byte: to the events exchange with `routing_key`, else to the queue."""
    async with RawPublisher() as raw:
        if routing_key is None:
            await raw.publish(body, routing_key=settings.amqp.queue.encode(), props=props)
        else:
            await raw.publish(
                body, routing_key=routing_key, exchange=settings.amqp.exchange, props=props
            )


async def publish_valid(settings: Settings, id: str = "after-the-attack") -> None:
    await publish(settings, event_body(id), properties(content_type=CLOUDEVENTS))


async def dead_letters(settings: Settings) -> list[AbstractIncomingMessage]:
    """Take every message of the dead-letter queue."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(settings.amqp.dead_letter_queue, passive=True)
        taken = []
        while (message := await queue.get(fail=False)) is not None:
            await message.ack()
            taken.append(message)
        return taken


async def dead_letter_count(settings: Settings) -> int:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(settings.amqp.dead_letter_queue, passive=True)
        return queue.declaration_result.message_count or 0


async def assert_all_settled(worker: Worker) -> None:
    """Stop consuming and close the connection: anything unacked would be back in the work
    queue, ready. Nothing may be."""
    await worker.stop()
    await worker.broker.close()
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(worker.settings.amqp.queue, passive=True)
        left = queue.declaration_result.message_count
    assert left == 0, f"{left} message(s) were left unsettled in the work queue"


# --- the tests ----------------------------------------------------------------------------


@pytest.mark.parametrize("attack", DEAD, ids=str)
async def test_a_message_the_worker_cannot_read_is_dead_lettered_with_the_reason(
    attack: Attack, worker: Worker, settings: Settings
) -> None:
    await worker.start()
    await publish(settings, attack.body, attack.props)
    await publish_valid(settings)

    event, _ = await worker.next_handled()
    assert event.id == "after-the-attack"  # the worker went on consuming
    await eventually(lambda: _has_one_dead_letter(settings), what="the dead letter")
    [dead] = await dead_letters(settings)
    assert attack.reason in str(dead.headers["x-bridge-error"])
    assert list(dead.headers["x-bridge-failed-handlers"]) == ["decode"]  # type: ignore[arg-type]
    assert dead.body == attack.body
    assert worker.seen.empty()  # the attack reached no handler
    await assert_all_settled(worker)


async def _has_one_dead_letter(settings: Settings) -> bool:
    return await dead_letter_count(settings) == 1


@pytest.mark.parametrize("odd", HANDLED, ids=str)
async def test_an_odd_but_readable_message_is_handled(
    odd: Readable, worker: Worker, settings: Settings
) -> None:
    await worker.start()
    await publish(settings, odd.body, odd.props, odd.routing_key)
    await publish_valid(settings)

    handled = {(await worker.next_handled())[0].id for _ in range(2)}
    assert handled == {odd.id, "after-the-attack"}
    assert await dead_letter_count(settings) == 0
    await assert_all_settled(worker)


async def test_a_flood_of_unreadable_messages_beyond_the_prefetch_does_not_stop_the_worker(
    worker: Worker, settings: Settings
) -> None:
    """Before: `prefetch` messages with an integer x-bridge-handlers stopped the worker."""
    flood = [a for a in DEAD if len(a.body) < 1024 * 1024] * 2
    assert len(flood) > 10 * settings.worker.prefetch
    async with RawPublisher() as raw:
        for attack in flood:
            await raw.publish(attack.body, routing_key=settings.amqp.queue.encode(),
                              props=attack.props)  # fmt: skip
    await worker.start()
    await publish_valid(settings)

    event, _ = await worker.next_handled()
    assert event.id == "after-the-attack"

    async def all_dead() -> bool:
        return await dead_letter_count(settings) == len(flood)

    await eventually(all_dead, what=f"{len(flood)} dead letters")
    await assert_all_settled(worker)


async def test_a_redelivered_message_is_handled_as_redelivered(
    worker: Worker, settings: Settings
) -> None:
    await publish_valid(settings, "delivered-twice")
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:  # another consumer takes it and dies without settling it
        channel = await connection.channel()
        queue = await channel.declare_queue(settings.amqp.queue, passive=True)
        taken = await _get(queue)
        assert not taken.redelivered
    await worker.start()

    event, context = await worker.next_handled()
    assert event.id == "delivered-twice"
    assert context.redelivered
    await assert_all_settled(worker)


async def _get(queue: Any) -> AbstractIncomingMessage:
    async with asyncio.timeout(10):
        while (message := await queue.get(fail=False)) is None:
            await poll_interval()
    return message  # type: ignore[no-any-return]


async def test_a_retry_carrying_a_forged_x_death_is_retried_and_handled(
    worker: Worker, settings: Settings
) -> None:
    """RabbitMQ rewrites x-death when the retry queue's TTL sends the event back; a forged
    one must neither stop that nor count as our attempts."""
    failures = iter([RetryLater("once")])

    @worker.registry.handler("#", name="flaky")
    async def flaky(event: CloudEvent, context: Context) -> None:
        if (failure := next(failures, None)) is not None:
            raise failure
        await worker.seen.put((event, context))

    await worker.start()
    await publish(settings, VALID, headers(**{"x-death": "garbage"}))

    seen = [(await worker.next_handled())[1] for _ in range(2)]  # recorder, then flaky's retry
    assert sorted(c.attempt for c in seen) == [1, 2]
    assert await dead_letter_count(settings) == 0
    await assert_all_settled(worker)


BROKER_REFUSES = [
    ("delivery-mode-3", properties(delivery_mode=b"\x03")),
    ("expiration-not-a-number", properties(expiration=shortstr(b"abc"))),
    ("expiration-negative", properties(expiration=shortstr(b"-5"))),
    ("header-of-unknown-type", properties(headers=raw_table(entry(b"k", b"Z", b"\x00")))),
    ("header-table-truncated", properties(headers=struct.pack(">I", 50) + b"\x01k")),
    ("cc-header-not-a-list", headers(CC=5)),
]


@pytest.mark.parametrize(("name", "props"), BROKER_REFUSES, ids=[n for n, _ in BROKER_REFUSES])
async def test_what_the_broker_lets_through_of_a_malformed_message_is_dead_lettered(
    name: str, props: tuple[int, bytes], worker: Worker, settings: Settings
) -> None:
    """RabbitMQ 3.x refuses these at publish; should a broker pass one on, the worker
    must dead-letter it (service/bus/wire.py makes aio-pika's refusals readable)."""
    await worker.start()
    try:
        await publish(settings, VALID, props)
        passed = True
    except Refused:
        passed = False
    await publish_valid(settings)

    event, _ = await worker.next_handled()
    assert event.id == "after-the-attack"
    if passed:
        await eventually(lambda: _has_one_dead_letter(settings), what="the dead letter")
    await assert_all_settled(worker)


class _Exploding(Registry):
    """A registry with a bug: matching one event type raises."""

    def match(self, event_type: str) -> list[Registration]:
        if event_type == "leanix.explode":
            raise RuntimeError("a bug in the worker")
        return super().match(event_type)


async def test_a_bug_while_handling_a_message_dead_letters_it_and_the_worker_goes_on(
    settings: Settings, broker: Broker
) -> None:
    worker = Worker(settings, broker, _Exploding())

    @worker.registry.handler("#", name="recorder")
    async def record(event: CloudEvent, context: Context) -> None:
        await worker.seen.put((event, context))

    await worker.start()
    try:
        await publish(settings, event_body("boom", type="leanix.explode"), properties())
        await publish_valid(settings)
        event, _ = await worker.next_handled()
        assert event.id == "after-the-attack"
        await eventually(lambda: _has_one_dead_letter(settings), what="the dead letter")
        [dead] = await dead_letters(settings)
        error = str(dead.headers["x-bridge-error"])
        assert error.startswith("the worker failed on this message: RuntimeError: a bug")
    finally:
        await worker.stop()
    await assert_all_settled(worker)


async def test_a_handler_error_whose_text_cannot_be_made_is_still_classified(
    worker: Worker, settings: Settings
) -> None:
    class Unprintable(RetryLater):
        def __str__(self) -> str:
            raise ValueError("no text")

    failures = iter([Unprintable()])

    @worker.registry.handler("#", name="rude")
    async def rude(event: CloudEvent, context: Context) -> None:
        if (failure := next(failures, None)) is not None:
            raise failure
        await worker.seen.put((event, context))

    await worker.start()
    await publish(settings, VALID, properties())
    seen = [(await worker.next_handled())[1] for _ in range(2)]  # retried, not dead-lettered
    assert sorted(c.attempt for c in seen) == [1, 2]
    await assert_all_settled(worker)


async def test_an_unreadable_message_replayed_without_its_poison_reaches_every_handler(
    worker: Worker, settings: Settings, broker: Broker
) -> None:
    """Replay drops our bookkeeping headers, the poisoned one with them, and runs every
    handler: `decode`, the failed handler of an unreadable message, is none of them."""
    await worker.start()
    await publish(settings, VALID, headers(**{_HANDLERS: 7}))
    await eventually(lambda: _has_one_dead_letter(settings), what="the dead letter")

    dlq = DeadLetterQueue(broker)
    try:
        letters = await dlq.read(["the-attack"])
        assert [letter.failed_handlers for letter in letters] == [["decode"]]
        await replay_all(dlq, letters)
    finally:
        await dlq.release()

    event, _ = await worker.next_handled()
    assert event.id == "the-attack"
    assert await dead_letter_count(settings) == 0
    await assert_all_settled(worker)
