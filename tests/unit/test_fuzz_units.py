"""Properties of the receiver's pure parts, fuzzed: parse, normalise, verify, encode/decode.

Whatever the input, these raise only the InputError they document (MalformedEvent,
Unauthorized) and never anything else: anything else would be a 500 at the endpoint.
The HTTP-level properties, with the broker, are in tests/integration/test_fuzz.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from service.cloudevent import CloudEvent, decode, encode, event_id
from service.errors import MalformedEvent, Unauthorized
from service.receiver.ingest import build_event, parse
from service.receiver.sources import Source
from service.vendors import normalise
from service.vendors.leapwork import callback as leapwork
from service.vendors.robocorp import callback as robocorp
from service.vendors.runtoken import RunCallback, RunToken
from service.vendors.signatures import (
    BodyHmac,
    Credential,
    StandardWebhooks,
    StaticAuthorization,
    sign_standard,
)
from service.vendors.uipath import callback as uipath
from service.vendors.workato import callback as workato
from tests import senders
from tests.strategies import TEXT, json_values

FAST = settings(max_examples=100, deadline=None, database=None)

JSON = json_values(max_size=4)
# The fields the normalisers read, to be given values of every JSON type.
FIELDS = st.sampled_from(
    [
        *["type", "id", "workspaceId", "factSheet", "createdAt", "payload", "sourceName"],
        *["relation", "Type", "EventId", "TenantId", "Timestamp", "Job", "Jobs", "event"],
        *["eventType", "state", "webhookEventTimestamp", "processRunId", "processRun"],
        *["runId", "finishedAt", "status", "jobId", "correlationId", "completedAt"],
    ]
)
OBJECTS = st.dictionaries(FIELDS | TEXT, JSON, max_size=6)

NORMALISERS = {
    "leanix": normalise.leanix,
    "uipath": uipath.normalise,
    "robocorp": robocorp.normalise,
    "leapwork": leapwork.normalise,
    "workato": workato.normalise,
}
WORD = r"[a-z0-9_]+"


# --- parse -------------------------------------------------------------------------------


@FAST
@given(st.binary(max_size=200) | TEXT.map(str.encode))
def test_parse_returns_an_object_or_refuses_with_malformed_event(body: bytes) -> None:
    try:
        payload = parse(body)
    except MalformedEvent as exc:
        assert exc.status == 400 and exc.detail
    else:
        assert isinstance(payload, dict)


@settings(FAST, max_examples=100)
@given(OBJECTS, st.sampled_from([b"", b" ", b"\n", b"\r\n\t "]))
def test_parse_reads_any_json_object_back(payload: dict[str, Any], padding: bytes) -> None:
    assert parse(padding + orjson.dumps(payload) + padding) == payload


# --- normalise ---------------------------------------------------------------------------


@settings(FAST, max_examples=250)
@given(st.sampled_from(sorted(NORMALISERS)), OBJECTS, st.sampled_from(["", " ", "\n"]))
def test_a_payload_is_refused_with_malformed_event_or_goes_on_the_bus_unchanged(
    name: str, payload: dict[str, Any], padding: str
) -> None:
    body = padding.encode() + orjson.dumps(payload) + padding.encode()
    try:
        facts = NORMALISERS[name](parse(body))
    except MalformedEvent as exc:
        event("refused")
        assert exc.detail
        return
    event("accepted")
    assert re.fullmatch(rf"{name}\.{WORD}\.{WORD}", facts.type), facts.type
    assert facts.source == name or facts.source.startswith(f"{name}:")
    for value in (facts.subject, facts.time, facts.sender_id):
        assert value is None or isinstance(value, str)
    source = Source(name, f"/{name}", None, NORMALISERS[name], "")
    cloud_event = build_event(source, facts, Credential("test"), body)
    decoded = decode(encode(cloud_event, body))
    assert decoded.data == payload
    assert (decoded.type, decoded.subject) == (facts.type, facts.subject)
    assert decoded.id == cloud_event.id == str(uuid.UUID(cloud_event.id))
    assert decoded.extensions["authsource"] == f"{name}/test"


@FAST
@given(st.lists(st.text(), max_size=5))
def test_a_segment_is_one_routing_key_word(parts: list[str]) -> None:
    assert re.fullmatch(WORD, normalise.segment(parts))


@FAST
@given(st.text())
def test_words_are_lower_case(name: str) -> None:
    assert all(word == word.lower() for word in normalise.words(name))


# --- verifiers ---------------------------------------------------------------------------

HEADER_NAMES = st.sampled_from(
    [
        *["Authorization", "authorization", "X-UiPath-Signature", "x-rc-signature"],
        *["webhook-id", "webhook-timestamp", "webhook-signature", "Webhook-Signature"],
    ]
)
HEADER_VALUES = (
    TEXT
    | st.sampled_from(["Bearer", "Bearer ", "bearer x", "v1,", "v1, ", "v1,=", " v2,abc"])
    | st.integers(min_value=0, max_value=2**40).map(str)
    | st.builds(lambda a, b: f"{a} {b}", st.sampled_from(["Bearer", "Basic", "v1,x"]), TEXT)
)
HEADERS = st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=5).map(CIMultiDict)
VERIFIERS = [
    StaticAuthorization([senders.LEANIX_AUTH]),
    BodyHmac("X-UiPath-Signature", "base64", [senders.UIPATH_SECRET]),
    BodyHmac("x-rc-signature", "hex", [senders.ROBOCORP_SECRET]),
    StandardWebhooks([senders.WHSEC]),
    # Callbacks: a header value here is never of a run token's form (43 characters), so
    # every refusal comes before the body is looked at.
    RunToken("leapwork", [senders.CALLBACK_SIGNING_KEY]),
    RunCallback(
        StandardWebhooks([senders.WHSEC]), RunToken("workato", [senders.CALLBACK_SIGNING_KEY])
    ),
    RunCallback(None, RunToken("leapwork", [senders.CALLBACK_SIGNING_KEY])),
    RunCallback(StandardWebhooks([senders.WHSEC]), None),
]


@settings(FAST, max_examples=300)
@given(st.sampled_from(VERIFIERS), HEADERS, st.binary(max_size=64))
def test_a_verifier_refuses_garbage_with_unauthorized(
    verifier: Any, headers: CIMultiDict[str], body: bytes
) -> None:
    with pytest.raises(Unauthorized) as refused:
        verifier.verify(headers, body)
    assert refused.value.status == 401 and refused.value.detail


SECRETS = st.binary(min_size=16, max_size=48).map(
    lambda key: "whsec_" + base64.b64encode(key).decode()
)
MESSAGE_IDS = st.text(st.characters(codec="utf-8", exclude_categories=["Cc"]), min_size=1)
NOW = 1_700_000_000


@FAST
@given(SECRETS, MESSAGE_IDS, st.integers(NOW - 300, NOW + 300), st.binary(max_size=200))
def test_a_standard_webhooks_signature_verifies_and_matches_an_independent_signer(
    secret: str, msg_id: str, timestamp: int, body: bytes
) -> None:
    signature = sign_standard(secret, msg_id, timestamp, body)
    assert signature == senders.standard_signature(secret, msg_id, timestamp, body)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,bm90LWl0 {signature}",  # several: rotation
    }
    verifier = StandardWebhooks([senders.WHSEC_OLD, secret], clock=lambda: NOW)
    assert verifier.verify(headers, body) == Credential("standard-webhooks", msg_id)


@FAST
@given(
    SECRETS,
    MESSAGE_IDS,
    st.integers(NOW - 300, NOW + 300),
    st.binary(max_size=200),
    st.data(),
)
def test_a_standard_webhooks_signature_is_bound_to_its_id_timestamp_and_body(
    secret: str, msg_id: str, timestamp: int, body: bytes, data: st.DataObject
) -> None:
    signature = sign_standard(secret, msg_id, timestamp, body)
    replayed = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    change = data.draw(st.sampled_from(["webhook-id", "webhook-timestamp", "body"]))
    if change == "webhook-id":
        replayed[change] = data.draw(MESSAGE_IDS.filter(lambda other: other != msg_id))
    elif change == "webhook-timestamp":
        other = data.draw(st.integers(NOW - 300, NOW + 300).filter(lambda t: t != timestamp))
        replayed[change] = str(other)
    else:
        body = data.draw(st.binary(max_size=200).filter(lambda other: other != body))
    verifier = StandardWebhooks([secret], clock=lambda: NOW)
    with pytest.raises(Unauthorized):
        verifier.verify({**replayed, "webhook-signature": signature}, body)


def _hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@FAST
@given(st.binary(max_size=200), st.binary(max_size=200), st.sampled_from(["", " ", "\t"]))
def test_a_robocorp_signature_verifies_its_body_only(
    body: bytes, other: bytes, padding: str
) -> None:
    verifier = BodyHmac("x-rc-signature", "hex", [senders.ROBOCORP_SECRET])
    signature = _hex(senders.ROBOCORP_SECRET, body)
    for given_signature in (signature, signature.upper()):
        headers = {"x-rc-signature": padding + given_signature + padding}
        assert verifier.verify(headers, body).scheme == "hmac-sha256-hex"
    if other != body:
        with pytest.raises(Unauthorized):
            verifier.verify({"x-rc-signature": signature}, other)


@FAST
@given(st.binary(max_size=200), st.binary(max_size=200))
def test_a_uipath_signature_verifies_its_body_only(body: bytes, other: bytes) -> None:
    verifier = BodyHmac("X-UiPath-Signature", "base64", [senders.UIPATH_SECRET])
    request = senders.uipath(body)
    assert verifier.verify(CIMultiDict(request.headers), body).scheme == "hmac-sha256-base64"
    if other != body:
        with pytest.raises(Unauthorized):
            verifier.verify(CIMultiDict(request.headers), other)


# --- CloudEvents -------------------------------------------------------------------------

RESERVED = {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"}
EVENTS = st.builds(
    CloudEvent,
    id=st.uuids().map(str),
    source=TEXT,
    type=st.from_regex(rf"{WORD}\.{WORD}\.{WORD}", fullmatch=True),
    time=TEXT,
    subject=st.none() | TEXT,
    extensions=st.dictionaries(
        st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True).filter(lambda k: k not in RESERVED),
        TEXT,
    ),
)


def _same_attributes(decoded: CloudEvent, event: CloudEvent) -> None:
    assert decoded.attributes() == event.attributes()
    assert (decoded.id, decoded.source, decoded.type, decoded.subject, decoded.time) == (
        event.id,
        event.source,
        event.type,
        event.subject,
        event.time,
    )


@FAST
@given(EVENTS, JSON, st.sampled_from([b"", b" ", b"\n", b" \r\n"]))
def test_an_event_with_raw_data_decodes_to_the_same_event(
    event: CloudEvent, data: Any, padding: bytes
) -> None:
    raw = padding + orjson.dumps(data) + padding
    decoded = decode(encode(event, raw))
    _same_attributes(decoded, event)
    assert decoded.data == data


@FAST
@given(EVENTS, JSON)
def test_an_event_with_data_decodes_to_the_same_event(event: CloudEvent, data: Any) -> None:
    event = CloudEvent(**{**event.__dict__, "data": data})
    decoded = decode(encode(event))
    _same_attributes(decoded, event)
    assert decoded.data == data


@FAST
@given(TEXT, st.none() | TEXT, st.binary(max_size=64), st.binary(max_size=64))
def test_an_event_id_is_a_stable_uuid5(
    origin: str, sender_id: str | None, body: bytes, other: bytes
) -> None:
    first = event_id(origin, sender_id, body)
    assert first == event_id(origin, sender_id, body)
    assert uuid.UUID(first).version == 5
    if sender_id is not None:
        assert event_id(origin, sender_id, other) == first
    elif other != body:
        assert event_id(origin, None, other) != first
