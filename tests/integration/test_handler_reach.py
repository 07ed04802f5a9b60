"""What a handler can reach (issue 11 §2): its Context and the Services its lifespans get
hold the clients and the state, never the Settings, the worker's Resources, the broker or
the store, and no secret of the settings shows in their reprs. The built-in automation
runs in the same worker (over the lab, with a rule), so what it needs must not leak into
the state either."""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
from collections.abc import AsyncIterator, Iterator, Mapping

import pytest
from aio_pika.abc import AbstractConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service import CloudEvent, Context, Registry, Services, StateKey
from service.bus.broker import Broker
from service.clients.base import HttpApi
from service.resources import Resources
from service.settings import Settings
from service.simulators.lab import CALLBACK_SIGNING_KEY, LEANIX_WEBHOOK_AUTH, Lab
from service.store import Database
from service.testing import TestWorker, cloud_event

pytestmark = pytest.mark.integration

AMQP_PASSWORD = "amqp-password-never-reachable"
FORBIDDEN = (
    Settings,
    Resources,
    Broker,
    Database,
    AsyncEngine,
    AsyncConnection,
    AbstractConnection,
)
LEAVES = (str, bytes, int, float, bool, type(None))
SKIPPED = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType)
SECRET_NAME = re.compile("token|key|secret|password|authorization|headers", re.IGNORECASE)
NOTE: StateKey[str] = StateKey("test.reach.note", str)


def reachable(*roots: object, depth: int = 8) -> Iterator[object]:
    """Every object reachable from `roots` through public attributes, mappings (the
    State's values too) and collections; the clients are the leaves a handler may use."""
    seen: set[int] = set()
    todo: list[tuple[object, int]] = [(root, 0) for root in roots]
    while todo:
        obj, level = todo.pop()
        if id(obj) in seen or isinstance(obj, SKIPPED) or inspect.ismethod(obj):
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, (*LEAVES, HttpApi)) or level >= depth:
            continue
        todo.extend((child, level + 1) for child in children(obj))


def children(obj: object) -> list[object]:
    if isinstance(obj, Mapping):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, list | tuple | set | frozenset):
        return list(obj)
    found: list[object] = list(getattr(obj, "_values", {}).values())  # the State's
    for name in dir(obj):
        if name.startswith("_"):
            continue
        try:
            found.append(getattr(obj, name))
        except Exception:  # a client not configured (ConfigError): nothing there
            continue
    return found


def tree_of(obj: object) -> object:
    """The settings as plain mappings and lists (dataclasses and pydantic models)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: tree_of(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if hasattr(obj, "model_dump"):
        return tree_of(obj.model_dump())
    if isinstance(obj, Mapping):
        return {key: tree_of(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [tree_of(value) for value in obj]
    return obj


def secrets_in(tree: object, named: bool = False) -> Iterator[str]:
    """The strings of the settings under a name that says secret (or in a header)."""
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            yield from secrets_in(value, named or bool(SECRET_NAME.search(str(key))))
    elif isinstance(tree, list | tuple):
        for value in tree:
            yield from secrets_in(value, named)
    elif named and isinstance(tree, str) and tree:
        yield tree


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    async with Lab().running() as running:
        yield running


async def test_a_handler_reaches_the_clients_and_the_state_never_the_settings(lab: Lab) -> None:
    settings = lab.settings(
        [lab.rule("uipath")],
        {"amqp": {"url": f"amqp://guest:{AMQP_PASSWORD}@127.0.0.1:5672/"},
         "automation": {"poll_initial_s": 3600.0, "poll_max_s": 3600.0}},
    )  # fmt: skip
    secrets = {AMQP_PASSWORD, CALLBACK_SIGNING_KEY, LEANIX_WEBHOOK_AUTH}
    secrets |= set(secrets_in(tree_of(settings)))
    assert {"lab-uipath-client-secret", "lab-http-endpoint-key"} <= secrets
    mine = Registry()
    seen: list[object] = []

    @mine.lifespan
    async def opens(services: Services) -> AsyncIterator[None]:
        services.state[NOTE] = "opened"
        seen.append(services)
        yield

    @mine.handler("leanix.test.reach", name="reach")
    async def reach(event: CloudEvent, context: Context) -> None:
        seen.append(context)

    async with TestWorker(mine, settings, automation=True) as worker:
        outcome = await worker.publish(cloud_event("leanix.test.reach", {}))
        assert outcome.succeeded and "automation.start" in outcome.handlers
        assert worker.services.state[NOTE] == "opened"
        objects = list(reachable(*seen))
    assert len(seen) == 2 and len(objects) > 10
    clients = [o for o in objects if isinstance(o, HttpApi)]
    assert len(clients) >= 2  # the LeanIX client and the UiPath one: what it may use
    for obj in objects:
        assert not isinstance(obj, FORBIDDEN), f"a handler reaches {type(obj).__name__}"
        text = repr(obj)
        leaked = sorted(secret for secret in secrets if secret in text)
        assert not leaked, f"{type(obj).__name__}'s repr shows a secret"
