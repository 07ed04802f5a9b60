"""A hostile or broken Workato Developer API: the jobs poll never crashes, never loops,
never follows a job handle out of the jobs path, and keeps what it stores short."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from service.errors import VendorUnavailable
from service.vendors.workato.client import WorkatoClient
from service.vendors.workato.jobs import DETAIL_CHARS, MAX_PAGES
from service.vendors.workato.settings import WorkatoApi

CID = "6f1c2a9e-3b7d-5e40-9a1f-0c2b4d6e8f10"
RECIPE = 42
TARGET = {"endpoint_url": "https://apim.example/acme/x-v1/y", "recipe_id": RECIPE}


@dataclass
class HostileApi:
    """Answers every jobs request with `answer(request)`; records the paths asked for."""

    answer: Callable[[web.Request], web.Response] = lambda _: web.Response(status=500)
    paths: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.paths.append(request.path_qs)
        return self.answer(request)


@pytest.fixture
async def hostile() -> AsyncIterator[tuple[HostileApi, WorkatoClient]]:
    api = HostileApi()
    app = web.Application()
    app.router.add_get("/{path:.*}", api.handle)
    async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as session:
        settings = WorkatoApi(
            api_token="t", timeout_s=5.0, developer_api_token="dev",
            developer_api_url=str(server.make_url("/api")),
        )  # fmt: skip
        yield api, WorkatoClient(session, settings)


def body(doc: Any, status: int = 200) -> Callable[[web.Request], web.Response]:
    # json, not orjson: it encodes deeper than orjson's limit, as a hostile server may
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return lambda _: web.Response(body=raw, status=status, content_type="application/json")


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"x": [value]}
    return value


@pytest.mark.parametrize(
    "doc",
    [
        {"items": "not a list"},
        [1, 2, 3],
        {"items": [1, None, "s", [CID]]},  # items that are not jobs, one holding our id
        {"items": [{"id": {"a": 1}, "title": None, "status": ["succeeded"]}]},
        {"items": [{"id": "j-1", "lines": nested(400)}]},  # deeper than orjson encodes
        "null",
    ],
    ids=["items-not-a-list", "a-list", "junk-items", "junk-fields", "deep", "null"],
)
async def test_junk_listings_leave_the_run_running(
    hostile: tuple[HostileApi, WorkatoClient], doc: Any
) -> None:
    api, client = hostile
    api.answer = body(doc.encode() if isinstance(doc, str) else doc)

    state = await client.status(CID, TARGET)

    assert state.status == "running"
    assert len(api.paths) <= MAX_PAGES


async def test_a_body_that_is_not_json_is_a_fault_to_retry(
    hostile: tuple[HostileApi, WorkatoClient],
) -> None:
    api, client = hostile
    api.answer = body(b"<html>maintenance</html>")

    with pytest.raises(VendorUnavailable, match="non-JSON"):
        await client.status(CID, TARGET)


async def test_a_huge_failed_job_is_stored_short(
    hostile: tuple[HostileApi, WorkatoClient],
) -> None:
    api, client = hostile
    job = {"id": "j-" + "x" * 5000, "title": "t" * 1_000_000 + CID, "status": "failed",
           "error": "e" * 100_000, "lines": nested(400)}  # fmt: skip
    api.answer = body({"items": [job]})

    state = await client.status(CID, TARGET)

    assert state.status == "failed"
    assert state.detail is not None and len(state.detail) <= DETAIL_CHARS
    assert len(state.vendor_state) <= 50


async def test_a_handle_that_leaves_the_jobs_path_is_never_requested(
    hostile: tuple[HostileApi, WorkatoClient],
) -> None:
    api, client = hostile
    api.answer = body({"items": [{"id": "../../../users/me", "title": CID, "status": "pending"}]})

    for _ in range(3):
        assert (await client.status(CID, TARGET)).status == "running"

    assert len(api.paths) == 3  # each poll listed again: the handle was not kept
    assert all(path.startswith(f"/api/recipes/{RECIPE}/jobs") for path in api.paths)
    assert not [path for path in api.paths if "users" in path]


async def test_endless_pages_are_read_only_up_to_the_limit(
    hostile: tuple[HostileApi, WorkatoClient],
) -> None:
    api, client = hostile
    ids = itertools.count()

    def page(_: web.Request) -> web.Response:
        items = [{"id": f"j-{next(ids)}", "title": "someone else's job"} for _ in range(100)]
        return web.json_response({"items": items})

    api.answer = page

    state = await client.status(CID, TARGET)

    assert state.status == "running"
    assert len(api.paths) == MAX_PAGES


@pytest.mark.parametrize("retry_after", ["99999999999999999999", "-1", "soon", ""])
async def test_throttling_with_a_hostile_retry_after_is_retryable(
    hostile: tuple[HostileApi, WorkatoClient], retry_after: str
) -> None:
    api, client = hostile
    api.answer = lambda _: web.Response(status=429, headers={"Retry-After": retry_after})

    with pytest.raises(VendorUnavailable):
        await client.status(CID, TARGET)
