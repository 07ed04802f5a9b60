"""PULL answers read tolerantly (LeanIX documents the envelope, not every case), and the
[leanix_pull] settings validated."""

from __future__ import annotations

import pytest

from service.clients.leanix_webhooks import Batch, Pulled, batch_of
from service.errors import ConfigError, VendorUnavailable
from service.settings import from_mapping


def test_a_batch_commits_next_cursor_and_keeps_each_event_as_sent() -> None:
    answer = {
        "status": "OK",
        "data": {
            "events": [{"cursor": {"offset": 7}, "event": '{"id": 1}'}],
            "nextCursor": {"offset": 8},
        },
    }
    assert batch_of(answer) == Batch((Pulled(7, b'{"id": 1}'),), 8)


@pytest.mark.parametrize(
    "answer", [None, {}, {"data": None}, {"data": {"events": []}}, {"data": {"events": "x"}}]
)
def test_an_answer_without_events_is_an_empty_batch_with_nothing_to_commit(answer: object) -> None:
    assert batch_of(answer) == Batch((), None)


def test_without_next_cursor_the_commit_goes_past_the_last_event() -> None:
    answer = {"data": {"events": [{"cursor": {"offset": 3}, "event": {"id": 2}}]}}
    assert batch_of(answer) == Batch((Pulled(3, b'{"id":2}'),), 4)


def test_an_answer_that_is_no_object_is_retried_later() -> None:
    with pytest.raises(VendorUnavailable):
        batch_of(["not", "an", "envelope"])


@pytest.mark.parametrize(
    ("key", "value"), [("timeout_s", 0), ("timeout_s", 61), ("batch_size", 0), ("lease_s", 0.5)]
)
def test_wrong_pull_settings_stop_start_up_naming_the_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"leanix_pull.{key}"):
        from_mapping({"leanix_pull": {key: value}})
