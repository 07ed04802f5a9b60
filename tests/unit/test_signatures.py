"""Verifiers against each platform's documented scheme, on raw bytes."""

from __future__ import annotations

import base64

import pytest

from service.errors import Unauthorized
from service.vendors.runtoken import RunCallback, RunToken
from service.vendors.signatures import (
    BodyHmac,
    StandardWebhooks,
    StaticAuthorization,
    sign_standard,
)
from tests import senders

# The published Standard Webhooks test vector (libraries/python/tests/test_webhooks.py).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def standard(secrets: list[str], now: float = VECTOR_TS, tolerance: int = 300) -> StandardWebhooks:
    return StandardWebhooks(secrets, tolerance, clock=lambda: now)


def vector_headers(signature: str = VECTOR_SIGNATURE, ts: int = VECTOR_TS) -> dict[str, str]:
    return {"webhook-id": VECTOR_ID, "webhook-timestamp": str(ts), "webhook-signature": signature}


class TestStandardWebhooks:
    def test_signs_the_published_vector(self) -> None:
        assert sign_standard(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIGNATURE

    def test_accepts_the_published_vector_and_returns_the_message_id(self) -> None:
        credential = standard([VECTOR_SECRET]).verify(vector_headers(), VECTOR_BODY)
        assert credential.scheme == "standard-webhooks"
        assert credential.message_id == VECTOR_ID

    def test_accepts_a_secret_without_the_whsec_prefix(self) -> None:
        secret = VECTOR_SECRET.removeprefix("whsec_")
        standard([secret]).verify(vector_headers(), VECTOR_BODY)

    @pytest.mark.parametrize(
        "body",
        [b'{"test": 2432232315}', b'{"test":2432232314}', VECTOR_BODY + b" ", b""],
        ids=["changed-value", "reserialised", "trailing-space", "empty"],
    )
    def test_rejects_a_tampered_body(self, body: bytes) -> None:
        with pytest.raises(Unauthorized, match="no webhook-signature matches"):
            standard([VECTOR_SECRET]).verify(vector_headers(), body)

    def test_rejects_a_flipped_signature_character(self) -> None:
        flipped = VECTOR_SIGNATURE[:-2] + ("A" if VECTOR_SIGNATURE[-2] != "A" else "B") + "="
        with pytest.raises(Unauthorized):
            standard([VECTOR_SECRET]).verify(vector_headers(flipped), VECTOR_BODY)

    def test_rejects_a_signature_for_another_id(self) -> None:
        headers = {**vector_headers(), "webhook-id": "msg_other"}
        with pytest.raises(Unauthorized):
            standard([VECTOR_SECRET]).verify(headers, VECTOR_BODY)

    @pytest.mark.parametrize("offset", [-301, 301])
    def test_rejects_timestamps_outside_the_tolerance(self, offset: int) -> None:
        verifier = standard([VECTOR_SECRET], now=VECTOR_TS - offset)
        with pytest.raises(Unauthorized, match="too old|too far in the future"):
            verifier.verify(vector_headers(), VECTOR_BODY)

    @pytest.mark.parametrize("offset", [-300, 0, 300])
    def test_accepts_timestamps_at_the_tolerance(self, offset: int) -> None:
        standard([VECTOR_SECRET], now=VECTOR_TS - offset).verify(vector_headers(), VECTOR_BODY)

    def test_stale_message_is_rejected_even_when_the_signature_is_right(self) -> None:
        with pytest.raises(Unauthorized, match="too old"):
            standard([VECTOR_SECRET], now=VECTOR_TS + 3600).verify(vector_headers(), VECTOR_BODY)

    @pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
    def test_requires_all_three_headers(self, missing: str) -> None:
        headers = vector_headers()
        del headers[missing]
        with pytest.raises(Unauthorized, match=missing):
            standard([VECTOR_SECRET]).verify(headers, VECTOR_BODY)

    @pytest.mark.parametrize("ts", ["abc", "1614265330.5", "-1614265330", "١٢٣"])
    def test_rejects_a_non_integer_timestamp(self, ts: str) -> None:
        headers = {**vector_headers(), "webhook-timestamp": ts}
        with pytest.raises(Unauthorized, match="integer"):
            standard([VECTOR_SECRET]).verify(headers, VECTOR_BODY)

    def test_accepts_one_valid_signature_among_several(self) -> None:
        header = f"v1,Zm9vYmFy v2,ignored {VECTOR_SIGNATURE} v1a,bm9wZQ=="
        standard([VECTOR_SECRET]).verify(vector_headers(header), VECTOR_BODY)

    def test_ignores_other_signature_versions(self) -> None:
        header = VECTOR_SIGNATURE.replace("v1,", "v2,")
        with pytest.raises(Unauthorized):
            standard([VECTOR_SECRET]).verify(vector_headers(header), VECTOR_BODY)

    def test_rotated_secrets_both_verify(self) -> None:
        verifier = standard([senders.WHSEC_OLD, VECTOR_SECRET])
        verifier.verify(vector_headers(), VECTOR_BODY)
        old = sign_standard(senders.WHSEC_OLD, VECTOR_ID, VECTOR_TS, VECTOR_BODY)
        verifier.verify(vector_headers(old), VECTOR_BODY)

    def test_a_removed_secret_no_longer_verifies(self) -> None:
        old = sign_standard(senders.WHSEC_OLD, VECTOR_ID, VECTOR_TS, VECTOR_BODY)
        with pytest.raises(Unauthorized):
            standard([VECTOR_SECRET]).verify(vector_headers(old), VECTOR_BODY)


class TestBodyHmac:
    def test_uipath_base64_signature(self) -> None:
        request = senders.uipath()
        verifier = BodyHmac("X-UiPath-Signature", "base64", [senders.UIPATH_SECRET])
        assert verifier.verify(request.headers, request.body).scheme == "hmac-sha256-base64"

    def test_robocorp_hex_signature_in_either_case(self) -> None:
        request = senders.robocorp()
        verifier = BodyHmac("x-rc-signature", "hex", [senders.ROBOCORP_SECRET])
        verifier.verify(request.headers, request.body)
        upper = {"x-rc-signature": request.headers["x-rc-signature"].upper()}
        verifier.verify(upper, request.body)

    def test_rejects_a_tampered_body(self) -> None:
        request = senders.uipath()
        verifier = BodyHmac("X-UiPath-Signature", "base64", [senders.UIPATH_SECRET])
        with pytest.raises(Unauthorized, match="does not match"):
            verifier.verify(request.headers, request.body.replace(b"Successful", b"Faulted"))

    def test_rejects_the_wrong_secret_and_a_missing_header(self) -> None:
        request = senders.uipath(secret="someone-else")
        verifier = BodyHmac("X-UiPath-Signature", "base64", [senders.UIPATH_SECRET])
        with pytest.raises(Unauthorized):
            verifier.verify(request.headers, request.body)
        with pytest.raises(Unauthorized, match="missing X-UiPath-Signature"):
            verifier.verify({}, request.body)

    def test_rotated_secrets(self) -> None:
        verifier = BodyHmac("x-rc-signature", "hex", ["old-secret", senders.ROBOCORP_SECRET])
        for secret in ("old-secret", senders.ROBOCORP_SECRET):
            request = senders.robocorp(secret=secret)
            verifier.verify(request.headers, request.body)

    def test_a_hex_signature_is_not_accepted_for_base64(self) -> None:
        hex_request = senders.robocorp(body=b"{}", secret="s")
        verifier = BodyHmac("x-rc-signature", "base64", ["s"])
        with pytest.raises(Unauthorized):
            verifier.verify(hex_request.headers, b"{}")


class TestStaticAuthorization:
    def test_accepts_any_configured_value(self) -> None:
        verifier = StaticAuthorization([senders.LEANIX_AUTH_OLD, senders.LEANIX_AUTH])
        for value in (senders.LEANIX_AUTH, senders.LEANIX_AUTH_OLD):
            verifier.verify({"Authorization": value}, b"{}")

    @pytest.mark.parametrize("value", ["", "Basic wrong", senders.LEANIX_AUTH + "x", "basic"])
    def test_rejects_other_values(self, value: str) -> None:
        with pytest.raises(Unauthorized):
            StaticAuthorization([senders.LEANIX_AUTH]).verify({"Authorization": value}, b"{}")


def test_reprs_hide_secrets() -> None:
    verifiers = [
        StaticAuthorization([senders.LEANIX_AUTH]),
        BodyHmac("X-UiPath-Signature", "base64", [senders.UIPATH_SECRET]),
        StandardWebhooks([senders.WHSEC]),
        RunToken("workato", [senders.CALLBACK_SIGNING_KEY]),
        RunCallback(
            StandardWebhooks([senders.WHSEC]), RunToken("leapwork", [senders.CALLBACK_SIGNING_KEY])
        ),
    ]
    for verifier in verifiers:
        for secret in senders.ALL_SECRETS:
            assert secret not in repr(verifier)


class TestCheckBeforeTheBody:
    """`check(headers)` refuses what the headers alone show cannot be authentic."""

    def test_a_static_authorization_is_compared_in_full(self) -> None:
        verifier = StaticAuthorization([senders.LEANIX_AUTH])
        verifier.check({"Authorization": senders.LEANIX_AUTH})
        with pytest.raises(Unauthorized, match="not an accepted value"):
            verifier.check({"Authorization": senders.LEANIX_AUTH + "x"})

    @pytest.mark.parametrize("padding", ["\xa0", "\u2003", "\u3000", "\x85"], ids=repr)
    def test_unicode_whitespace_is_part_of_the_value(self, padding: str) -> None:
        """Only HTTP's own optional whitespace (space, tab) is not part of a field value."""
        for verifier, header, value in (
            (StaticAuthorization([senders.LEANIX_AUTH]), "Authorization", senders.LEANIX_AUTH),
            (
                RunToken("workato", [senders.CALLBACK_SIGNING_KEY]),
                "Authorization",
                f"Bearer {senders.run_token('workato', 'c-1')}",
            ),
        ):
            verifier.check({header: f" \t{value}\t "})
            for sent in (padding, padding + value, value + padding):
                with pytest.raises(Unauthorized):
                    verifier.check({header: sent})

    @pytest.mark.parametrize(
        ("encoding", "signature"),
        [
            ("base64", "Zm9vYmFy"),  # base64, but not of 32 bytes
            ("base64", "A" * 43 + "\xa0"),
            ("base64", "a" * 64),  # hex where base64 is due
            ("hex", "g" * 64),
            ("hex", "a" * 63),
            ("hex", base64.b64encode(b"x" * 32).decode()),
        ],
    )
    def test_a_signature_not_of_the_form_of_one_is_refused_unread(
        self, encoding: str, signature: str
    ) -> None:
        verifier = BodyHmac("X-Sig", encoding, ["secret"])
        with pytest.raises(Unauthorized, match="is not a .* HMAC-SHA256 signature"):
            verifier.check({"X-Sig": signature})

    def test_a_signature_of_the_right_form_passes_the_check_whatever_the_body(self) -> None:
        request = senders.uipath(secret="someone-else")
        verifier = BodyHmac("X-UiPath-Signature", "base64", [senders.UIPATH_SECRET])
        verifier.check(request.headers)  # the body decides, once read
        with pytest.raises(Unauthorized, match="does not match the body"):
            verifier.verify(request.headers, request.body)

    def test_standard_webhooks_timestamp_and_form_are_checked_unread(self) -> None:
        stale = standard([VECTOR_SECRET], now=VECTOR_TS + 3600)
        with pytest.raises(Unauthorized, match="too old"):
            stale.check(vector_headers())
        with pytest.raises(Unauthorized, match="no v1"):
            standard([VECTOR_SECRET]).check(vector_headers("v1,Zm9vYmFy v2,x"))
        standard([VECTOR_SECRET]).check(vector_headers())

    def test_a_run_callback_checks_the_token_shape_before_the_body(self) -> None:
        auth = RunCallback(
            StandardWebhooks([senders.WHSEC]),
            RunToken("workato", [senders.CALLBACK_SIGNING_KEY]),
        )
        body = b'{"correlationId": "c-1", "status": "completed"}'
        auth.check(senders.bearer_callback("/callbacks/workato", body).headers)
        with pytest.raises(Unauthorized, match="not a run's callback token"):
            auth.check(senders.bearer_callback("/callbacks/workato", body, token="x").headers)
        nbsp = {"Authorization": "Bearer\xa0" + senders.run_token("workato", "c-1")}
        with pytest.raises(Unauthorized):
            auth.check(nbsp)
        with pytest.raises(Unauthorized, match="too old"):
            auth.check(senders.leapwork(timestamp=1_600_000_000).headers)
