"""The `http` platform under attack: event data tries to steer the call, an endpoint tries
to steer our credential. Two real servers on loopback: the flow endpoint (the simulator)
and a "collector" on another port that records whatever reaches it, which must stay empty.

- Event values (a Fact Sheet's name, id...) reach the call only through `start.inputs`: they
  fill the URL's {variables} percent-encoded whole, and the JSON body; they can add no
  path segment, query parameter, fragment, header or credential, nor change the host.
- A credential goes only to the hosts it is bound to, whatever the rule says.
- A status URL or a redirect to another origin is never followed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from service.errors import VendorRedirected, VendorRejected
from service.vendors.http.client import HttpClient
from service.vendors.http.settings import Credential, HttpApi
from service.vendors.http.simulator import API_KEY_HEADER, HttpEndpointSimulator

pytestmark = pytest.mark.timeout(20)

API_KEY = "flow-api-key-never-leaves-its-host-77"
CID = "0d8f1a52-1111-5222-8333-944455556666"
HOSTILE = {
    "id": "../../_sim/state?x=1#frag",
    "name": "a&Authorization=Bearer evil\r\nX-Injected: 1",
    "host": "@collector.example:1/",
}


@dataclass
class Collector:
    """Another origin: records every request that reaches it."""

    url: str = ""
    seen: list[dict[str, Any]] = field(default_factory=list)

    async def record(self, request: web.Request) -> web.Response:
        self.seen.append({"path": request.path, "headers": dict(request.headers)})
        return web.json_response({"status": "succeeded"})


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    found = Collector()
    app = web.Application()
    app.router.add_route("*", "/{path:.*}", found.record)
    async with TestServer(app, host="127.0.0.1") as server:
        found.url = str(server.make_url("/steal"))
        yield found


@pytest.fixture
async def flows() -> AsyncIterator[HttpEndpointSimulator]:
    simulator = HttpEndpointSimulator(API_KEY, None, run_duration_s=0.05)
    async with simulator.serve():
        yield simulator


@pytest.fixture
async def client(flows: HttpEndpointSimulator) -> AsyncIterator[HttpClient]:
    """Its credential is bound to the flow endpoint's host and port only."""
    bound = flows.base_url.split("://")[1]
    credentials = (Credential("flows", (bound,), {API_KEY_HEADER: API_KEY}),)
    settings = HttpApi(timeout_s=5.0, plain_http_hosts=("127.0.0.1", "localhost"),
                       credentials=credentials)  # fmt: skip
    async with aiohttp.ClientSession() as session:
        yield HttpClient(session, settings)


async def test_event_values_stay_in_the_path_query_and_body(
    client: HttpClient, flows: HttpEndpointSimulator
) -> None:
    flows.add_flow("apps")
    rule = {"url": f"{flows.base_url}/flows/apps/{{id}}?name={{name}}", "credential": "flows"}

    await client.start(rule, HOSTILE, correlation_id=CID)

    [run] = flows.runs.values()
    assert run.path == "/flows/apps/..%2F..%2F_sim%2Fstate%3Fx%3D1%23frag"
    assert run.query == {"name": HOSTILE["name"]}
    assert run.body == {"host": HOSTILE["host"]}
    assert "X-Injected" not in run.headers
    assert run.headers[API_KEY_HEADER] == API_KEY
    assert run.headers.getall("Authorization", []) == []


async def test_a_credential_is_not_sent_to_a_host_it_is_not_bound_to(
    client: HttpClient, flows: HttpEndpointSimulator, collector: Collector
) -> None:
    flows.add_flow("apps")
    other_name = flows.base_url.replace("127.0.0.1", "localhost")  # the same server

    for url in (f"{other_name}/flows/apps", collector.url):
        with pytest.raises(VendorRejected, match="not bound to host"):
            await client.start({"url": url, "credential": "flows"}, {}, correlation_id=CID)

    assert (flows.faults.requests, collector.seen) == (0, [])


async def test_a_status_url_on_another_origin_is_not_polled(
    client: HttpClient, flows: HttpEndpointSimulator, collector: Collector
) -> None:
    flows.elsewhere = collector.url
    rule = {"url": flows.add_flow("sly", mode="elsewhere"), "credential": "flows"}

    run = await client.start(rule, {}, correlation_id=CID)
    for run_id in (run.run_id, collector.url, "//" + collector.url.split("://")[1]):
        assert (await client.status(run_id, rule)).status == "running"

    assert run.run_id == CID  # no status URL: the callback, or the deadline, completes it
    assert collector.seen == []


async def test_a_redirect_is_not_followed(
    client: HttpClient, flows: HttpEndpointSimulator, collector: Collector
) -> None:
    flows.elsewhere = collector.url
    rule = {"url": flows.add_flow("moved", mode="redirect"), "credential": "flows"}

    with pytest.raises(VendorRedirected):
        await client.start(rule, {"x": 1}, correlation_id=CID)

    assert collector.seen == []
