"""A vendor (or whoever answers for it) redirects: no client follows, no credential leaves.

Issue 9 item 16. Two real servers on loopback: a "vendor" answering every API call with a
redirect to a "collector" on another port, which records whatever reaches it. Each real
client makes its usual calls (token exchanges included) and must raise VendorRedirected
naming the target (scheme, host, port, path; never its query), while the collector sees
nothing at all. A control test shows the collector would catch what aiohttp's default
(follow redirects) sends, so an empty collector means something.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from service.clients.base import redirect_target
from service.clients.leanix import LeanixClient
from service.errors import VendorRedirected
from service.settings import LeanixApi
from service.vendors.leapwork.client import LeapworkClient
from service.vendors.leapwork.settings import LeapworkApi
from service.vendors.robocorp.client import RobocorpClient
from service.vendors.robocorp.settings import RobocorpApi
from service.vendors.uipath.client import UipathClient
from service.vendors.uipath.settings import UipathApi
from service.vendors.workato.client import WorkatoClient
from service.vendors.workato.jobs import WorkatoJobs
from service.vendors.workato.settings import WorkatoApi

pytestmark = pytest.mark.timeout(20)

SECRETS = {
    "leanix": "leanix-api-token-never-leaves-0001",
    "leapwork": "LeapKey000000001",
    "robocorp": "robocorp-api-key-never-leaves-02",
    "uipath": "uipath-client-secret-never-leaves",
    "workato": "workato-api-token-never-leaves-03",
    "workato-jobs": "workato-developer-token-never-leaves",
    "access-token": "issued-access-token-never-leaves-04",
}
LEANIX_TOKEN = "/services/mtm/v1/oauth2/token"
UIPATH_TOKEN = "/identity_/connect/token"
BAIT_QUERY = "stolen=1&code=bait-query-value"


@dataclass
class Collector:
    """The redirect's target: records every request that reaches it."""

    url: str = ""
    seen: list[dict[str, Any]] = field(default_factory=list)

    async def record(self, request: web.Request) -> web.Response:
        entry = {"path": request.path, "headers": dict(request.headers)}
        self.seen.append({**entry, "body": (await request.read()).decode(errors="replace")})
        return web.json_response({"access_token": "x", "RunId": "x", "id": "x"})


@dataclass
class Vendor:
    """Answers each call with `status` + Location at the collector (token calls, if asked,
    with an access token, so the next call carries a bearer)."""

    collector: Collector
    status: int = 302
    issue_tokens: bool = False
    url: str = ""
    calls: list[str] = field(default_factory=list)

    async def answer(self, request: web.Request) -> web.Response:
        await request.read()
        self.calls.append(f"{request.method} {request.path}")
        if self.issue_tokens and request.path in (LEANIX_TOKEN, UIPATH_TOKEN):
            token = {"access_token": SECRETS["access-token"], "expires_in": 3600}
            return web.json_response(token)
        location = f"{self.collector.url}{request.path}?{BAIT_QUERY}"
        return web.Response(status=self.status, headers={"Location": location})


async def serve(handler: Callable[[web.Request], Awaitable[web.Response]]) -> TestServer:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def rig() -> AsyncIterator[tuple[Vendor, Collector]]:
    collector = Collector()
    vendor = Vendor(collector)
    collected = await serve(collector.record)
    answering = await serve(vendor.answer)
    collector.url = str(collected.make_url("")).rstrip("/")
    vendor.url = str(answering.make_url("")).rstrip("/")
    try:
        yield vendor, collector
    finally:
        await answering.close()
        await collected.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:  # as resources.py opens it
        yield client_session


Call = Callable[[aiohttp.ClientSession, str], Awaitable[Any]]


async def leanix(session: aiohttp.ClientSession, base: str) -> Any:
    settings = LeanixApi(base_url=base, api_token=SECRETS["leanix"], timeout_s=5)
    return await LeanixClient(session, settings).fact_sheet("fs-1")


def uipath_client(session: aiohttp.ClientSession, base: str) -> UipathClient:
    settings = UipathApi(
        base_url=f"{base}/org/tenant/orchestrator_", identity_url=f"{base}{UIPATH_TOKEN}",
        client_id="app", client_secret=SECRETS["uipath"], folder_id=1, timeout_s=5,
    )  # fmt: skip
    return UipathClient(session, settings)


async def uipath(session: aiohttp.ClientSession, base: str) -> Any:
    return await uipath_client(session, base).status("42", {})


async def robocorp(session: aiohttp.ClientSession, base: str) -> Any:
    settings = RobocorpApi(
        base_url=base, api_key=SECRETS["robocorp"], workspace_id="ws", timeout_s=5
    )
    client = RobocorpClient(session, settings)
    return await client.start({"process_id": "p-1"}, {"a": 1}, correlation_id="c-1")


async def leapwork(session: aiohttp.ClientSession, base: str) -> Any:
    settings = LeapworkApi(base_url=base, access_key=SECRETS["leapwork"], timeout_s=5)
    return await LeapworkClient(session, settings).start(
        {"schedule_id": "5c9a1f0e-3b1d-4c7e-9a52-1f0c2d3e4b5a"}, {}, correlation_id="c"
    )


async def leapwork_status(session: aiohttp.ClientSession, base: str) -> Any:
    settings = LeapworkApi(base_url=base, access_key=SECRETS["leapwork"], timeout_s=5)
    return await LeapworkClient(session, settings).status(
        "8d2e4f60-7a1b-4c3d-8e9f-0a1b2c3d4e5f", {}
    )


def workato_settings(base: str) -> WorkatoApi:
    return WorkatoApi(
        api_token=SECRETS["workato"], developer_api_url=f"{base}/api",
        developer_api_token=SECRETS["workato-jobs"], timeout_s=5,
    )  # fmt: skip


async def workato(session: aiohttp.ClientSession, base: str) -> Any:
    client = WorkatoClient(session, workato_settings(base))
    return await client.start({"endpoint_url": f"{base}/svc/onboard"}, {}, correlation_id="c")


async def workato_jobs(session: aiohttp.ClientSession, base: str) -> Any:
    return await WorkatoJobs(session, workato_settings(base)).job(7, "j-abc")


# (call, the first path the vendor is asked, whether its token call is answered first)
CALLS: dict[str, tuple[Call, str, bool]] = {
    "leanix-token": (leanix, LEANIX_TOKEN, False),
    "leanix-graphql": (leanix, "/services/pathfinder/v1/graphql", True),
    "uipath-identity": (uipath, UIPATH_TOKEN, False),
    "uipath-orchestrator": (uipath, "/org/tenant/orchestrator_/odata/Jobs(42)", True),
    "robocorp": (robocorp, "/workspaces/ws/processes/p-1/process-runs", False),
    "leapwork-runNow": (
        leapwork,
        "/api/v4/schedules/5c9a1f0e-3b1d-4c7e-9a52-1f0c2d3e4b5a/runNow",
        False,
    ),
    "leapwork-status": (
        leapwork_status,
        "/api/v4/run/8d2e4f60-7a1b-4c3d-8e9f-0a1b2c3d4e5f/status",
        False,
    ),
    "workato-endpoint": (workato, "/svc/onboard", False),
    "workato-jobs": (workato_jobs, "/api/recipes/7/jobs/j-abc", False),
}


@pytest.mark.parametrize("status", [302, 307])
@pytest.mark.parametrize("name", sorted(CALLS))
async def test_no_client_follows_a_redirect_with_its_credentials(
    rig: tuple[Vendor, Collector], session: aiohttp.ClientSession, name: str, status: int
) -> None:
    vendor, collector = rig
    call, path, issue_tokens = CALLS[name]
    vendor.status, vendor.issue_tokens = status, issue_tokens

    with pytest.raises(VendorRedirected) as caught:
        await call(session, vendor.url)

    assert collector.seen == []  # nothing reached the other origin: no header, no body
    assert vendor.calls[-1].endswith(path)  # the redirected call was made once, not retried
    error = caught.value
    assert (error.status, error.location) == (status, f"{collector.url}{path}")
    text = str(error)
    assert f"answered {status}, a redirect to {collector.url}{path}" in text
    assert "bait-query-value" not in text
    assert not any(secret in text for secret in SECRETS.values())


@pytest.mark.parametrize("status", [301, 303, 308])
async def test_every_redirect_status_is_refused(
    rig: tuple[Vendor, Collector], session: aiohttp.ClientSession, status: int
) -> None:
    vendor, collector = rig
    vendor.status = status
    with pytest.raises(VendorRedirected):
        await leapwork(session, vendor.url)
    assert collector.seen == []


async def test_control_aiohttp_would_follow_and_the_collector_would_see_the_key(
    rig: tuple[Vendor, Collector], session: aiohttp.ClientSession
) -> None:
    """What the clients did before: the same request with aiohttp's default settings."""
    vendor, collector = rig
    headers = {"AccessKey": SECRETS["leapwork"]}
    async with session.put(
        f"{vendor.url}/api/v4/schedules/5c9a1f0e-3b1d-4c7e-9a52-1f0c2d3e4b5a/runNow",
        headers=headers,
    ) as answer:
        assert answer.status == 200
    assert [seen["headers"].get("AccessKey") for seen in collector.seen] == [SECRETS["leapwork"]]


async def test_a_redirect_without_a_location_is_refused_too(
    session: aiohttp.ClientSession,
) -> None:
    async def bare(request: web.Request) -> web.Response:
        return web.Response(status=302)

    server = await serve(bare)
    try:
        with pytest.raises(VendorRedirected, match="an unreadable or missing Location") as caught:
            await leapwork(session, str(server.make_url("")).rstrip("/"))
        assert caught.value.location is None
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        ("https://evil.example:8443/a/b?token=s#f", "https://evil.example:8443/a/b"),
        ("https://user:pass@evil.example/p", "https://evil.example/p"),
        ("/elsewhere?key=1", "http://127.0.0.1:9001/elsewhere"),
        ("//other.example/q", "http://other.example/q"),
        ("https://[::1]:443/p", "https://[::1]/p"),
        ("http://münchen.de/ü", "http://xn--mnchen-3ya.de/%C3%BC"),
        ("javascript:alert(1)", None),
        ("http://[broken", None),
        ("http://host:99999/", None),
        ("", None),
    ],
)
def test_a_redirect_target_is_named_without_its_query_or_user_info(
    location: str, shown: str | None
) -> None:
    assert redirect_target(URL("http://127.0.0.1:9001/api/v4/x"), location) == shown
