"""Each source's payloads -> the facts of its CloudEvent."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from service.errors import MalformedEvent
from service.vendors import normalise
from service.vendors.leapwork import callback as leapwork
from service.vendors.robocorp import callback as robocorp
from service.vendors.uipath import callback as uipath
from service.vendors.workato import callback as workato
from tests.senders import fixture


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(fixture(name))
    return doc


class TestLeanix:
    def test_default_payload(self) -> None:
        facts = normalise.leanix(load("leanix-factsheet-created.json"))
        assert facts.type == "leanix.factsheet.created"
        assert facts.source == "leanix:ae6756f1-4aag-4356-92c6-a390a60cb8fg"
        assert facts.subject == "95fbeddd-abdf-4552-a82b-ce37c287735c"
        assert facts.time == "2024-02-16T13:12:27.032622Z"
        assert facts.sender_id == "ae6756f1-4aag-4356-92c6-a390a60cb8fg/42834"

    def test_updated_payload_from_a_real_fixture(self) -> None:
        facts = normalise.leanix(load("leanix-factsheet-updated.json"))
        assert facts.type == "leanix.factsheet.updated"
        assert facts.subject == "06ee9782-1952-4a59-848b-5e009a7e43c5"

    def test_wrapped_event(self) -> None:
        facts = normalise.leanix(load("leanix-wrapped.json"))
        assert facts.type == "leanix.factsheet.archived"
        assert facts.subject == "95fbeddd-abdf-4552-a82b-ce37c287735c"
        assert facts.sender_id == "ae6756f1-4aag-4356-92c6-a390a60cb8fg/99120"
        assert facts.time == "2024-03-01T08:00:00.000Z"

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("FactSheetDeletedEvent", "leanix.factsheet.deleted"),
            ("RelationCreatedEvent", "leanix.relation.created"),
            ("RELATION_SWITCH", "leanix.relation.switch"),
            ("FACT_SHEET_TAG_ADDED", "leanix.factsheet_tag.added"),
            ("FactSheetFieldUpdatedEvent", "leanix.factsheet_field.updated"),
            ("INTEGRATION_RUN_FINISHED", "leanix.integration_run.finished"),
            ("AUTOMATION_TRIGGERED", "leanix.automation.triggered"),
        ],
    )
    def test_event_type_names(self, raw: str, expected: str) -> None:
        assert normalise.leanix({"id": 1, "type": raw}).type == expected

    def test_body_reshaped_by_a_callback_script(self) -> None:
        facts = normalise.leanix(load("leanix-callback-reshaped.json"))
        assert facts.type == "leanix.callback.received"
        assert facts.subject == "cb943942-39fd-4b45-8909-916b99c1286a"
        assert facts.sender_id is None  # the id is then derived from the body's hash

    def test_minimal_event_without_optional_fields(self) -> None:
        facts = normalise.leanix({"type": "FactSheetUpdatedEvent"})
        assert facts.type == "leanix.factsheet.updated"
        assert facts.source == "leanix"
        assert facts.subject is None
        assert facts.sender_id is None

    @pytest.mark.parametrize(
        ("payload", "message"),
        [
            ({}, "empty LeanIX event"),
            ({"type": 5}, "'type' must be a string"),
            ({"type": "FactSheetUpdatedEvent", "id": True}, "'id' must be a string or int"),
            ({"type": "FactSheetUpdatedEvent", "factSheet": "x"}, "'factSheet' must be a dict"),
            ({"type": "FactSheetUpdatedEvent", "workspaceId": 7}, "'workspaceId' must be a string"),
        ],
    )
    def test_rejects_what_cannot_be_an_event(self, payload: dict[str, Any], message: str) -> None:
        with pytest.raises(MalformedEvent, match=message):
            normalise.leanix(payload)


class TestUipath:
    def test_job_completed(self) -> None:
        facts = uipath.normalise(load("uipath-job-completed.json"))
        assert facts.type == "uipath.job.completed"
        assert facts.subject == "148712"
        assert facts.sender_id == "15412ff77dce4d489fc32c273862839b"
        assert facts.source == "uipath:1"
        assert facts.time == "2018-11-26T14:37:26.3231812Z"

    def test_job_stopped_carries_a_jobs_array(self) -> None:
        facts = uipath.normalise(load("uipath-job-stopped.json"))
        assert (facts.type, facts.subject) == ("uipath.job.stopped", "148713")

    def test_camel_case_entities_become_snake_case(self) -> None:
        facts = uipath.normalise({"Type": "queueItem.transactionCompleted", "EventId": "e"})
        assert facts.type == "uipath.queue_item.transaction_completed"

    @pytest.mark.parametrize("payload", [{}, {"Type": "job"}, {"Type": 3}])
    def test_rejects_a_missing_or_bad_type(self, payload: dict[str, Any]) -> None:
        with pytest.raises(MalformedEvent):
            uipath.normalise(payload)


class TestRobocorp:
    def test_webhook_envelope(self) -> None:
        facts = robocorp.normalise(load("robocorp-process-run-completed.json"))
        assert facts.type == "robocorp.process_run.completed"
        assert facts.subject == "run-8f2e"
        assert facts.sender_id == "9a6c1f0e-5b7d-4c3a-8e2f-1d0c9b8a7f65"
        assert facts.source == "robocorp:ws-7c1d"

    @pytest.mark.parametrize(
        ("payload", "kind", "subject"),
        [
            ({"event": "unresolved", "process_run": {"id": "r1"}}, "process_run.unresolved", "r1"),
            ({"type": "process_run.started", "runId": "r2"}, "process_run.started", "r2"),
            ({"state": "completed", "run_id": "r3"}, "process_run.completed", "r3"),
            ({"event": 7, "type": "process_run.completed", "runId": "r4"},
             "process_run.completed", "r4"),
        ],
    )  # fmt: skip
    def test_tolerates_unconfirmed_shapes(
        self, payload: dict[str, Any], kind: str, subject: str
    ) -> None:
        facts = robocorp.normalise(payload)
        assert (facts.type, facts.subject) == (f"robocorp.{kind}", subject)

    @pytest.mark.parametrize(
        ("stamp", "time"),
        [
            ("2026-11-22T10:00:00Z", "2026-11-22T10:00:00Z"),
            (1795341600, "2026-11-22T10:00:00.000Z"),  # epoch seconds
            (1795341600123, "2026-11-22T10:00:00.123Z"),  # epoch milliseconds
            ({"at": 1}, None),  # not a time: as if absent
            (10**30, None),
        ],
    )
    def test_a_timestamp_may_be_text_or_epoch_seconds_or_milliseconds(
        self, stamp: Any, time: str | None
    ) -> None:
        facts = robocorp.normalise(
            {"event": "process_run.completed", "webhookEventTimestamp": stamp}
        )
        assert facts.time == time

    def test_rejects_a_body_without_an_event(self) -> None:
        with pytest.raises(MalformedEvent, match="needs an 'event'"):
            robocorp.normalise({"id": "x"})
        with pytest.raises(MalformedEvent, match="needs an 'event'"):
            robocorp.normalise({"event": ["process_run.completed"]})


class TestCallbacks:
    def test_leapwork(self) -> None:
        facts = leapwork.normalise(load("leapwork-run-finished.json"))
        assert facts.type == "leapwork.run.finished"
        assert facts.subject == "da6845b3-8c1f-4f9e-9a0d-2b7c6e5f4a31"

    def test_leapwork_needs_a_run_id(self) -> None:
        with pytest.raises(MalformedEvent, match="runId"):
            leapwork.normalise({"status": "Finished"})

    @pytest.mark.parametrize(
        ("status", "kind"),
        [("completed", "completed"), ("succeeded", "completed"), ("FAILED", "failed")],
    )
    def test_workato_status(self, status: str, kind: str) -> None:
        facts = workato.normalise({"status": status, "jobId": "j-1"})
        assert (facts.type, facts.subject) == (f"workato.job.{kind}", "j-1")

    def test_workato_subject_falls_back_to_the_correlation_id(self) -> None:
        assert workato.normalise({"status": "failed", "correlationId": "c-1"}).subject == "c-1"

    @pytest.mark.parametrize(
        "payload", [{"jobId": "j"}, {"status": "done", "jobId": "j"}, {"status": "failed"}]
    )
    def test_workato_rejects_incomplete_callbacks(self, payload: dict[str, Any]) -> None:
        with pytest.raises(MalformedEvent):
            workato.normalise(payload)


class TestWhatASenderCanMakeUsKeep:
    @pytest.mark.parametrize(
        ("normalise_payload", "payload"),
        [
            (normalise.leanix, {"type": "Fact" + "Sheet" * 60 + "UpdatedEvent", "id": 1}),
            (normalise.leanix, {"type": "é" * 128}),  # 128 characters, 256 bytes
            (uipath.normalise, {"Type": "job." + "x" * 252}),
            (robocorp.normalise, {"event": "process_run." + "x" * 245}),
            (robocorp.normalise, {"state": "x" * 256}),
        ],
        ids=["leanix", "leanix-multibyte", "uipath", "robocorp", "robocorp-state"],
    )
    def test_a_type_longer_than_a_routing_key_is_refused(
        self, normalise_payload: Any, payload: dict[str, Any]
    ) -> None:
        with pytest.raises(MalformedEvent, match="longer than 255 bytes"):
            normalise_payload(payload)

    def test_a_type_of_255_bytes_is_not_refused_for_its_length(self) -> None:
        assert uipath.normalise({"Type": "job." + "x" * 251}).type.startswith("uipath.job.x")

    def test_only_short_names_are_cached(self) -> None:
        before = normalise.cached_names()
        long = "Q" + "a" * normalise.CACHED_NAME_CHARS  # one over the limit
        assert normalise.words(long) == ["q" + "a" * normalise.CACHED_NAME_CHARS]
        assert normalise.cached_names() == before  # worked out, not kept
        assert normalise.words("CacheProbeOnlyHere") == ["cache", "probe", "only", "here"]
        assert normalise.cached_names() == before + 1
