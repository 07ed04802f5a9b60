"""The `http` platform's rule targets and settings: what start-up refuses, naming the key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import structlog

from service import settings
from service.automation import rules
from service.errors import ConfigError
from service.vendors import registry
from service.vendors.adapter import PlannedRun
from service.vendors.http.client import HttpClient
from service.vendors.http.endpoint import build_url, endpoint
from service.vendors.http.preflight import check_rules
from service.vendors.http.settings import Credential, HttpApi, named_credentials

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


def loaded(**http: Any) -> settings.Settings:
    return settings.from_mapping({"clients": {"http": http}})


@pytest.mark.parametrize(
    ("credential", "key"),
    [
        ({"name": "n8n", "hosts": [], "headers": {"X-Key": SECRET}}, "n8n].hosts"),
        ({"name": "n8n", "hosts": ["n8n.example.com"], "headers": {}}, "n8n].headers"),
        ({"name": "n8n", "hosts": ["https://n8n.example.com"], "headers": {"X-Key": SECRET}},
         "n8n].hosts"),
        ({"name": "n8n", "hosts": ["n8n.example.com"], "headers": {"X-Key": SECRET + "\n"}},
         "n8n].headers.X-Key"),
        ({"name": "n8n", "hosts": ["n8n.example.com"], "headers": {"X-Key": " "}},
         "n8n].headers.X-Key"),
        ({"name": " ", "hosts": ["n8n.example.com"], "headers": {"X-Key": SECRET}}, "].name"),
    ],
)  # fmt: skip
def test_a_credential_that_cannot_work_stops_start_up_without_echoing_it(
    credential: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        loaded(credentials=[credential])

    assert caught.value.key.startswith("clients.http.credentials[")
    assert caught.value.key.endswith(key)
    assert SECRET not in str(caught.value)


def test_credentials_may_come_as_json_from_the_environment() -> None:
    given = [{"name": "n8n", "hosts": ["N8N.example.com"], "headers": {"X-K": SECRET}}]
    loaded_settings = settings.load(
        {"HTTP_CREDENTIALS": orjson.dumps(given).decode(), "HTTP_PLAIN_HTTP_HOSTS": "a,b"}
    )
    api = registry.platform("http").client_settings(loaded_settings.clients)

    [credential] = named_credentials(api).values()

    assert credential.allows("n8n.example.com", None)
    assert not credential.allows("n8n.example.com.evil.com", None)
    assert api.plain_http_hosts == ("a", "b")
    assert SECRET not in repr(loaded_settings) + repr(credential)


@pytest.mark.parametrize("text", ["[{", '{"n8n": {}}', '[{"name": "n8n"}]'])
def test_unreadable_json_credentials_stop_start_up(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        loaded(credentials_json=text)

    assert caught.value.key.startswith("clients.http.credentials_json")


def test_two_credentials_of_one_name_are_refused() -> None:
    one = {"name": "n8n", "hosts": ["n8n.example.com"], "headers": {"X-K": SECRET}}
    with pytest.raises(ConfigError, match="two credentials"):
        loaded(credentials=[one, one])


def test_a_weak_callback_secret_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        settings.from_mapping({"sources": {"http": {"secrets": ["whsec_c2hvcnQ="]}}})

    assert caught.value.key == "sources.http.secrets"


async def test_preflight_logs_each_rule_that_would_be_refused_never_a_secret() -> None:
    credentials = (Credential("n8n", ("n8n.example.com",), {"X-Key": SECRET}),)
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


def test_the_readme_example_loads() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### Any HTTP endpoint", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]

    loaded = settings.from_mapping(tomllib.loads(example))
    [rule] = rules.load(loaded.rules)

    assert (rule.vendor, rule.target["credential"]) == ("http", "n8n")
    api = registry.platform("http").client_settings(loaded.clients)
    assert named_credentials(api)["n8n"].allows("n8n.example.com", None)
