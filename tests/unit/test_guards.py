"""The loop guard's reading of who caused a LeanIX event, of who we are, and of its order."""

from __future__ import annotations

import base64
import dataclasses
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from service.automation.guards import (
    event_user_ids,
    own_user_ids,
    sequence_number,
    user_id_text,
)
from service.clients.leanix import jwt_user_ids
from service.resources import Resources
from service.settings import ClientsSettings, LeanixApi, Settings
from service.simulators.leanix_webhook import delivery
from tests.senders import FIXTURES

SUB = "5b2f3c1e-7d4a-4e0b-9c61-2a8f0d3e4b71"
PRINCIPAL = "0c4e5a1f-2b3d-4e6f-8a9b-1c2d3e4f5a6b"


def token(claims: dict[str, Any]) -> str:
    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(doc)).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256'})}.{part(claims)}.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"userId": SUB, "factSheet": {}}, {SUB}),  # DEFAULT
        ({"userId": SUB, "payload": {"userId": SUB}}, {SUB}),  # WRAPPED_EVENT
        ({"payload": {"userId": SUB}}, {SUB}),  # WRAPPED_EVENT, no envelope userId
        ({"userId": None, "payload": {"userId": SUB}}, {SUB}),  # ...or a null one
        ({"userId": SUB.upper()}, {SUB}),  # case does not matter
        ({"userId": 4711}, {"4711"}),  # a number is an id too
        ({"userId": "a", "payload": {"userId": "b"}}, {"a", "b"}),  # both are looked at
        ({"userId": True, "payload": ["not", "a", "mapping"]}, set()),
        ({"userId": "  ", "payload": {"userId": {"id": SUB}}}, set()),
        ({}, set()),
    ],
)
def test_the_actor_is_read_from_every_documented_place(
    data: dict[str, Any], expected: set[str]
) -> None:
    assert event_user_ids(data) == expected


def test_user_id_text_takes_strings_and_integers_only() -> None:
    assert user_id_text(" abc ") == "abc"
    assert user_id_text(12) == "12"
    assert [user_id_text(v) for v in (False, None, 1.5, [], "")] == [None] * 5


def test_a_token_names_us_by_sub_and_by_principal_id() -> None:
    claims = {"sub": SUB, "principal": {"id": PRINCIPAL, "permission": {}}}
    assert jwt_user_ids(token(claims)) == (SUB, PRINCIPAL)
    assert jwt_user_ids(token({"sub": SUB, "principal": {"id": SUB}})) == (SUB,)
    assert jwt_user_ids(token({"principal": "junk", "sub": 7})) == ()
    assert jwt_user_ids("not-a-jwt") == ()


def test_our_ids_are_the_tokens_and_the_configured_ones() -> None:
    leanix: Any = SimpleNamespace(own_user_ids=frozenset({SUB, PRINCIPAL.upper()}))
    settings = Settings(clients=ClientsSettings(leanix=LeanixApi(ignore_user_ids=("X",))))
    resources = Resources(settings, None, None, None, leanix)  # type: ignore[arg-type]
    assert own_user_ids(resources) == {SUB, PRINCIPAL, "x"}
    resources = dataclasses.replace(resources, leanix=None)
    assert own_user_ids(resources) == {"x"}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"transactionSequenceNumber": 75086}, 75086),  # DEFAULT
        ({"payload": {"transactionSequenceNumber": 75090}, "sequenceInfo": 75090}, 75090),
        ({"payload": {"transactionSequenceNumber": 7}, "sequenceInfo": 9}, 7),  # documented first
        ({"payload": {"id": 1}, "sequenceInfo": 75090}, 75090),  # WRAPPED_EVENT's integer
        ({"payload": {"id": 1}, "sequenceInfo": None}, None),  # nullable in the model
        ({"sequenceInfo": {"transactionSequenceNumber": 5}}, None),  # not the model's shape
        ({"sequenceInfo": True, "transactionSequenceNumber": "5"}, None),
        ({"payload": ["not", "a", "mapping"], "sequenceInfo": 3}, 3),
        ({}, None),
    ],
)
def test_the_sequence_number_is_read_as_leanix_models_it(
    data: dict[str, Any], expected: int | None
) -> None:
    assert sequence_number(data) == expected


def test_the_wrapped_fixture_and_the_simulators_envelope_give_the_payloads_number() -> None:
    wrapped = orjson.loads((FIXTURES / "leanix-wrapped.json").read_bytes())
    assert isinstance(wrapped["sequenceInfo"], int)
    assert sequence_number(wrapped) == wrapped["payload"]["transactionSequenceNumber"]
    event = {**wrapped["payload"], "transactionSequenceNumber": 24991511}
    assert sequence_number(delivery(event, "WRAPPED_EVENT")) == 24991511
