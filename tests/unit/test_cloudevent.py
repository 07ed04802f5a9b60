"""CloudEvents 1.0 structured mode: stable ids, byte-exact data."""

from __future__ import annotations

import orjson
import pytest

from service.cloudevent import CloudEvent, decode, encode, event_id


def sample(**overrides: object) -> CloudEvent:
    fields: dict[str, object] = {
        "id": "e-1",
        "source": "leanix:ws",
        "type": "leanix.factsheet.updated",
        "time": "2024-01-01T00:00:00Z",
        "subject": "fs-1",
        "extensions": {"receivedat": "2024-01-01T00:00:01Z", "authsource": "leanix/x"},
    }
    fields.update(overrides)
    return CloudEvent(**fields)  # type: ignore[arg-type]


def test_the_same_sender_event_gets_the_same_id() -> None:
    assert event_id("leanix", "ws/1", b"a") == event_id("leanix", "ws/1", b"b")
    assert event_id("leanix", "ws/1", b"a") != event_id("leanix", "ws/2", b"a")
    assert event_id("leanix", "1", b"a") != event_id("uipath", "1", b"a")


def test_without_a_sender_id_the_body_decides() -> None:
    assert event_id("leanix", None, b"a") == event_id("leanix", None, b"a")
    assert event_id("leanix", None, b"a") != event_id("leanix", None, b"b")


def test_encode_splices_the_raw_body_unchanged() -> None:
    raw = b'{"b": 1,   "a": [1.50, "\\u00e9"]}'
    encoded = encode(sample(), raw)
    assert encoded.endswith(b',"data":' + raw + b"}")
    doc = orjson.loads(encoded)
    assert doc["specversion"] == "1.0"
    assert doc["datacontenttype"] == "application/json"
    assert doc["data"] == {"b": 1, "a": [1.5, "é"]}
    assert doc["receivedat"] == "2024-01-01T00:00:01Z"


def test_round_trip() -> None:
    event = decode(encode(sample(), b'{"x": 1}'))
    assert event.id == "e-1"
    assert event.type == "leanix.factsheet.updated"
    assert event.routing_key == "leanix.factsheet.updated"
    assert event.subject == "fs-1"
    assert event.data == {"x": 1}
    assert event.extensions == {"receivedat": "2024-01-01T00:00:01Z", "authsource": "leanix/x"}


def test_encode_without_raw_data() -> None:
    assert decode(encode(sample(data={"y": 2}))).data == {"y": 2}


@pytest.mark.parametrize(
    "body",
    [b"[]", b'{"specversion": "0.3", "id": "x"}', b'{"specversion": "1.0", "id": "x"}', b"nope"],
)
def test_decode_rejects_what_is_not_a_cloudevent(body: bytes) -> None:
    with pytest.raises(ValueError):
        decode(body)


def test_ids_are_rfc4122_uuid5s() -> None:
    import uuid

    from service.cloudevent import _NAMESPACE

    for key in ("ws/1", "é/漢字", "x" * 500):
        assert event_id("leanix", key, b"") == str(uuid.uuid5(_NAMESPACE, f"leanix/{key}"))
