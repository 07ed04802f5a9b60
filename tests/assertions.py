"""Assertions shared by the test tiers."""

from __future__ import annotations

from typing import Any

import orjson


def assert_problem(
    status: int, content_type: str, body: bytes, expected_status: int
) -> dict[str, Any]:
    """An RFC 9457 problem+json answer with the expected status and a useful detail."""
    assert status == expected_status, body
    assert content_type == "application/problem+json"
    doc: dict[str, Any] = orjson.loads(body)
    assert doc["status"] == expected_status
    assert doc["title"]
    assert len(doc["detail"]) > 10
    return doc


def assert_cloudevent(doc: dict[str, Any], *, type: str, data: Any, subject: str | None) -> None:
    """A structured-mode CloudEvent carrying the sender's payload unchanged."""
    assert doc["specversion"] == "1.0"
    assert doc["type"] == type
    assert doc["subject"] == subject
    assert doc["datacontenttype"] == "application/json"
    assert doc["data"] == data
    assert doc["source"].split(":")[0] == type.split(".")[0]
    assert doc["receivedat"].endswith("Z")
    assert doc["authsource"].startswith(type.split(".")[0] + "/")
    assert doc["time"]
