"""Signed webhook -> 202 -> the CloudEvent on the bus; a bad request -> 4xx, nothing published."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aio_pika
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.bus.broker import Broker
from service.settings import Settings
from service.web import create_app
from tests import senders
from tests.assertions import assert_cloudevent, assert_problem
from tests.integration.conftest import Inspector, post
from tests.senders import Request

pytestmark = pytest.mark.integration

ACCEPTED = [
    (senders.leanix, "leanix.factsheet.created", "95fbeddd-abdf-4552-a82b-ce37c287735c"),
    (
        lambda: senders.leanix(senders.fixture("leanix-wrapped.json")),
        "leanix.factsheet.archived",
        "95fbeddd-abdf-4552-a82b-ce37c287735c",
    ),
    (
        lambda: senders.leanix(senders.fixture("leanix-callback-reshaped.json")),
        "leanix.callback.received",
        "cb943942-39fd-4b45-8909-916b99c1286a",
    ),
    (lambda: senders.leanix(auth=senders.LEANIX_AUTH_OLD), "leanix.factsheet.created", None),
    (senders.uipath, "uipath.job.completed", "148712"),
    (senders.robocorp, "robocorp.process_run.completed", "run-8f2e"),
    (senders.leapwork, "leapwork.run.finished", "da6845b3-8c1f-4f9e-9a0d-2b7c6e5f4a31"),
    (senders.workato, "workato.job.completed", "j-KGAKfhsz-GYoLe"),
    (
        lambda: senders.bearer_callback(
            "/callbacks/workato", senders.fixture("workato-job-completed.json")
        ),
        "workato.job.completed",
        "j-KGAKfhsz-GYoLe",
    ),
]


@pytest.mark.parametrize(
    ("make_request", "event_type", "subject"),
    ACCEPTED,
    ids=[
        "leanix",
        "leanix-wrapped",
        "leanix-callback",
        "leanix-rotated",
        "uipath",
        "robocorp",
        "leapwork",
        "workato",
        "workato-bearer",
    ],
)
async def test_accepted_event_is_on_the_bus_as_a_cloudevent(
    client: TestClient[Any, Any],
    inspector: Inspector,
    make_request: Callable[[], Request],
    event_type: str,
    subject: str | None,
) -> None:
    await inspector.observe()
    request = make_request()
    status, _, body, _ = await post(client, request)
    assert status == 202, body
    answer = orjson.loads(body)
    assert answer["status"] == "accepted"

    message = await inspector.next_event()
    assert message.message_id == answer["id"]
    assert message.routing_key == event_type
    assert message.content_type == "application/cloudevents+json"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    doc = orjson.loads(message.body)
    assert doc["id"] == answer["id"]
    expected_subject = subject if subject is not None else doc["subject"]
    assert_cloudevent(
        doc, type=event_type, data=orjson.loads(request.body), subject=expected_subject
    )
    assert request.body.strip() in message.body  # data is the sender's bytes, unchanged
    await inspector.wait_count(inspector.settings.amqp.queue, 1)


async def test_a_redelivered_webhook_gets_the_same_id(client: TestClient[Any, Any]) -> None:
    first = orjson.loads((await post(client, senders.uipath()))[2])["id"]
    second = orjson.loads((await post(client, senders.uipath()))[2])["id"]
    other = senders.uipath(senders.fixture("uipath-job-stopped.json"))
    third = orjson.loads((await post(client, other))[2])["id"]
    assert first == second != third


async def test_a_standard_webhooks_id_decides_the_event_id(client: TestClient[Any, Any]) -> None:
    body = senders.fixture("leapwork-run-finished.json")
    ids = [
        orjson.loads((await post(client, senders.leapwork(body, msg_id=m)))[2])["id"]
        for m in ("msg_a", "msg_a", "msg_b")
    ]
    assert ids[0] == ids[1] != ids[2]


def _replace(request: Request, **changes: Any) -> Request:
    fields = {"path": request.path, "headers": dict(request.headers), "body": request.body}
    fields.update(changes)
    return Request(**fields)


def _without_header(request: Request, name: str) -> Request:
    headers = {k: v for k, v in request.headers.items() if k.lower() != name.lower()}
    return _replace(request, headers=headers)


REFUSED = {
    "leanix-no-auth": (lambda: _without_header(senders.leanix(), "Authorization"), 401),
    "leanix-wrong-auth": (lambda: senders.leanix(auth="Basic Z3Vlc3M6Z3Vlc3M="), 401),
    "uipath-bad-signature": (lambda: senders.uipath(secret="wrong"), 401),
    "uipath-tampered": (
        lambda: _replace(senders.uipath(), body=senders.uipath().body.replace(b"148712", b"1")),
        401,
    ),
    "robocorp-no-signature": (lambda: _without_header(senders.robocorp(), "x-rc-signature"), 401),
    "leapwork-stale": (lambda: senders.leapwork(timestamp=1_600_000_000), 401),
    "workato-wrong-secret": (lambda: senders.workato(secret=senders.WHSEC_OLD), 401),
    "workato-wrong-token": (
        lambda: senders.bearer_callback("/callbacks/workato", b"{}", token="nope"),
        401,
    ),
    "leanix-not-json": (lambda: senders.leanix(b"{not json"), 400),
    "leanix-empty-body": (lambda: senders.leanix(b""), 400),
    "leanix-array": (lambda: senders.leanix(b"[1, 2]"), 400),
    "leanix-empty-object": (lambda: senders.leanix(b"{}"), 400),
    "leanix-type-not-string": (lambda: senders.leanix(b'{"type": 12}'), 400),
    "uipath-no-type": (lambda: senders.uipath(b'{"EventId": "x"}'), 400),
    "leapwork-no-run-id": (lambda: senders.leapwork(b'{"status": "Finished"}'), 400),
    "leanix-form-content-type": (
        lambda: _replace(
            senders.leanix(),
            headers={
                **senders.leanix().headers,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        ),
        415,
    ),
    "leanix-no-content-type": (lambda: _without_header(senders.leanix(), "Content-Type"), 415),
    "unknown-path": (lambda: _replace(senders.leanix(), path="/webhooks/nobody"), 404),
}


@pytest.mark.parametrize(("make_request", "expected"), REFUSED.values(), ids=REFUSED.keys())
async def test_bad_requests_get_a_problem_and_nothing_is_published(
    client: TestClient[Any, Any],
    inspector: Inspector,
    make_request: Callable[[], Request],
    expected: int,
) -> None:
    status, content_type, body, _ = await post(client, make_request())
    assert_problem(status, content_type, body, expected)
    assert await inspector.count(inspector.settings.amqp.queue) == 0


async def test_wrong_method_is_a_problem(client: TestClient[Any, Any]) -> None:
    async with client.get("/webhooks/leanix") as response:
        assert_problem(response.status, response.content_type, await response.read(), 405)


async def test_a_body_over_the_limit_is_refused_with_413(
    make_settings: Callable[..., Settings], broker: Broker, inspector: Inspector
) -> None:
    settings = make_settings(http={"max_body_bytes": 2048})
    big = senders.leanix(orjson.dumps({"type": "FactSheetUpdatedEvent", "pad": "x" * 4096}))
    async with TestClient(TestServer(create_app(settings, broker))) as client:
        status, content_type, body, _ = await post(client, big)
        assert_problem(status, content_type, body, 413)
        chunked = client.post(big.path, data=_chunks(big.body), headers=big.headers)
        async with chunked as response:
            assert_problem(response.status, response.content_type, await response.read(), 413)
    assert await inspector.count(settings.amqp.queue) == 0


async def _chunks(body: bytes) -> Any:
    for start in range(0, len(body), 512):
        yield body[start : start + 512]


async def test_a_source_without_credentials_is_closed(
    make_settings: Callable[..., Settings], broker: Broker, inspector: Inspector
) -> None:
    closed = {"uipath": {"secrets": []}, "leapwork": {}, "callback_signing_keys": []}
    settings = make_settings(sources=closed)
    async with TestClient(TestServer(create_app(settings, broker))) as client:
        for request in (senders.uipath(), senders.leapwork()):
            status, content_type, body, _ = await post(client, request)
            doc = assert_problem(status, content_type, body, 404)
            assert "not enabled" in doc["detail"]
    assert await inspector.count(settings.amqp.queue) == 0


async def test_health_and_readiness(client: TestClient[Any, Any]) -> None:
    async with client.get("/healthz") as response:
        assert response.status == 200
    async with client.get("/readyz") as response:
        assert response.status == 200
