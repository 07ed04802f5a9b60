"""Fixtures shared by the client tests: an HTTP session, a callback inbox, and the vendor
contracts every request and answer is held to."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.clients.support import CallbackInbox
from tests.contracts.recording import Recorder


@pytest.fixture(autouse=True)
def vendor_contract(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    """Each request our clients send, and each answer a simulator gives, checked against
    the vendor's contract (../shared/contracts) when the test ends."""
    recorder = Recorder.install(monkeypatch)
    yield recorder
    problems = recorder.problems()
    if problems:
        pytest.fail("departs from the vendor contract:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def inbox() -> AsyncIterator[CallbackInbox]:
    """A callback receiver on 127.0.0.1 that queues the (headers, body) of every POST."""
    box = CallbackInbox()
    app = web.Application()
    app.router.add_post("/{path:.*}", box.accept)
    async with TestServer(app, host="127.0.0.1") as server:
        box.base_url = str(server.make_url("")).rstrip("/")
        yield box
