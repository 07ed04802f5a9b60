"""The `http` platform's rule targets and settings: what start-up refuses, naming the key."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
import structlog

from service.errors import ConfigError
from service.vendors.adapter import PlannedRun
from service.vendors.http.client import HttpClient
from service.vendors.http.endpoint import build_url, endpoint
from service.vendors.http.preflight import check_rules
from service.vendors.http.settings import HttpApi, HttpSource, named_credentials, validate

KEY = "rules[r].start.target"
SECRET = "credential-value-never-echoed-5b9e"


def target(**overrides: Any) -> dict[str, Any]:
    return {"url": "https://flows.example.com/run/{id}", **overrides}


@pytest.mark.parametrize(
    ("changes", "key", "says"),
    [
        ({"url": None}, "url", "required"),
        ({"url": "flows.example.com/run"}, "url", "absolute https"),
        ({"url": "ftp://flows.example.com/run"}, "url", "absolute https"),
        ({"url": "https://{host}/run"}, "url", "literal"),
        ({"url": "https://flows.example.com{suffix}/run"}, "url", "literal"),
        ({"url": "https://{sub}.flows.example.com/"}, "url", "literal"),
        ({"url": "https://flows.example.com:{port}/"}, "url", "literal"),
        ({"url": "https://user:pw@flows.example.com/"}, "url", "user information"),
        ({"url": "https://flows.example.com/run#{x}"}, "url", "fragment"),
        ({"url": "https://flows.example.com/{{ fact_sheet.id }}"}, "url", "not {{ templates }}"),
        ({"url": "https://flows.example.com/{a b}"}, "url", "variable is {name}"),
        ({"url": "https://flows.example.com\\@evil.com/"}, "url", "literal"),
        ({"method": "TRACE"}, "method", "one of"),
        ({"headers": {"Authorization": "Bearer x"}}, "headers.Authorization", "credentials"),
        ({"headers": {"cookie": "a=b"}}, "headers.cookie", "credentials"),
        ({"headers": {"Host": "evil.com"}}, "headers.Host", "credentials"),
        ({"headers": {"X-A": "{{ fact_sheet.name }}"}}, "headers.X-A", "literal"),
        ({"headers": {"X-A": "a\r\nX-Injected: 1"}}, "headers.X-A", "control character"),
        ({"headers": {"Bad Name": "x"}}, "headers", "not a header name"),
        ({"correlation_header": "Authorization"}, "correlation_header", "cannot be set"),
        ({"credential": "{{ event.data.credential }}"}, "credential", "literal name"),
        ({"state": "status"}, "state", "JSON pointer"),
        ({"status_url": ""}, "status_url", "location"),
        ({"states": {"ok": "great"}}, "states.ok", "one of"),
        ({"body": {}}, "body", "unknown key"),
    ],
)
def test_a_target_that_cannot_be_called_safely_is_refused(
    changes: dict[str, Any], key: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        endpoint({k: v for k, v in target(**changes).items() if v is not None}, KEY)

    assert caught.value.key == f"{KEY}.{key}"
    assert says in str(caught.value)


def test_a_full_target_is_accepted() -> None:
    spec = endpoint(
        target(method="put", credential="n8n", headers={"X-Flow": "provision"},
               correlation_pointer="/inputs/correlation_id", callback_pointer="/cb",
               run_id="/id", status_url="/links/status", state="/status",
               states={"SUCCESS": "succeeded"}, outputs="/data", detail="/error"),
        KEY,
    )  # fmt: skip

    assert (spec.method, str(spec.origin), spec.status_url) == (
        "PUT",
        "https://flows.example.com",
        "/links/status",
    )


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("a/b", "/run/a%2Fb"),
        ("?admin=1", "/run/%3Fadmin%3D1"),
        ("#frag", "/run/%23frag"),
        ("@evil.com", "/run/%40evil.com"),
        ("%2e%2e", "/run/%252e%252e"),
        ("line\r\nbreak", "/run/line%0D%0Abreak"),
        ("ünïcode", "/run/%C3%BCn%C3%AFcode"),
    ],
)
def test_a_variable_is_encoded_whole_and_cannot_move_the_url(value: str, path: str) -> None:
    url, body = build_url(endpoint(target(), KEY), {"id": value, "other": 1})

    assert (url.host, url.raw_path, body) == ("flows.example.com", path, {"other": 1})


@pytest.mark.parametrize("value", [".", ".."])
def test_a_variable_cannot_be_a_dot_segment(value: str) -> None:
    with pytest.raises(ValueError, match="path segment"):
        build_url(endpoint(target(), KEY), {"id": value})


def test_a_missing_input_is_named() -> None:
    with pytest.raises(ValueError, match="'id'"):
        build_url(endpoint(target(), KEY), {})


@pytest.mark.parametrize(
    ("credentials", "key"),
    [
        ({"n8n": {"headers": {"X-Key": SECRET}}}, "clients.http.credentials.n8n.hosts"),
        ({"n8n": {"hosts": ["n8n.example.com"]}}, "clients.http.credentials.n8n.headers"),
        ({"n8n": {"hosts": ["https://n8n.example.com"], "headers": {"X-Key": SECRET}}},
         "clients.http.credentials.n8n.hosts"),
        ({"n8n": {"hosts": ["n8n.example.com"], "headers": {"X-Key": SECRET + "\n"}}},
         "clients.http.credentials.n8n.headers.X-Key"),
        ({"n8n": {"hosts": ["n8n.example.com"], "headers": {"X-Key": " "}}},
         "clients.http.credentials.n8n.headers.X-Key"),
        ('{"n8n": ', "clients.http.credentials"),
    ],
)  # fmt: skip
def test_a_credential_that_cannot_work_is_refused_without_echoing_it(
    credentials: Any, key: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        validate(HttpApi(credentials=credentials), HttpSource())

    assert caught.value.key == key
    assert SECRET not in str(caught.value)


def test_credentials_may_come_as_json_from_the_environment() -> None:
    api = HttpApi(credentials='{"n8n": {"hosts": ["N8N.example.com"], "headers": {"X-K": "v"}}}')

    [credential] = named_credentials(api).values()

    assert credential.allows("n8n.example.com", None)
    assert not credential.allows("n8n.example.com.evil.com", None)
    assert "v" not in repr(api) + repr(credential)


def test_a_weak_callback_secret_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        validate(HttpApi(), HttpSource(("whsec_c2hvcnQ=",)))

    assert caught.value.key == "sources.http.secrets"


async def test_preflight_logs_each_rule_that_would_be_refused_never_a_secret() -> None:
    credentials = {"n8n": {"hosts": ["n8n.example.com"], "headers": {"X-Key": SECRET}}}
    runs = [
        PlannedRun("fine", {"url": "https://n8n.example.com/{id}", "credential": "n8n"},
                   {"id": "{{ fact_sheet.id }}"}),
        PlannedRun("unknown", {"url": "https://n8n.example.com/", "credential": "n9n"}, {}),
        PlannedRun("unbound", {"url": "https://evil.example.com/", "credential": "n8n"}, {}),
        PlannedRun("plain", {"url": "http://n8n.example.com/"}, {}),
        PlannedRun("variable", {"url": "https://n8n.example.com/{idd}"}, {"id": "x"}),
    ]  # fmt: skip
    async with aiohttp.ClientSession() as session:
        client = HttpClient(session, HttpApi(credentials=credentials))
        with structlog.testing.capture_logs() as logged:
            await check_rules(client, runs, calls_back=True)

    assert [line["rule"] for line in logged] == ["unknown", "unbound", "plain", "variable"]
    assert all(line["event"] == "http.rule_refused_at_start" for line in logged)
    assert SECRET not in str(logged)
