"""Fuzzing the receiver over HTTP against a real RabbitMQ: bad input is refused, never published.

The properties, for every endpoint:

- a request that is not a correctly authenticated event gets a 4xx application/problem+json
  answer (status, title, detail), nothing is published, and the server still answers /healthz;
- a correctly authenticated JSON object gets either 202 and exactly one message on the bus
  carrying it byte for byte, or a 400 problem (not an event of that source): never a 5xx.

Every example is checked against a tap: a private queue bound to the test's exchange with
"#" and never consumed. The receiver answers only after the broker's confirm, so a message
published by mistake is already in the tap when the answer arrives. After each test, the
work queue holds exactly what the tap saw.

Requests that the HTTP framing layer refuses (a bad Content-Length, a control character in
a header, a header line over 8190 bytes, a bad chunk) never reach the app: aiohttp answers
a text/plain 400 itself. For those, the property is a 4xx, nothing published and the
server still up.

The bugs this fuzzing found are pinned at the end of this file as regression tests: non-UTF-8
credential headers, a 5000-digit webhook-timestamp, compressed bodies (refused with 415:
signatures cover the bytes sent) and event types too long for a routing key.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from aiohttp.helpers import parse_content_type
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from service.bus.broker import Broker
from service.settings import Settings
from service.web import create_app
from tests import senders
from tests.assertions import assert_problem
from tests.integration.conftest import Inspector
from tests.senders import Request
from tests.strategies import TEXT, json_values

pytestmark = pytest.mark.integration

# One receiver, broker connection and tap per test, shared by its examples.
FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# --- the receiver under test, and what it published -------------------------------------


class Tap:
    """A private queue bound to the test's exchange with "#", never consumed."""

    def __init__(self, queue: AbstractQueue) -> None:
        self.queue = queue
        self.seen = 0

    @classmethod
    async def bind(cls, inspector: Inspector) -> Tap:
        channel = await inspector.connection.channel()
        exchange = await channel.declare_exchange(
            inspector.settings.amqp.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, "#")
        return cls(queue)

    async def take(self) -> list[AbstractIncomingMessage]:
        """Every message published since the last call."""
        taken = []
        while (message := await self.queue.get(no_ack=True, fail=False)) is not None:
            taken.append(message)
        self.seen += len(taken)
        return taken


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class Outcome:
    """The answers to one exchange (several if aiohttp split the bytes), and what was published."""

    answers: list[Answer]
    published: list[AbstractIncomingMessage] = field(default_factory=list)

    @property
    def answer(self) -> Answer:
        (answer,) = self.answers
        return answer


@dataclass
class Receiver:
    client: TestClient[Any, Any]
    tap: Tap

    async def send(self, request: Request) -> Outcome:
        """POST through aiohttp's client."""
        data = io.BytesIO(request.body) if len(request.body) > 2**20 else request.body
        async with self.client.post(request.path, data=data, headers=request.headers) as response:
            answer = Answer(response.status, response.content_type, await response.read())
        return await self._settle([answer])

    async def send_raw(self, data: bytes, *, half_close: bool = False) -> Outcome:
        """Write these bytes on a fresh connection and read every answer until it closes."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.client.port)
        try:
            writer.write(data)
            if half_close:
                writer.write_eof()
            await writer.drain()
            async with asyncio.timeout(10):
                stream = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return await self._settle(parse_answers(stream))

    async def _settle(self, answers: list[Answer]) -> Outcome:
        outcome = Outcome(answers, await self.tap.take())
        async with self.client.get("/healthz") as response:
            assert response.status == 200, "the receiver stopped answering"
        return outcome


def parse_answers(stream: bytes) -> list[Answer]:
    """The HTTP/1.1 responses in a byte stream (each with a Content-Length)."""
    answers = []
    while stream:
        head, separator, rest = stream.partition(b"\r\n\r\n")
        assert separator, stream
        status_line, *lines = head.split(b"\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get(b"content-length", b"0"))
        content_type = headers.get(b"content-type", b"").split(b";")[0].decode()
        answers.append(Answer(int(status_line.split()[1]), content_type, rest[:length]))
        stream = rest[length:]
    return answers


def raw_request(
    path: str,
    headers: Iterable[tuple[str | bytes, str | bytes]],
    body: bytes,
    content_length: int | None = None,
) -> bytes:
    """An HTTP/1.1 POST, byte for byte, with Connection: close."""
    length = len(body) if content_length is None else content_length
    lines = [f"POST {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close"]
    for name, value in headers:
        name = name.encode() if isinstance(name, str) else name
        value = value.encode() if isinstance(value, str) else value
        lines.append(name + b": " + value)
    lines.append(f"Content-Length: {length}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


@pytest.fixture
async def tap(inspector: Inspector) -> AsyncIterator[Tap]:
    tap = await Tap.bind(inspector)
    yield tap
    # The work queue holds exactly the messages the tap saw: none published behind its back.
    await inspector.wait_count(inspector.settings.amqp.queue, tap.seen, timeout_s=5)


@pytest.fixture
def receiver(client: TestClient[Any, Any], tap: Tap) -> Receiver:
    return Receiver(client, tap)


# --- what the answers must be ------------------------------------------------------------


def assert_refused(outcome: Outcome, statuses: Iterable[int] = range(400, 500)) -> None:
    """Every answer is a 4xx problem+json with one of these statuses; nothing was published."""
    assert not outcome.published, f"published on a refused request: {outcome.answers}"
    assert outcome.answers, "no answer"
    for answer in outcome.answers:
        assert answer.status in statuses, answer
        assert_problem(answer.status, answer.content_type, answer.body, answer.status)


def assert_refused_by_framing_or_app(outcome: Outcome, *, answer_optional: bool = False) -> None:
    """Like assert_refused, but aiohttp's own text/plain 400 for unparseable HTTP is allowed."""
    assert not outcome.published, f"published on a refused request: {outcome.answers}"
    assert outcome.answers or answer_optional, "no answer"
    for answer in outcome.answers:
        if answer.content_type == "text/plain":
            assert answer.status == 400, answer
            continue
        assert 400 <= answer.status < 500, answer
        assert_problem(answer.status, answer.content_type, answer.body, answer.status)


def assert_accepted(outcome: Outcome, body: bytes) -> str:
    """202 and exactly one message on the bus, carrying the body unchanged; the event id."""
    assert outcome.answer.status == 202, outcome.answer
    (message,) = outcome.published
    event_id: str = orjson.loads(outcome.answer.body)["id"]
    doc = orjson.loads(message.body)
    assert message.message_id == doc["id"] == event_id
    assert message.routing_key == doc["type"]
    assert doc["data"] == orjson.loads(body)
    assert body.strip() in message.body
    return event_id


def assert_accepted_or_not_an_event(outcome: Outcome, body: bytes) -> int:
    """202 with one message, or a 400 problem with none; the status."""
    status = outcome.answer.status
    event(f"status {status}")
    if status == 202:
        assert_accepted(outcome, body)
    else:
        assert_refused(outcome, {400})
    return status


# --- how each source signs ---------------------------------------------------------------

SIGNERS: dict[str, Callable[[bytes], Request]] = {
    "leanix": senders.leanix,
    "uipath": senders.uipath,
    "robocorp": senders.robocorp,
    "leapwork": senders.leapwork,
    "workato": senders.workato,
    "leapwork-bearer": lambda body: senders.bearer_callback("/callbacks/leapwork", body),
    "workato-bearer": lambda body: senders.bearer_callback("/callbacks/workato", body),
}
BODY_SIGNED = ["uipath", "robocorp", "leapwork", "workato"]  # the signature covers the body
CREDENTIAL_HEADER = {
    "leanix": "Authorization",
    "uipath": "X-UiPath-Signature",
    "robocorp": "x-rc-signature",
    "leapwork": "webhook-signature",
    "workato": "webhook-signature",
    "leapwork-bearer": "Authorization",
    "workato-bearer": "Authorization",
}
FIXTURES = {
    "leanix": "leanix-factsheet-created.json",
    "uipath": "uipath-job-completed.json",
    "robocorp": "robocorp-process-run-completed.json",
    "leapwork": "leapwork-run-finished.json",
    "workato": "workato-job-completed.json",
}


def vendor(source: str) -> str:
    return source.removesuffix("-bearer")


def signed(source: str, body: bytes) -> Request:
    return SIGNERS[source](body)


def with_headers(request: Request, **headers: str) -> Request:
    """The request with these headers replaced (names matched case-insensitively)."""
    kept = {k: v for k, v in request.headers.items() if k.lower() not in map(str.lower, headers)}
    return Request(request.path, {**kept, **headers}, request.body)


def without_header(request: Request, name: str) -> Request:
    kept = {k: v for k, v in request.headers.items() if k.lower() != name.lower()}
    return Request(request.path, kept, request.body)


def credential_core(value: str) -> str:
    """The secret part of a credential header: the token, signature or hex digest."""
    return value.split(",")[-1].split(" ")[-1].strip().lower()


def holds_a_credential(value: str, *originals: str) -> bool:
    """Whether a generated header value contains a credential that would make it valid."""
    cores = (credential_core(c) for c in (*originals, *senders.ALL_SECRETS))
    return any(core in value.strip().lower() for core in cores)


# --- generators --------------------------------------------------------------------------

SOURCES = st.sampled_from(sorted(SIGNERS))
JSON = json_values(max_size=3)
IDS = st.uuids().map(str) | TEXT | st.integers(0, 2**63)

# Values that make each source's fields valid, so the 202 path is reached often; the
# generators mix them with arbitrary JSON (wrong types) and arbitrary extra keys.
PLAUSIBLE: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "leanix": {
        "type": st.sampled_from(
            ["FactSheetCreatedEvent", "RelationSwitchEvent", "FACT_SHEET_ARCHIVED", "Event", "A_B"]
        ),
        "id": IDS,
        "workspaceId": IDS,
        "factSheet": st.fixed_dictionaries({"id": IDS}),
        "relation": st.fixed_dictionaries({"id": IDS}),
        "createdAt": TEXT,
        "sourceName": TEXT,
        "payload": st.fixed_dictionaries(
            {"type": st.just("FactSheetUpdatedEvent"), "factSheet": st.just({"id": "fs"})}
        ),
    },
    "uipath": {
        "Type": st.sampled_from(["job.completed", "queueItem.added", "QUEUE_ITEM.x", "job.", "."])
        | TEXT,
        "EventId": IDS,
        "TenantId": IDS,
        "Timestamp": TEXT,
        "Job": st.fixed_dictionaries({"Id": IDS}),
        "Jobs": st.lists(st.fixed_dictionaries({"Id": IDS}), max_size=2),
    },
    "robocorp": {
        "event": st.sampled_from(["process_run.completed", "completed", ".", "a.b.c"]) | TEXT,
        "state": st.sampled_from(["completed", "unresolved"]) | TEXT,
        "id": IDS,
        "webhookEventTimestamp": TEXT,
        "payload": st.fixed_dictionaries({"processRunId": IDS, "workspaceId": IDS}),
        "processRun": st.fixed_dictionaries({"id": IDS}),
    },
    "leapwork": {
        "runId": TEXT,
        "status": st.just("Finished"),
        "result": st.sampled_from(["Passed", "Failed"]),
        "correlationId": TEXT,
        "finishedAt": TEXT,
        "outputs": JSON,
    },
    "workato": {
        "status": st.sampled_from(["completed", "failed", "Succeeded", "error", "running"]),
        "jobId": IDS,
        "correlationId": TEXT,
        "completedAt": TEXT,
        "outputs": JSON,
        "error": TEXT,
    },
}


def field_payloads(source: str) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the source's fields (plausible or of any JSON type) and extra keys."""
    known = st.fixed_dictionaries(
        {}, optional={k: v | JSON for k, v in PLAUSIBLE[vendor(source)].items()}
    )
    extra = st.dictionaries(TEXT, JSON, max_size=3)
    return st.builds(lambda e, k: {**e, **k}, extra, known)


def _paths(doc: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for key, value in doc.items():
        found.append((*prefix, key))
        if isinstance(value, dict) and len(prefix) < 2:
            found.extend(_paths(value, (*prefix, key)))
    return found


@st.composite
def mutated_fixtures(draw: st.DrawFn, source: str) -> dict[str, Any]:
    """A real delivery with one field replaced by any JSON value, or deleted."""
    doc: dict[str, Any] = orjson.loads(senders.fixture(FIXTURES[vendor(source)]))
    *parents, leaf = draw(st.sampled_from(_paths(doc)))
    node = doc
    for key in parents:
        node = node[key]
    if draw(st.booleans()):
        del node[leaf]
    else:
        node[leaf] = draw(JSON)
    return doc


def payloads(source: str) -> st.SearchStrategy[dict[str, Any]]:
    return field_payloads(source) | mutated_fixtures(source)


def documented(source: str, payload: dict[str, Any]) -> bool:
    """The body has the shape the README documents for a Leapwork or Workato callback."""

    def text(key: str) -> bool:
        return isinstance(payload.get(key), str) and payload[key] != ""

    def text_or_absent(*keys: str) -> bool:
        return all(payload.get(k) is None or isinstance(payload[k], str) for k in keys)

    if source.endswith("-bearer") and not text("correlationId"):
        return False  # a run's token is checked against it (vendors/runtoken.py)
    if vendor(source) == "leapwork":
        return text("runId") and text_or_absent("finishedAt")
    if vendor(source) == "workato":
        return (
            payload.get("status") in ("completed", "failed")
            and (text("jobId") or text("correlationId"))
            and text_or_absent("jobId", "correlationId", "completedAt")
        )
    return False


# Bodies that are not JSON objects, whatever the parser. Each fragment is spliced into an
# otherwise valid object, so only the fragment is wrong.
INVALID_UTF8 = [
    b"\xc0\xaf",  # overlong "/"
    b"\xe0\x80\xaf",  # overlong, three bytes
    b"\xed\xa0\x80",  # a UTF-16 surrogate encoded as UTF-8 (CESU)
    b"\xf4\x90\x80\x80",  # above U+10FFFF
    b"\xf8\x88\x80\x80\x80",  # a five-byte form
    b"\xe2\x82",  # truncated
    b"\xff",
    b"\x80",
]
LONE_SURROGATES = [b"\\ud800", b"\\udfff", b"\\ud800\\u0041", b"\\udc00\\ud800", b"\\uDBFF"]
NOT_OBJECTS = [
    b"",
    b"\xef\xbb\xbf{}",  # BOM
    b"\xff\xfe{\x00}\x00",  # UTF-16
    b'{"a": NaN}',
    b'{"a": Infinity}',
    b'{"a": -Infinity}',
    b'{"a": 1e400}',
    b'{"a": 01}',
    b'{"a": 1,}',
    b"{'a': 1}",
    b"{a: 1}",
    b"{}{}",
    b"{} x",
    b'{"a": 1} // comment',
    b'{"a": "\x01"}',  # unescaped control character
    b'{"a": "\\x41"}',
    b"[" * 2000 + b"]" * 2000,
    b'{"a":' * 2000 + b"1" + b"}" * 2000,
    b"null",
    b'"{}"',
    b"[{}]",
    b"{" + b"\x00" * 10 + b"}",
]


@st.composite
def spliced(draw: st.DrawFn) -> bytes:
    """A JSON object with one ill-formed fragment in a string value or key."""
    fragment = draw(st.sampled_from(INVALID_UTF8 + LONE_SURROGATES))
    prefix = draw(TEXT).encode().replace(b"\\", b"").replace(b'"', b"")
    value = b'"' + prefix + fragment + b'"'
    if draw(st.booleans()):
        return b'{"k": ' + value + b"}"
    return b"{" + value + b': 1, "x": [1, {"y": 2}]}'


@st.composite
def truncated(draw: st.DrawFn) -> bytes:
    """A proper prefix of a compact JSON object: never a whole object."""
    body = orjson.dumps(draw(st.dictionaries(TEXT, JSON, min_size=1, max_size=4)))
    return body[: draw(st.integers(0, len(body) - 1))]


def _not_an_object(body: bytes) -> bool:
    try:
        return not isinstance(orjson.loads(body), dict)
    except orjson.JSONDecodeError:
        return True


NON_OBJECTS = st.one_of(
    st.sampled_from(NOT_OBJECTS),
    spliced(),
    truncated(),
    st.text(" \t\r\n", max_size=8).map(str.encode),  # whitespace only
    JSON.filter(lambda doc: not isinstance(doc, dict)).map(orjson.dumps),
    st.binary(max_size=64).filter(_not_an_object),
    st.binary(min_size=1, max_size=8).map(lambda b: b"\xff" + b * 50_000),  # ~0.4 MB garbage
)
HEADER_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cc"]), max_size=40)
LONG_HEADER_TEXT = st.builds(
    str.__mul__, st.sampled_from(["a", "=", " x", "é", "😀"]), st.integers(500, 2000)
)
GARBAGE = HEADER_TEXT | LONG_HEADER_TEXT | st.builds(lambda t: "v1," + t, HEADER_TEXT)
ANY_BODY = st.one_of(
    st.sampled_from(sorted(FIXTURES)).map(lambda name: senders.fixture(FIXTURES[name])),
    JSON.map(orjson.dumps),
    st.binary(max_size=64),
)


# --- properties: no credential, no entry -------------------------------------------------


@st.composite
def forged(draw: st.DrawFn) -> Request:
    """A request for any source whose credential is missing, garbage or made with another key."""
    source = draw(SOURCES)
    request = signed(source, draw(ANY_BODY))
    header = CREDENTIAL_HEADER[source]
    how = draw(st.sampled_from(["missing", "garbage", "other key"]))
    event(how)
    if how == "missing":
        return without_header(request, header)
    if how == "other key":
        return forge_with_other_key(source, request)
    garbage = draw(GARBAGE)
    assume(not holds_a_credential(garbage, request.headers[header]))
    if source.endswith("-bearer") and draw(st.booleans()):
        garbage = f"Bearer {garbage}"
    return with_headers(request, **{header: garbage})


def forge_with_other_key(source: str, request: Request) -> Request:
    body = request.body
    if source == "leanix":
        return senders.leanix(body, auth="Basic d3Jvbmc6a2V5")
    if source == "uipath":
        return senders.uipath(body, secret="another-secret")
    if source == "robocorp":
        return senders.robocorp(body, secret="another-secret")
    if source.endswith("-bearer"):
        return senders.bearer_callback(request.path, body, token="another-token")
    return senders.signed_callback(request.path, body, secret=senders.WHSEC_OLD)


@settings(FUZZ, max_examples=100)
@given(forged())
async def test_a_request_without_a_valid_credential_gets_401(
    receiver: Receiver, request_: Request
) -> None:
    assert_refused(await receiver.send(request_), {401})


# --- properties: authenticated, but not an event -----------------------------------------


@settings(FUZZ, max_examples=150)
@given(SOURCES, NON_OBJECTS)
async def test_an_authenticated_body_that_is_not_a_json_object_gets_400(
    receiver: Receiver, source: str, body: bytes
) -> None:
    assert_refused(await receiver.send(signed(source, body)), {400})


@settings(FUZZ, max_examples=250)
@given(st.data())
async def test_an_authenticated_json_object_is_accepted_once_or_refused_with_400(
    receiver: Receiver, data: st.DataObject
) -> None:
    source = data.draw(SOURCES, label="source")
    payload = data.draw(payloads(source), label="payload")
    body = orjson.dumps(payload)
    status = assert_accepted_or_not_an_event(await receiver.send(signed(source, body)), body)
    if documented(source, payload):
        assert status == 202, "a callback of the documented shape was refused"


# --- properties: header tricks -----------------------------------------------------------


@st.composite
def duplicated(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A signed event whose credential header is sent several times; (request, any valid?)."""
    source = draw(SOURCES)
    request = signed(source, senders.fixture(FIXTURES[vendor(source)]))
    header = CREDENTIAL_HEADER[source]
    valid = request.headers[header]
    values = draw(st.lists(st.just(valid) | HEADER_TEXT, min_size=2, max_size=4))
    assume(not any(holds_a_credential(v, valid) for v in values if v != valid))
    headers = [(k, v) for k, v in request.headers.items() if k != header]
    headers += [(header, v) for v in values]
    return raw_request(request.path, headers, request.body), valid in values


@settings(FUZZ, max_examples=40)
@given(duplicated())
async def test_a_duplicated_credential_header_never_lets_a_forgery_in(
    receiver: Receiver, case: tuple[bytes, bool]
) -> None:
    data, any_valid = case
    outcome = await receiver.send_raw(data)
    event(f"any valid: {any_valid}, status {outcome.answer.status}")
    if any_valid and outcome.answer.status == 202:  # the first copy decides today
        assert len(outcome.published) == 1
    else:
        assert_refused(outcome, {401})


SUBTYPES = [
    *["json", "JSON", "cloudevents+json", "vnd.api+JSON", "+json", "json+x", "jsonp", "json-seq"],
    *["x-www-form-urlencoded", "octet-stream", "*", ""],
]
CONTENT_TYPES = st.one_of(
    st.builds(
        lambda kind, sub, params, space: (
            f"{space}{kind}/{sub}{space}"
            + "".join(f";{space}{name}={value}" for name, value in params)
        ),
        st.sampled_from(["application", "APPLICATION", "Application", "text", "x", "", "*"]),
        st.sampled_from(SUBTYPES),
        st.lists(
            st.tuples(
                st.sampled_from(["charset", "CHARSET", "boundary", "q", ""]),
                st.sampled_from(["utf-8", "latin-1", "utf-16", '"utf-8"', "", "é", ";", '"']),
            ),
            max_size=3,
        ),
        st.sampled_from(["", " ", "\t"]),
    ),
    HEADER_TEXT,
)


def json_media(content_type: str) -> bool:
    """The README's rule on aiohttp's parse: application/json or application/*+json."""
    media, _ = parse_content_type(content_type)
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


@settings(FUZZ, max_examples=60)
@given(SOURCES, CONTENT_TYPES)
async def test_only_a_json_content_type_is_accepted(
    receiver: Receiver, source: str, content_type: str
) -> None:
    body = senders.fixture(FIXTURES[vendor(source)])
    request = with_headers(signed(source, body), **{"Content-Type": content_type})
    outcome = await receiver.send(request)
    event(f"status {outcome.answer.status}")
    if json_media(content_type):
        assert_accepted(outcome, body)
    else:
        assert_refused(outcome, {415})


# Valid UTF-8, control characters included: llhttp refuses most of those itself.
RAW_HEADER_VALUES = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=40)
READ_HEADERS = [(source, header) for source, header in CREDENTIAL_HEADER.items()] + [
    (source, header)
    for source in ("leapwork", "workato")
    for header in ("webhook-id", "webhook-timestamp")
]


@settings(FUZZ, max_examples=60)
@given(st.sampled_from(READ_HEADERS), RAW_HEADER_VALUES)
async def test_odd_bytes_in_an_authentication_header_get_a_4xx(
    receiver: Receiver, source_header: tuple[str, str], value: str
) -> None:
    source, header = source_header
    request = signed(source, senders.fixture(FIXTURES[vendor(source)]))
    original = request.headers[header]
    assume(value.strip() != original and not holds_a_credential(value, original))
    if header == "webhook-timestamp":
        assume(value.strip().lstrip("0") != original)
    headers = {**request.headers, header: value}
    outcome = await receiver.send_raw(raw_request(request.path, headers.items(), request.body))
    event(f"status {outcome.answer.status} {outcome.answer.content_type}")
    assert_refused_by_framing_or_app(outcome)


# --- properties: framing and sizes -------------------------------------------------------


@settings(FUZZ, max_examples=40)
@given(st.sampled_from(BODY_SIGNED), st.data())
async def test_a_content_length_that_does_not_match_the_body_publishes_nothing(
    receiver: Receiver, source: str, data: st.DataObject
) -> None:
    body = senders.fixture(FIXTURES[source])
    request = signed(source, body)
    delta = data.draw(st.integers(-len(body), -1) | st.integers(1, 64), label="delta")
    wire = raw_request(request.path, request.headers.items(), body, len(body) + delta)
    outcome = await receiver.send_raw(wire, half_close=delta > 0)
    event(f"delta {'<' if delta < 0 else '>'} 0: {[a.status for a in outcome.answers]}")
    assert_refused_by_framing_or_app(outcome, answer_optional=delta > 0)


LIMIT = 1024


@pytest.fixture
async def limited(
    make_settings: Callable[..., Settings], broker: Broker, tap: Tap
) -> AsyncIterator[Receiver]:
    """A receiver whose body limit is LIMIT bytes."""
    settings_ = make_settings(http={"max_body_bytes": LIMIT})
    async with TestClient(TestServer(create_app(settings_, broker))) as client:
        yield Receiver(client, tap)


@settings(FUZZ, max_examples=40)
@given(SOURCES, st.integers(0, 3 * LIMIT), st.booleans(), st.booleans())
async def test_a_body_over_the_limit_gets_413_signed_or_not_if_its_length_is_sent(
    limited: Receiver, source: str, size: int, sign: bool, chunked: bool
) -> None:
    # A JSON object of exactly `size` bytes (an empty body below 12).
    body = b'{"pad":"' + b"x" * (size - 10) + b'"}' if size >= 12 else b""
    request = signed(source, body)
    if not sign:
        request = without_header(request, CREDENTIAL_HEADER[source])
    if chunked:
        outcome = await limited.send_raw(chunked_request(request))
    else:
        outcome = await limited.send(request)
    event(f"{'over' if len(body) > LIMIT else 'within'} the limit, status {outcome.answer.status}")
    if len(body) > LIMIT and (sign or not chunked):
        assert_refused(outcome, {413})
    elif not sign and chunked:  # no size to refuse before reading: the credential is refused
        assert_refused(outcome, {401})
    elif sign:
        assert_accepted_or_not_an_event(outcome, body)
    else:
        assert_refused(outcome, {401})


def chunked_request(request: Request) -> bytes:
    head = [f"POST {request.path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    head += [f"{k}: {v}" for k, v in request.headers.items()]
    head.append("Transfer-Encoding: chunked")
    chunks = [request.body[i : i + 300] for i in range(0, len(request.body), 300)]
    wire = "\r\n".join(head).encode() + b"\r\n\r\n"
    for chunk in chunks:
        wire += f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    return wire + b"0\r\n\r\n"


async def test_a_20_mb_leanix_event_is_accepted(receiver: Receiver) -> None:
    """LeanIX payloads reach 20 MB (README): such a body goes through whole."""
    doc = orjson.loads(senders.fixture(FIXTURES["leanix"]))
    doc["factSheet"]["description"] = "ü" * (10 * 1024 * 1024)
    body = orjson.dumps(doc)
    assert_accepted(await receiver.send(senders.leanix(body)), body)


FRAMING = {
    "negative content-length": b"Content-Length: -1\r\n",
    "two content-lengths": b"Content-Length: 2\r\nContent-Length: 3\r\n",
    "content-length and chunked": b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
    "header line over 8190 bytes": b"X-Pad: " + b"a" * 9000 + b"\r\n",
    "NUL in a header": b"Authorization: Basic \x00\r\nContent-Length: 2\r\n",
    "space before colon": b"Authorization : x\r\nContent-Length: 2\r\n",
    "bad chunk size": b"Transfer-Encoding: chunked\r\n",
}


@pytest.mark.parametrize("headers", FRAMING.values(), ids=FRAMING.keys())
async def test_unparseable_http_gets_a_400_and_publishes_nothing(
    receiver: Receiver, headers: bytes
) -> None:
    head = b"POST /webhooks/leanix HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    head += b"Content-Type: application/json\r\n" + headers + b"\r\n"
    body = b"zz\r\n{}\r\n0\r\n\r\n" if b"chunked" in headers else b"{}"
    outcome = await receiver.send_raw(head + body)
    assert_refused_by_framing_or_app(outcome)
    assert outcome.answer.status == 400


# --- properties: replays -----------------------------------------------------------------


@settings(FUZZ, max_examples=40)
@given(st.sampled_from(BODY_SIGNED), ANY_BODY)
async def test_a_signature_does_not_authenticate_another_body(
    receiver: Receiver, source: str, other: bytes
) -> None:
    original = signed(source, senders.fixture(FIXTURES[source]))
    assume(other.strip() != original.body.strip())
    replayed = Request(original.path, original.headers, other)
    assert_refused(await receiver.send(replayed), {401})


@settings(FUZZ, max_examples=30)
@given(
    st.sampled_from(["leapwork", "workato"]),
    st.integers(-290, -1) | st.integers(1, 290),
    st.sampled_from(["webhook-timestamp", "webhook-id", "both"]),
)
async def test_a_standard_webhooks_signature_does_not_survive_a_new_timestamp_or_id(
    receiver: Receiver, source: str, shift_s: int, change: str
) -> None:
    now = int(time.time())
    body = senders.fixture(FIXTURES[source])
    original = senders.signed_callback(f"/callbacks/{source}", body, timestamp=now - shift_s)
    changed = {}
    if change in ("webhook-timestamp", "both"):
        changed["webhook-timestamp"] = str(now)
    if change in ("webhook-id", "both"):
        changed["webhook-id"] = original.headers["webhook-id"] + "-replayed"
    assert_refused(await receiver.send(with_headers(original, **changed)), {401})


async def test_a_captured_request_replayed_after_the_tolerance_gets_401(
    receiver: Receiver,
) -> None:
    old = int(time.time()) - 301
    for source in ("leapwork", "workato"):
        body = senders.fixture(FIXTURES[source])
        request = senders.signed_callback(f"/callbacks/{source}", body, timestamp=old)
        assert_refused(await receiver.send(request), {401})


@pytest.mark.parametrize("source", sorted(SIGNERS))
async def test_the_same_signed_request_twice_is_accepted_twice_with_one_id(
    receiver: Receiver, source: str
) -> None:
    """A re-delivery is not an attack: 202 both times, the same event id (the worker dedupes)."""
    request = signed(source, senders.fixture(FIXTURES[vendor(source)]))
    first = assert_accepted(await receiver.send(request), request.body)
    second = assert_accepted(await receiver.send(request), request.body)
    assert first == second


# --- known bugs: minimal reproductions ---------------------------------------------------

INVALID_UTF8_HEADERS = {
    "leanix Authorization": ("leanix", "Authorization", b"Basic \xff\xfe"),
    "uipath X-UiPath-Signature": ("uipath", "X-UiPath-Signature", b"\xc0\xaf"),
    "robocorp x-rc-signature": ("robocorp", "x-rc-signature", b"\xed\xa0\x80"),
    "workato bearer Authorization": ("workato-bearer", "Authorization", b"Bearer \xff"),
    "workato webhook-id": ("workato", "webhook-id", b"msg_\xff"),
    "workato bearer webhook-id": ("workato-bearer", "webhook-id", b"msg_\xff"),
    "workato webhook-signature": ("workato", "webhook-signature", b"v1,\xff"),
}


@pytest.mark.parametrize(
    ("source", "header", "value"), INVALID_UTF8_HEADERS.values(), ids=INVALID_UTF8_HEADERS.keys()
)
async def test_a_credential_header_that_is_not_utf8_gets_401(
    receiver: Receiver, source: str, header: str, value: bytes
) -> None:
    request = signed(source, senders.fixture(FIXTURES[vendor(source)]))
    headers: list[tuple[str | bytes, str | bytes]] = [
        (k, v) for k, v in request.headers.items() if k != header
    ]
    wire = raw_request(request.path, [*headers, (header, value)], request.body)
    assert_refused(await receiver.send_raw(wire), {400, 401})


async def test_a_webhook_timestamp_of_5000_digits_gets_401(receiver: Receiver) -> None:
    request = senders.workato()
    assert_refused(await receiver.send(with_headers(request, **{"webhook-timestamp": "9" * 5000})))


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_a_body_that_does_not_match_its_content_encoding_gets_415(
    receiver: Receiver, coding: str
) -> None:
    headers = {"Content-Type": "application/json", "Content-Encoding": coding}
    wire = raw_request("/webhooks/leanix", headers.items(), b"{}")  # no credential at all
    # 415 from us, or aiohttp's own 400 when its parser fails on the bytes first.
    assert_refused_by_framing_or_app(await receiver.send_raw(wire))


async def test_a_compressed_body_is_refused_because_signatures_cover_the_bytes_sent(
    receiver: Receiver,
) -> None:
    body = senders.fixture(FIXTURES["leanix"])
    for compressed, coding in ((gzip.compress(body), "gzip"), (zlib.compress(body), "deflate")):
        request = with_headers(senders.leanix(compressed), **{"Content-Encoding": coding})
        assert_refused(await receiver.send(request), {415})
        signed_wire = with_headers(senders.uipath(compressed), **{"Content-Encoding": coding})
        assert_refused(await receiver.send(signed_wire), {415})


LONG_TYPES = {
    "uipath": {"Type": "job." + "a" * 300, "EventId": "e-1"},
    "robocorp": {"event": "process_run." + "a" * 300, "id": "r-1"},
    "leanix": {"type": "FACT_SHEET_" + "A" * 300, "id": 1, "workspaceId": "ws"},
}


@pytest.mark.parametrize("source", LONG_TYPES)
async def test_a_signed_event_with_a_type_too_long_for_a_routing_key_gets_400(
    receiver: Receiver, source: str
) -> None:
    body = orjson.dumps(LONG_TYPES[source])
    assert_refused(await receiver.send(signed(source, body)), {400})
