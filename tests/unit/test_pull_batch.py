"""PULL answers read tolerantly (LeanIX documents the envelope, not every case), the PULL
subscription found by its identifier, one puller a workspace, and the [leanix_pull] and
[reconcile] settings validated."""

from __future__ import annotations

import pytest

from service.clients.leanix_webhooks import Batch, Pulled, batch_of, pull_subscription_id
from service.errors import ConfigError, VendorRejected, VendorUnavailable
from service.pull import start as pulling
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


def test_the_pull_subscription_is_the_one_named_by_its_identifier() -> None:
    answer = {"data": [
        {"id": "s-other", "identifier": "someone-else", "deliveryType": "PULL"},
        {"id": "s-ours", "identifier": "leanix-bridge", "deliveryType": "PULL"},
    ]}  # fmt: skip
    assert pull_subscription_id(answer, "leanix-bridge") == "s-ours"


@pytest.mark.parametrize(
    ("items", "told"),
    [
        ([], "does not exist"),
        ([{"id": "s-1", "identifier": "leanix-bridge", "deliveryType": "PUSH"}], "is a PUSH"),
    ],
)
def test_a_missing_or_push_subscription_tells_how_to_make_it(
    items: list[object], told: str
) -> None:
    with pytest.raises(VendorRejected, match=f"{told}.*subscriptions apply"):
        pull_subscription_id({"data": items}, "leanix-bridge")


@pytest.mark.parametrize("answer", [None, [], {"data": {"id": "s-1"}}, {"status": "OK"}])
def test_a_subscriptions_answer_without_its_list_is_retried_later(answer: object) -> None:
    with pytest.raises(VendorUnavailable):
        pull_subscription_id(answer, "leanix-bridge")


def test_pull_is_on_with_pull_delivery_or_a_configured_id_and_one_puller_a_workspace() -> None:
    assert not pulling.wanted(from_mapping({}))
    assert pulling.wanted(from_mapping({"subscriptions": {"leanix_delivery": "PULL"}}))
    assert pulling.wanted(from_mapping({"leanix_pull": {"subscription_id": "s-1"}}))
    workspaces = [
        {"name": "prod", "id": "w-1", "api_token": "t-1", "pull_subscription_id": "s-1"},
        {"name": "sandbox", "id": "w-2", "api_token": "t-2"},
    ]
    settings = from_mapping({"leanix": {"workspaces": workspaces}})
    assert pulling.wanted(settings)  # one workspace names its subscription
    pulled = [subscription for _, subscription in pulling.subscriptions(settings)]
    assert [(s.workspace, s.id, s.source) for s in pulled] == [
        ("prod", "s-1", "leanix:w-1"),
        ("sandbox", "", "leanix:w-2"),  # found by its identifier
    ]
    assert pulled[0].lease != pulled[1].lease


def test_one_subscription_id_for_several_workspaces_is_refused() -> None:
    workspaces = [{"name": "prod", "id": "w-1"}, {"name": "sandbox", "id": "w-2"}]
    with pytest.raises(ConfigError, match="pull_subscription_id"):
        from_mapping(
            {"leanix": {"workspaces": workspaces}, "leanix_pull": {"subscription_id": "s"}}
        )


def test_pull_without_a_subscription_or_a_token_names_what_to_set() -> None:
    with pytest.raises(ConfigError, match="leanix_delivery.*leanix_pull.subscription_id"):
        pulling.require(from_mapping({}))
    with pytest.raises(ConfigError, match="clients.leanix.api_token"):
        pulling.require(from_mapping({"subscriptions": {"leanix_delivery": "PULL"}}))


@pytest.mark.parametrize(
    ("interval", "margin", "key"),
    [("soon", "5m", "reconcile.interval"), ("0m", "5m", "reconcile.interval"),
     ("15m", "", "reconcile.margin"), ("15m", "5 minutes", "reconcile.margin")],
)  # fmt: skip
def test_wrong_reconcile_durations_stop_start_up_naming_the_key(
    interval: str, margin: str, key: str
) -> None:
    with pytest.raises(ConfigError, match=key):
        from_mapping({"reconcile": {"interval": interval, "margin": margin}})


def test_reconcile_is_off_unless_an_interval_is_set() -> None:
    assert from_mapping({}).reconcile.interval_s is None
    scheduled = from_mapping({"reconcile": {"interval": "15m"}}).reconcile
    assert (scheduled.interval_s, scheduled.margin_s) == (900.0, 300.0)
