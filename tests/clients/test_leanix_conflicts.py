"""A stale rev is a conflict, retried; a validation error is permanent (issue 9, item 8).

The LeanIX client against the LeanIX simulator, over HTTP on loopback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from service.clients.leanix import (
    STALE_ATTEMPTS,
    STALE_BACKOFF_MAX_S,
    LeanixClient,
    stale_backoff_s,
)
from service.clients.leanix_graphql import GraphQLErrors, Patch, RevisionConflict
from service.errors import RetryLater, VendorRejected
from service.settings import LeanixApi
from service.simulators.leanix import DEFAULT_API_TOKEN, LeanixSimulator
from service.worker import policy


@pytest.fixture
async def sim() -> AsyncIterator[LeanixSimulator]:
    simulator = LeanixSimulator()
    async with simulator.serve():
        yield simulator


@pytest.fixture
def client(sim: LeanixSimulator, session: aiohttp.ClientSession) -> LeanixClient:
    settings = LeanixApi(
        base_url=sim.base_url, api_token=DEFAULT_API_TOKEN, rate_limit_rps=1000.0, timeout_s=5
    )
    return LeanixClient(session, settings)


def always_changing(sim: LeanixSimulator) -> None:
    """Someone else saves the fact sheet right after each of our reads."""
    read = sim._resolve_fact_sheet

    def read_then_change(info: Any, id: str) -> dict[str, Any]:
        view = read(info, id)
        sim.fact_sheets[id].rev += 1
        return view

    sim._resolve_fact_sheet = read_then_change  # type: ignore[method-assign]


async def test_a_rev_stale_on_every_write_is_a_conflict_to_retry_later(
    sim: LeanixSimulator, client: LeanixClient
) -> None:
    fs_id = sim.add_fact_sheet(name="Busy")
    always_changing(sim)

    with pytest.raises(RevisionConflict) as caught:
        await client.update_fact_sheet(fs_id, [Patch("replace", "/description", "x")])

    assert isinstance(caught.value, RetryLater)
    assert not isinstance(caught.value, VendorRejected)
    assert f"changed under each of {STALE_ATTEMPTS} writes" in str(caught.value)
    assert sim.requests["stale_rev"] == STALE_ATTEMPTS  # re-read and re-applied each time
    assert policy.failure("h", caught.value, (5.0,)).retryable
    assert sim.fact_sheets[fs_id].fields.get("description") is None


async def test_a_validation_error_is_permanent_and_not_retried(
    sim: LeanixSimulator, client: LeanixClient
) -> None:
    fs_id = sim.add_fact_sheet(name="Strict")
    before = sim.requests["graphql"]

    with pytest.raises(GraphQLErrors) as caught:
        await client.update_fact_sheet(fs_id, [Patch("replace", "/lxState", "SHINY")])

    assert not caught.value.stale
    assert not policy.failure("h", caught.value, (5.0,)).retryable
    assert sim.requests["graphql"] - before == 2  # read the rev, one write: no retry
    assert sim.requests["stale_rev"] == 0


def test_a_validation_error_naming_a_version_field_is_not_a_conflict() -> None:
    error = {
        "message": "[FS_VALIDATION_INVALID_PATCH] 'next' is not a valid release version",
        "extensions": {"errorType": "MODEL_COMPLIANT", "objectPath": "/version"},
    }
    assert not GraphQLErrors([error]).stale


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 10, 100])
def test_the_backoff_is_jittered_within_a_doubling_window(attempt: int) -> None:
    window = min(STALE_BACKOFF_MAX_S, 0.05 * 2 ** (attempt - 1))
    pauses = [stale_backoff_s(attempt) for _ in range(200)]
    assert all(0 <= p <= window for p in pauses)
    assert len(set(pauses)) > 100  # jittered, not in step
