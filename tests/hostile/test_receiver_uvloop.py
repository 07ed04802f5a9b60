"""The connection guard's hostile tests again on uvloop, the service's default event loop.

uvloop's transports have asyncio.Transport's methods without subclassing it: a guard that
checked `isinstance(transport, asyncio.Transport)` failed an assertion on a connection
over the cap and never paused a refused body's reading, and only on uvloop. The same test
functions as on asyncio's loop, each run to the end in a uvloop loop of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from service.settings import Settings
from tests.hostile import test_receiver_bodies as bodies
from tests.hostile import test_receiver_connections as connections

pytestmark = pytest.mark.integration

BOUND_S = 30.0  # each test's own bound: a guard broken on uvloop hangs its connection


def _run(test: Coroutine[Any, Any, None]) -> None:
    uvloop.run(asyncio.wait_for(test, BOUND_S))


def test_connections_over_the_cap_are_closed_at_once(
    make_settings: Callable[..., Settings],
) -> None:
    _run(connections.test_connections_over_the_cap_are_closed_at_once(make_settings))


@pytest.mark.parametrize("refused", ["leanix-wrong-authorization", "leanix-compressed"])
def test_a_request_refused_on_its_headers_is_answered_without_its_body(
    make_settings: Callable[..., Settings], refused: str
) -> None:
    make, status = bodies.REFUSED_ON_HEADERS[refused]
    test = bodies.test_a_request_refused_on_its_headers_is_answered_without_its_body
    _run(test(make_settings(), make, status))


def test_over_the_body_budget_a_request_gets_503_unread(
    make_settings: Callable[..., Settings],
) -> None:
    _run(bodies.test_over_the_body_budget_a_request_gets_503_unread(make_settings))
