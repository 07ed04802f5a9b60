"""PULL mode over the real broker and store, against the LeanIX simulator's PULL API.

Each test pulls a subscription of the simulator onto this test's exchange and holds the
client's requests and the simulator's answers to LeanIX's contract.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace

import aiohttp
import orjson
import pytest

from service.bus.broker import Broker
from service.clients.leanix import LeanixClient
from service.clients.leanix_webhooks import LeanixWebhooks
from service.cloudevent import CloudEvent
from service.pull.puller import Puller
from service.receiver import sources
from service.receiver.ingest import build_message
from service.settings import PullSettings, Settings
from service.simulators.leanix import DEFAULT_API_TOKEN, LeanixSimulator
from service.store import Database
from service.vendors.signatures import Credential
from service.worker.consumer import Consumer
from service.worker.registry import Context, Registry
from tests.contracts.recording import Recorder
from tests.integration.conftest import Inspector
from tests.waiting import eventually

pytestmark = pytest.mark.integration

LEASE_S = 1.0


@pytest.fixture(autouse=True)
def vendor_contract(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    """Requests and answers held to ../shared/contracts/leanix.json (as in tests/clients)."""
    recorder = Recorder.install(monkeypatch)
    yield recorder
    problems = recorder.problems()
    if problems:
        pytest.fail("departs from the vendor contract:\n  " + "\n  ".join(problems), pytrace=False)


@dataclass
class Lab:
    sim: LeanixSimulator
    subscription: str
    fact_sheet: str
    settings: Settings
    broker: Broker
    database: Database
    session: aiohttp.ClientSession
    running: list[tuple[Puller, asyncio.Task[None], asyncio.Event]] = field(default_factory=list)

    def events(self, count: int) -> list[dict[str, object]]:
        return [self.sim.pull_event(self.fact_sheet) for _ in range(count)]

    def puller(self, broker: Broker | None = None) -> Puller:
        api = replace(self.settings.clients.leanix, base_url=self.sim.base_url)
        api = replace(api, api_token=DEFAULT_API_TOKEN)
        pull = PullSettings(self.subscription, timeout_s=1, lease_s=LEASE_S, retry_s=0.1)
        webhooks = LeanixWebhooks(self.session, LeanixClient(self.session, api), pull.timeout_s)
        (source,) = (s for s in sources.build(self.settings.sources) if s.name == "leanix")
        return Puller(pull, webhooks, broker or self.broker, self.database.leases, source, 5.0)

    def start(self, puller: Puller) -> asyncio.Task[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(puller.run(stop))
        self.running.append((puller, task, stop))
        return task

    async def stop(self, puller: Puller) -> None:
        for running, task, stop in self.running:
            if running is puller:
                stop.set()
                await task

    @property
    def cursor(self) -> int:
        return self.sim.pull.feeds[self.subscription].cursor


@pytest.fixture
async def lab(
    settings: Settings, broker: Broker, db: Database, inspector: Inspector
) -> AsyncIterator[Lab]:
    sim = LeanixSimulator()
    async with sim.serve(), aiohttp.ClientSession() as session:
        subscription = sim.pull.subscribe()
        lab = Lab(sim, subscription, sim.add_fact_sheet(), settings, broker, db, session)
        await inspector.observe()
        try:
            yield lab
        finally:
            for _, task, _ in lab.running:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def push_id(lab: Lab, event: dict[str, object]) -> str:
    """The CloudEvent id the same event gets when LeanIX pushes it to /webhooks/leanix."""
    (source,) = (s for s in sources.build(lab.settings.sources) if s.name == "leanix")
    cloud_event, _ = build_message(source, Credential("basic"), orjson.dumps(event))
    return cloud_event.id


async def observed_ids(inspector: Inspector, count: int) -> list[str]:
    return [str((await inspector.next_event()).message_id) for _ in range(count)]


async def test_pulled_events_reach_the_bus_with_the_ids_a_push_gives_them(
    lab: Lab, inspector: Inspector
) -> None:
    events = lab.events(3)
    lab.start(lab.puller())

    ids = await observed_ids(inspector, 3)

    assert sorted(ids) == sorted(push_id(lab, e) for e in events)
    await eventually(lambda: lab.cursor == 3, 10, "the cursor moved past the batch")
    assert lab.sim.pull.feeds[lab.subscription].commits == [3]


async def test_a_puller_killed_between_publish_and_commit_loses_nothing_and_dups_nothing(
    lab: Lab, inspector: Inspector, settings: Settings, broker: Broker, db: Database
) -> None:
    handled: list[str] = []
    registry = Registry()

    @registry.handler("leanix.factsheet.*", idempotent=True)
    async def once(event: CloudEvent, context: Context) -> None:
        handled.append(event.id)

    events = lab.events(4)
    first = lab.puller()
    task = lab.start(first)

    def die(batch: object) -> None:  # dies holding its lease, before its PUT is applied
        lab.sim.pull.hold_commits.clear()  # a PUT already on its way is held, then dropped
        task.cancel()

    first.before_commit = die
    first_ids = await observed_ids(inspector, 4)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await eventually(lab.sim.pull.callers_gone, 10, "the dead puller's connection closed")
    lab.sim.pull.hold_commits.set()
    await eventually(lambda: not lab.sim.pull.held, 10, "a held PUT answered")
    assert lab.cursor == 0  # never committed

    second = lab.puller()
    lab.start(second)
    again = await observed_ids(inspector, 4)  # re-fetched once the dead lease lapsed
    await eventually(lambda: lab.cursor == 4, 10, "the takeover committed")

    assert sorted(again) == sorted(first_ids) == sorted(push_id(lab, e) for e in events)
    consumer = Consumer(settings, broker, registry, database=db)
    await consumer.start()
    try:
        await inspector.wait_count(settings.amqp.queue, 0)
        await eventually(lambda: len(set(handled)) == 4, 10, "every event handled")
    finally:
        await consumer.stop(5)
    assert sorted(handled) == sorted(first_ids)  # each once, though published twice


async def test_two_replicas_one_puller_and_a_takeover_when_it_stops(
    lab: Lab, inspector: Inspector, db: Database
) -> None:
    one, two = lab.puller(), lab.puller()
    lab.start(one)
    lab.start(two)
    await eventually(lambda: one.holding.is_set() or two.holding.is_set(), 10, "a holder")
    lab.events(5)
    await observed_ids(inspector, 5)
    await eventually(lambda: lab.cursor == 5, 10, "committed")

    holder, other = (one, two) if one.holding.is_set() else (two, one)
    assert not other.holding.is_set()
    assert (holder.pulled, other.pulled) == (5, 0)
    assert await db.leases.holder(holder.lease) == holder.holder

    await lab.stop(holder)  # gives its lease up: the other takes over at its next look
    await eventually(lambda: other.holding.is_set(), 3 * LEASE_S, "the other took over")
    lab.events(2)
    await observed_ids(inspector, 2)
    await eventually(lambda: other.pulled == 2, 10, "the new holder pulled")


async def test_the_cursor_does_not_move_while_the_broker_is_down(
    lab: Lab, inspector: Inspector, settings: Settings
) -> None:
    down = Broker(settings.amqp)  # not connected: every publish is refused
    puller = lab.puller(down)
    lab.events(3)
    lab.start(puller)
    feed = lab.sim.pull.feeds[lab.subscription]
    await eventually(lambda: feed.fetches >= 3, 10, "the batch fetched again and again")
    assert (lab.cursor, feed.commits, puller.pulled) == (0, [], 0)

    await down.start()
    try:
        await down.wait_ready(15)
        await observed_ids(inspector, 3)
        await eventually(lambda: lab.cursor == 3, 10, "committed once the broker is back")
    finally:
        await lab.stop(puller)
        await down.close()


async def test_failed_fetches_and_a_commit_failing_after_it_applied_lose_nothing(
    lab: Lab, inspector: Inspector
) -> None:
    lab.sim.faults.fail(503, times=2)
    lab.sim.pull.commit_fails_after_applied = 1
    events = lab.events(3)
    puller = lab.puller()
    lab.start(puller)

    ids = await observed_ids(inspector, 3)
    await eventually(lambda: lab.sim.pull.feeds[lab.subscription].fetches >= 2, 10, "refetch")
    assert sorted(ids) == sorted(push_id(lab, e) for e in events)
    assert lab.cursor == 3
    lab.events(1)
    assert len(await observed_ids(inspector, 1)) == 1  # the next event, nothing repeated
    assert inspector.observed.empty()


async def test_a_batch_over_the_size_limit_is_split_and_each_part_committed(
    lab: Lab, inspector: Inspector
) -> None:
    lab.sim.pull.feeds[lab.subscription].max_batch_kib = 1  # about one event per batch
    lab.events(3)
    lab.start(lab.puller())
    await observed_ids(inspector, 3)
    await eventually(lambda: lab.cursor == 3, 10, "committed")
    assert lab.sim.pull.feeds[lab.subscription].commits == [1, 2, 3]
