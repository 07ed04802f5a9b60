"""The contract checks themselves: a checker that passes everything would prove nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from multidict import CIMultiDict

from tests.contracts import contract as contracts
from tests.contracts.contract import Request, contract, header_problems, problems

BEARER = {"Authorization": "Bearer t", "X-UIPATH-OrganizationUnitId": "1"}


def request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Request:
    return Request(method, path, (), CIMultiDict(headers), body)


def test_missing_contracts_fail_saying_where_they_were_looked_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(contracts, "CONTRACTS", tmp_path / "shared" / "contracts")
    with pytest.raises(pytest.fail.Exception, match="vendor contracts are missing: expected"):
        contracts.contracts_dir()


@pytest.mark.parametrize(
    ("vendor", "method", "path", "operation"),
    [
        ("uipath", "GET", "/acme/default/orchestrator_/odata/Jobs(148712)", "GetJob"),
        ("uipath", "GET", "/acme/default/orchestrator_/odata/Jobs", "ListJobs"),
        ("uipath", "POST", "/identity_/connect/token", "Token"),
        ("leapwork", "GET", "/api/v4/run/0d9e4c7a/status", "GetRunStatus"),
        ("leapwork", "GET", "/api/v4/run/0d9e4c7a", "GetRun"),
        ("robocorp", "GET", "/api/v1/workspaces/w/process-runs/r", "GetProcessRun"),
        ("workato", "PUT", "/acme/sales-v1/tickets", "CallApiPlatformEndpoint"),
        ("uipath", "DELETE", "/acme/default/orchestrator_/odata/Jobs", None),
    ],
)
def test_requests_are_matched_by_method_and_path_template(
    vendor: str, method: str, path: str, operation: str | None
) -> None:
    found = contract(vendor).match(method, path)
    assert (found.name if found else None) == operation


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        (BEARER, None),
        ({"Authorization": "Bearer t"}, "header X-UIPATH-OrganizationUnitId is missing"),
        ({**BEARER, "X-UIPATH-OrganizationUnitId": "x"}, "is not an integer"),
        ({**BEARER, "Authorization": "Basic t"}, "does not start with 'Bearer'"),
    ],
)
def test_required_headers_are_held_to_their_description(
    headers: dict[str, str], problem: str | None
) -> None:
    get_job = contract("uipath").operation("GetJob")
    found = get_job.request_problems(request("GET", "/odata/Jobs(1)", headers))
    assert found == [] if problem is None else problem in found[0]


def test_either_of_two_alternative_headers_will_do() -> None:
    required = contract("workato").operation("CallApiPlatformEndpoint").doc["required_headers"]
    assert header_problems(required, CIMultiDict({"API-TOKEN": "t"}), "w") == []
    assert header_problems(required, CIMultiDict({"Authorization": "Bearer t"}), "w") == []
    assert header_problems(required, CIMultiDict(), "w") != []


def test_path_and_query_values_are_typed_before_validation() -> None:
    get_job = contract("uipath").operation("GetJob")
    assert get_job.request_problems(request("GET", "/odata/Jobs(12)", BEARER)) == []
    assert (
        "'x' is not of type 'integer'"
        in get_job.request_problems(request("GET", "/odata/Jobs(x)", BEARER))[0]
    )
    list_jobs = contract("uipath").operation("ListJobs")
    over = Request("GET", "/odata/Jobs", (("$top", "1001"),), CIMultiDict(BEARER), b"")
    assert "1001 is greater than the maximum of 1000" in list_jobs.request_problems(over)[0]


def test_answers_are_held_to_their_status_and_schema() -> None:
    start = contract("uipath").operation("StartJobs")
    assert start.response_problems(201, b'{"value": [{"Id": 1, "State": "Pending"}]}', None) == []
    assert (
        "'Nope' is not valid"
        in start.response_problems(201, b'{"value": [{"State": "Nope"}]}', None)[0]
    )
    assert "status 418 is not in the contract" in start.response_problems(418, b"{}", None)[0]
    for generic in (401, 429, 500, 503):  # allowed on every operation, any body
        assert start.response_problems(generic, b"<html>", None) == []
    stop = contract("uipath").operation("StopJob")
    assert stop.response_problems(200, b"{}", None) == ["uipath StopJob response 200: "
                                                          "the contract says no body"]  # fmt: skip


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("2024-02-16T13:12:26.995583770Z", True),
        ("2018-11-26T14:37:26.3231812+01:00", True),
        ("2024-02-16T13:12:26", False),  # no offset
        ("2024-13-01T00:00:00Z", False),
        ("yesterday", False),
    ],
)
def test_date_times_are_checked_as_rfc_3339(value: str, valid: bool) -> None:
    schema = {"type": "string", "format": "date-time"}
    assert (problems({}, schema, value, "w") == []) == valid


@pytest.mark.parametrize(
    ("query", "variables", "problem"),
    [
        ("mutation($p: [Patch]!) { updateFactSheet(id: \"x\", patches: $p) { factSheet { id } } }",
         {"p": [{"op": "REPLACE", "path": "/name", "value": "n"}]}, "'REPLACE' is not one of"),
        ("mutation($p: [Patch]!) { updateFactSheet(id: \"x\", patches: $p) { factSheet { id } } }",
         {"p": [{"op": "remove", "path": "/x", "value": "v"}]}, "should not be valid"),
        ("mutation($r: Int) { updateFactSheet(id: \"x\", rev: $r, patches: []) { id } }",
         {"r": 1}, "$r is not declared as Long"),
        ("mutation { updateFactSheet(id: \"x\") { factSheet { id } } }", {}, "needs patches"),
        ("mutation { createComment(factSheetId: \"x\", message: \"m\", status: CLOSED) { id } }",
         {}, "'CLOSED' is not one of ['ACTIVE']"),
        ("mutation { deleteFactSheet(id: \"x\") { id } }", {}, "deleteFactSheet is not in the"),
        ("query { factSheet(id: \"x\") { id } }", {}, None),  # reads: outside the SDL
    ],
)  # fmt: skip
def test_graphql_mutations_are_held_to_the_sdls_signatures(
    query: str, variables: dict[str, object], problem: str | None
) -> None:
    graphql = contract("leanix").operation("GraphQL")
    body = json.dumps({"query": query, "variables": variables})
    headers = {"Authorization": "Bearer t", "Content-Type": "application/json"}
    found = graphql.request_problems(request("POST", graphql.path, headers, body.encode()))
    assert found == [] if problem is None else problem in " ".join(found)
