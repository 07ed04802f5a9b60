"""Fixtures shared by the client tests: an HTTP session and a callback inbox."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.clients.support import CallbackInbox


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
