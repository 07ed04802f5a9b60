"""Per-run callback tokens (issue 9 item 17): made by the starter, checked by the receiver.

The expected tokens come from tests/senders.py, computed independently of the service.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service import callback_tokens
from service.automation import completion
from service.automation.starter import callback_for
from service.cloudevent import CloudEvent
from service.errors import MalformedEvent, Unauthorized
from service.receiver import sources
from service.settings import from_mapping
from service.vendors.runtoken import RunCallback, RunToken
from service.vendors.signatures import StandardWebhooks
from tests import senders

KEY = senders.CALLBACK_SIGNING_KEY
OLD_KEY = "an-older-callback-signing-key-rotated-out"
CID = "95fbeddd-abdf-4552-a82b-ce37c287735c"  # the fixtures' correlationId


def body(correlation_id: Any = CID, **extra: Any) -> bytes:
    return orjson.dumps({"runId": "r-1", "correlationId": correlation_id, **extra})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


# --- the token -------------------------------------------------------------------------------


def test_a_token_is_the_documented_hmac_of_vendor_and_correlation_id() -> None:
    token = callback_tokens.sign(KEY, "leapwork", CID)
    assert token == senders.run_token("leapwork", CID)
    assert len(token) == callback_tokens.TOKEN_CHARS
    assert callback_tokens.well_formed(token)


def test_tokens_differ_per_run_per_vendor_and_per_key() -> None:
    tokens = {
        callback_tokens.sign(KEY, "leapwork", CID),
        callback_tokens.sign(KEY, "leapwork", CID[:-1] + "d"),
        callback_tokens.sign(KEY, "workato", CID),
        callback_tokens.sign(OLD_KEY, "leapwork", CID),
    }
    assert len(tokens) == 4


def test_any_configured_key_verifies_so_keys_rotate() -> None:
    old = callback_tokens.sign(OLD_KEY, "leapwork", CID)
    assert callback_tokens.matches(old, [KEY, OLD_KEY], "leapwork", CID)
    assert not callback_tokens.matches(old, [KEY], "leapwork", CID)


@pytest.mark.parametrize("token", ["", "short", "\udcff" * 43, "é" * 43, "a" * 44, "a+/" * 14])
def test_a_token_that_cannot_be_one_is_not_matched_and_raises_nothing(token: str) -> None:
    assert not callback_tokens.well_formed(token)
    assert not callback_tokens.matches(token, [KEY], "leapwork", CID)


# --- the verifier ----------------------------------------------------------------------------


def test_the_runs_own_token_authenticates_its_callback() -> None:
    headers = {**bearer(senders.run_token("leapwork", CID)), "webhook-id": "msg-1"}
    credential = RunToken("leapwork", [KEY]).verify(headers, body())
    assert (credential.scheme, credential.message_id) == ("run-token", "msg-1")


@pytest.mark.parametrize(
    ("token", "why"),
    [
        (senders.run_token("leapwork", "another-run"), "another run's token"),
        (senders.run_token("workato", CID), "the same run id on another vendor"),
        (senders.run_token("leapwork", CID, key=OLD_KEY), "a key not configured"),
    ],
)
def test_a_token_of_anything_else_is_refused_with_401(token: str, why: str) -> None:
    with pytest.raises(Unauthorized, match="not the callback token of the body's run") as caught:
        RunToken("leapwork", [KEY]).verify(bearer(token), body())
    assert token not in str(caught.value), why


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "missing Authorization: Bearer"),
        ({"Authorization": "Basic abc"}, "missing Authorization: Bearer"),
        ({"Authorization": "Bearer "}, "missing Authorization: Bearer"),
        (bearer(senders.CALLBACK_TOKEN), "not a run's callback token"),  # the old static one
        (bearer("\udcff" * 43), "not a run's callback token"),  # bytes that are not UTF-8
    ],
)
def test_a_missing_or_shapeless_token_gets_401_before_the_body_is_read(
    headers: dict[str, str], detail: str
) -> None:
    with pytest.raises(Unauthorized, match=detail):
        RunToken("leapwork", [KEY]).verify(headers, b"not even json")


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (b"", "the body is empty"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (orjson.dumps({"runId": "r-1"}), "needs that run's 'correlationId'"),
        (body(correlation_id=""), "needs that run's 'correlationId'"),
        (body(correlation_id=42), "needs that run's 'correlationId'"),
    ],
)
def test_a_body_without_a_correlation_id_cannot_be_a_callback_400(
    payload: bytes, detail: str
) -> None:
    token = senders.run_token("leapwork", "")
    with pytest.raises(MalformedEvent, match=detail):
        RunToken("leapwork", [KEY]).verify(bearer(token), payload)


def test_reprs_and_refusals_hide_the_keys() -> None:
    verifier = RunCallback(StandardWebhooks([senders.WHSEC]), RunToken("leapwork", [KEY]))
    assert KEY not in repr(verifier) and senders.WHSEC not in repr(verifier)
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(bearer(senders.run_token("leapwork", "x")), body())
    assert KEY not in str(caught.value)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.binary(max_size=80))
def test_garbage_never_authenticates(token: str, payload: bytes) -> None:
    try:
        RunToken("leapwork", [KEY]).verify(bearer(token), payload)
    except (Unauthorized, MalformedEvent):
        return
    raise AssertionError("garbage was accepted")


class TestRunCallback:
    def auth(self, signed: bool = True, token: bool = True) -> RunCallback:
        return RunCallback(
            StandardWebhooks([senders.WHSEC]) if signed else None,
            RunToken("leapwork", [KEY]) if token else None,
        )

    def test_a_signed_callback_is_checked_by_its_signature(self) -> None:
        request = senders.leapwork()
        assert self.auth().verify(request.headers, request.body).scheme == "standard-webhooks"

    def test_an_unsigned_callback_is_checked_by_its_run_token(self) -> None:
        request = senders.bearer_callback("/callbacks/leapwork", body())
        assert self.auth().verify(request.headers, request.body).scheme == "run-token"

    def test_a_signature_without_a_secret_is_refused(self) -> None:
        request = senders.leapwork()
        with pytest.raises(Unauthorized, match="signed callbacks are not enabled"):
            self.auth(signed=False).verify(request.headers, request.body)

    def test_a_token_without_a_signing_key_is_refused(self) -> None:
        request = senders.bearer_callback("/callbacks/leapwork", body())
        with pytest.raises(Unauthorized, match="no callback signing key is configured"):
            self.auth(token=False).verify(request.headers, request.body)


# --- the sources and settings ------------------------------------------------------------------


def source(name: str, **tree: Any) -> sources.Source:
    built = sources.build(from_mapping({"sources": tree}).sources)
    return next(s for s in built if s.name == name)


@pytest.mark.parametrize("vendor", ["leapwork", "workato"])
def test_a_callback_source_opens_with_a_signing_key(vendor: str) -> None:
    assert source(vendor).verifier is None
    assert "CALLBACK_SIGNING_KEY" in source(vendor).enable_hint
    opened = source(vendor, callback_signing_keys=[KEY]).verifier
    assert isinstance(opened, RunCallback) and opened.token is not None
    assert opened.token.vendor == vendor


# --- the starter ---------------------------------------------------------------------------


def resources(**tree: Any) -> Any:
    base = {"automation": {"callback_base_url": "https://bridge.example.com/"}}
    return SimpleNamespace(settings=from_mapping({**base, **tree}))


@pytest.mark.parametrize("vendor", ["leapwork", "workato"])
def test_each_run_is_given_its_own_token(vendor: str) -> None:
    configured = resources(sources={"callback_signing_keys": [KEY, OLD_KEY]})
    url, token = callback_for(vendor, configured, CID)
    assert url == f"https://bridge.example.com/callbacks/{vendor}"
    assert token == senders.run_token(vendor, CID)  # signed with the first key
    assert callback_for(vendor, configured, "another-run")[1] != token


def test_robocorp_gets_its_webhook_secret_and_uipath_nothing() -> None:
    configured = resources(
        sources={"callback_signing_keys": [KEY], "robocorp": {"secrets": ["rc-secret"]}}
    )
    assert callback_for("robocorp", configured, CID)[1] == "rc-secret"
    assert callback_for("uipath", configured, CID) == (None, None)


def test_no_callback_is_asked_for_without_a_base_url_or_a_key() -> None:
    assert callback_for("leapwork", resources(), CID) == (None, None)
    keyed_no_base = SimpleNamespace(
        settings=from_mapping({"sources": {"callback_signing_keys": [KEY]}})
    )
    assert callback_for("leapwork", keyed_no_base, CID) == (None, None)


# --- the completion -----------------------------------------------------------------------


def event(kind: str, data: dict[str, Any]) -> CloudEvent:
    return CloudEvent(id="e-1", source=kind, type=kind, time="2026-11-20T10:20:00Z", data=data)


def test_a_leapwork_callback_names_its_run_by_correlation_id_only() -> None:
    """The token vouches for the correlation id: a runId of another run is not looked up."""
    keys, state = completion.parse(event("leapwork.run.finished", orjson.loads(body())))
    assert keys == (CID,)
    assert state.run_id == "r-1"
    keys, _ = completion.parse(event("leapwork.run.finished", {"runId": "r-1"}))
    assert keys == ("r-1",)  # a signed callback without a correlation id


def test_a_workato_callback_names_its_run_by_correlation_id_only() -> None:
    data = {"status": "completed", "jobId": "j-1", "correlationId": CID}
    assert completion.parse(event("workato.job.completed", data))[0] == (CID,)
    data = {"status": "completed", "jobId": "j-1"}
    assert completion.parse(event("workato.job.completed", data))[0] == ("j-1",)
