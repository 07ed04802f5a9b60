"""Settings: layered, validated, frozen, and secret-free reprs."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
from yarl import URL

from service import settings
from service.bus.settings import redact_url
from service.errors import ConfigError
from tests import senders

DEFAULT_TOML = Path(settings.DEFAULT_CONFIG)


def test_default_toml_is_generated_from_the_settings_and_changes_nothing() -> None:
    committed = DEFAULT_TOML.read_text()
    assert committed == settings.defaults_toml(), "config/default.toml is stale: make config"
    documented = settings.from_mapping(tomllib.loads(committed))
    assert documented == settings.Settings()
    assert settings.load({"SERVICE_CONFIG": str(DEFAULT_TOML)}) == settings.Settings()


def test_the_environment_table_is_derived_from_the_fields() -> None:
    assert settings.ENVIRONMENT["HTTP_PORT"] == "http.port"
    assert settings.ENVIRONMENT["UIPATH_WEBHOOK_SECRET"] == "sources.uipath.secrets"
    assert settings.ENVIRONMENT["ROBOCORP_WEBHOOK_SECRET"] == "sources.robocorp.secrets"
    assert settings.ENVIRONMENT["WORKATO_CALLBACK_SECRET"] == "sources.workato.secrets"
    text = DEFAULT_TOML.read_text()
    for name in settings.ENVIRONMENT:
        assert f"${name}" in text


def test_environment_overrides_and_lists() -> None:
    loaded = settings.load(
        {
            "HTTP_PORT": "9090",
            "AMQP_URL": "amqp://u:p@broker:5672/vh",
            "LEANIX_WEBHOOK_AUTHORIZATION": f"{senders.LEANIX_AUTH}, {senders.LEANIX_AUTH_OLD}",
            "LEAPWORK_CALLBACK_SECRET": senders.WHSEC,
        }
    )
    assert loaded.http.port == 9090
    assert loaded.amqp.url == "amqp://u:p@broker:5672/vh"
    assert loaded.sources.leanix.authorization == (senders.LEANIX_AUTH, senders.LEANIX_AUTH_OLD)
    assert loaded.sources.leapwork.secrets == (senders.WHSEC,)


def test_service_config_file_layer(tmp_path: Path) -> None:
    extra = tmp_path / "extra.toml"
    extra.write_text('[amqp]\nexchange = "custom"\n[worker]\nprefetch = 4\n')
    loaded = settings.load({"SERVICE_CONFIG": str(extra), "AMQP_EXCHANGE": "from-env"})
    assert loaded.amqp.exchange == "from-env"
    assert loaded.worker.prefetch == 4


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"HTTP_PORT": "eighty"}, "http.port"),
        ({"HTTP_PORT": "70000"}, "http.port"),
        ({"AMQP_URL": "http://x"}, "amqp.url"),
        ({"LOG_FORMAT": "xml"}, "log.format"),
        ({"LEAPWORK_CALLBACK_SECRET": "whsec_***not-base64***"}, "sources.leapwork.secrets"),
        ({"SERVICE_CONFIG": "/nonexistent/file.toml"}, "SERVICE_CONFIG"),
        ({"UIPATH_SCOPES": "  "}, "clients.uipath.scopes"),
    ],
)
def test_invalid_values_name_the_key(environ: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings.load(environ)
    assert caught.value.key.startswith(key)
    assert key in str(caught.value)


def test_unknown_and_mistyped_keys_in_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="http.prot"):
        settings.from_mapping({"http": {"prot": 1}})
    with pytest.raises(ConfigError, match="worker.prefetch"):
        settings.from_mapping({"worker": {"prefetch": "10"}})
    with pytest.raises(ConfigError, match="sources.uipath.secrets"):
        settings.from_mapping({"sources": {"uipath": {"secrets": "one"}}})


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.Settings().http.port = 1  # type: ignore[misc]


def test_reprs_and_errors_hide_secrets() -> None:
    loaded = settings.load(
        {
            "AMQP_URL": "amqp://user:hunter2-broker@host/",
            "LEANIX_WEBHOOK_AUTHORIZATION": senders.LEANIX_AUTH,
            "UIPATH_WEBHOOK_SECRET": senders.UIPATH_SECRET,
            "ROBOCORP_WEBHOOK_SECRET": senders.ROBOCORP_SECRET,
            "WORKATO_CALLBACK_SECRET": senders.WHSEC,
            "CALLBACK_SIGNING_KEY": senders.CALLBACK_SIGNING_KEY,
        }
    )
    text = repr(loaded) + str(loaded)
    for secret in (*senders.ALL_SECRETS, "hunter2-broker"):
        assert secret not in text
    assert loaded.amqp.safe_url == "amqp://user:***@host/"
    with pytest.raises(ConfigError) as caught:
        settings.load({"LEAPWORK_CALLBACK_SECRET": "whsec_tooshort"})
    assert "tooshort" not in str(caught.value)


def test_workato_developer_api_settings() -> None:
    token = "workato-developer-token-0b7e"
    loaded = settings.load(
        {
            "WORKATO_DEVELOPER_API_TOKEN": token,
            "WORKATO_DEVELOPER_API_URL": "https://app.eu.workato.com/api",
        }
    )
    workato = loaded.clients.workato
    assert (workato.developer_api_token, workato.developer_api_url) == (
        token,
        "https://app.eu.workato.com/api",
    )
    assert token not in repr(loaded)
    assert workato.run_deadline_s > 0


@pytest.mark.parametrize(
    ("workato", "key"),
    [
        ({"developer_api_url": "app.eu.workato.com/api"}, "clients.workato.developer_api_url"),
        ({"run_deadline_s": 0}, "clients.workato.run_deadline_s"),
    ],
)
def test_invalid_workato_settings_name_the_key(workato: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings.from_mapping({"clients": {"workato": workato}})
    assert caught.value.key == key


# A password made of pieces that appear nowhere else, joined by the characters that end a
# URL's authority early when left raw.
PIECES = ("PWa", "PWb", "PWc", "PWd")


@pytest.mark.parametrize(
    "url",
    [
        "amqp://user:PWa#PWb@host:5672/",
        "amqp://user:PWa/PWb@host:5672/vh",
        "amqp://user:PWa?PWb@host/",
        "amqp://user:PWa@PWb@host/",
        "amqp://user:PWa:PWb@host/",
        "amqp://user:PWa/PWb#PWc?PWd@host:5672/vh",
        "amqp://user:12#PWa@host/",  # parses as host "user", port 12
        "amqp://user:PWa@[::1/",  # not a URL at all
        "user:PWa@host",
        "postgresql+asyncpg://user:PWa#PWb/PWc?PWd@db:5432/bridge",
    ],
)
def test_redaction_masks_the_password_whatever_its_characters(url: str) -> None:
    redacted = redact_url(url)
    assert "PW" not in redacted
    assert "***" in redacted


def test_redaction_keeps_what_is_not_a_password() -> None:
    assert redact_url("amqp://u:p@[::1]:5672/vh?x=1") == "amqp://u:***@[::1]:5672/vh?x=1"
    assert redact_url("amqp://u@host/") == "amqp://u@host/"
    assert redact_url("amqp://host:5672/") == "amqp://host:5672/"


@pytest.mark.parametrize(
    "url",
    [
        "amqp://user:PWa#PWb@host:5672/",
        "amqp://user:PWa/PWb@host:5672/",
        "amqp://user:PWa?PWb@host/",
        "amqp://user:12#PWa@host/",
        "amqp://user:PWa@[::1/",
        "amqp://user:PWa@host/?name=a@PWb",
    ],
)
def test_an_amqp_url_that_does_not_parse_is_refused_saying_how_to_encode(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings.load({"AMQP_URL": url})
    assert caught.value.key == "amqp.url"
    assert "%23" in str(caught.value) and "%2F" in str(caught.value)
    assert "PW" not in str(caught.value)


def test_a_store_url_whose_password_has_a_raw_at_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        settings.load({"STORE_URL": "postgresql+asyncpg://user:PWa@PWb@db/bridge"})
    assert caught.value.key == "store.url"
    assert "%40" in str(caught.value) and "PW" not in str(caught.value)
    with pytest.raises(ConfigError, match="store.url"):
        settings.load({"STORE_URL": "PWa not a url"})


def test_a_percent_encoded_password_reaches_the_client_decoded_and_is_never_shown() -> None:
    loaded = settings.load({"AMQP_URL": "amqp://user:PWa%23PWb%2FPWc%3FPWd%40@host:5672/"})
    assert URL(loaded.amqp.url).password == "PWa#PWb/PWc?PWd@"  # as aio-pika reads it
    assert loaded.amqp.safe_url == "amqp://user:***@host:5672/"


BLANK_CREDENTIALS = ["", " ", "\t", "\xa0", "\u3000 "]
CREDENTIAL_KEYS = [
    ("leanix", "authorization"),
    ("uipath", "secrets"),
    ("robocorp", "secrets"),
    ("leapwork", "secrets"),
    ("workato", "secrets"),
]


@pytest.mark.parametrize("blank", BLANK_CREDENTIALS, ids=repr)
@pytest.mark.parametrize(("source", "kind"), CREDENTIAL_KEYS)
def test_an_empty_or_blank_credential_stops_start_up_naming_its_key(
    source: str, kind: str, blank: str
) -> None:
    """A blank credential would open the endpoint to a blank header or a blank-key HMAC."""
    tree = {"sources": {source: {kind: [senders.WHSEC, blank]}}}
    with pytest.raises(ConfigError) as caught:
        settings.from_mapping(tree)
    assert caught.value.key == f"sources.{source}.{kind}"
    assert "empty or whitespace-only" in str(caught.value)


def test_blank_credentials_from_the_environment_are_dropped_not_kept() -> None:
    loaded = settings.load(
        {"LEANIX_WEBHOOK_AUTHORIZATION": " , \xa0 ,", "UIPATH_WEBHOOK_SECRET": ""}
    )
    assert loaded.sources.leanix.authorization == ()  # the source stays closed
    assert loaded.sources.uipath.secrets == ()


@pytest.mark.parametrize(
    ("http", "key"),
    [
        ({"max_body_bytes": 2048, "max_inflight_body_bytes": 1024}, "http.max_inflight_body_bytes"),
        ({"header_timeout_s": 0}, "http.header_timeout_s"),
        ({"body_timeout_s": -1}, "http.body_timeout_s"),
        ({"keepalive_timeout_s": 0}, "http.keepalive_timeout_s"),
        ({"max_connections": 0}, "http.max_connections"),
    ],
)
def test_receiver_bounds_are_validated(http: dict[str, int], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings.from_mapping({"http": http})
    assert caught.value.key == key


@pytest.mark.parametrize(
    ("tree", "key"),
    [
        ({"http": {"port": True}}, "http.port"),  # a bool is not an integer
        ({"http": {"port": 80.0}}, "http.port"),
        ({"eventlog": {"enabled": "yes"}}, "eventlog.enabled"),
        ({"worker": {"retry_delays_s": [5, "soon"]}}, "worker.retry_delays_s"),
        ({"rules": [{"on": "x"}, "not a table"]}, "rules"),
        ({"http": "not a table"}, "http"),
        ({"clients": {"uipath": {"client_secret": ["PWsecret"]}}}, "clients.uipath.client_secret"),
    ],
)
def test_mistyped_toml_values_name_the_key_and_never_echo_the_value(
    tree: dict[str, object], key: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        settings.from_mapping(tree)
    assert caught.value.key == key
    for value in ("soon", "not a table", "PWsecret", "yes"):
        assert value not in str(caught.value)


def test_floats_take_integers_and_lists_become_tuples() -> None:
    loaded = settings.from_mapping(
        {"http": {"body_timeout_s": 7}, "worker": {"retry_delays_s": [1]}}
    )
    assert loaded.http.body_timeout_s == 7.0 and isinstance(loaded.http.body_timeout_s, float)
    assert loaded.worker.retry_delays_s == (1.0,)


def test_environment_values_are_converted_and_errors_name_the_variable() -> None:
    loaded = settings.load({"RETRY_DELAYS_S": "1, 2.5,", "UIPATH_FOLDER_ID": "7"})
    assert loaded.worker.retry_delays_s == (1.0, 2.5)
    assert loaded.clients.uipath.folder_id == 7
    with pytest.raises(ConfigError) as caught:
        settings.load({"RETRY_DELAYS_S": "5,PWsoon"})
    assert caught.value.key == "worker.retry_delays_s (from $RETRY_DELAYS_S)"
    assert "PWsoon" not in str(caught.value)


def test_the_command_line_prints_the_generated_defaults_whatever_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.__main__ import main

    monkeypatch.setenv("HTTP_PORT", "not a port")  # a broken setting is no obstacle
    assert main(["settings", "defaults"]) == 0
    assert capsys.readouterr().out == DEFAULT_TOML.read_text()


def test_amqp_url_takes_the_nodes_of_a_cluster_comma_separated() -> None:
    loaded = settings.load(
        {"AMQP_URL": "amqp://user:PWa@node1:5672/, amqp://user:PWb@node2:5672/,"}
    )
    assert loaded.amqp.urls == ("amqp://user:PWa@node1:5672/", "amqp://user:PWb@node2:5672/")
    assert loaded.amqp.safe_url == "amqp://user:***@node1:5672/,amqp://user:***@node2:5672/"
    assert "PW" not in repr(loaded)


@pytest.mark.parametrize(
    "url",
    [
        "amqp://user:PWa@node1/,http://node2/",
        "amqp://user:PWa@node1/,amqp://user:PWa#PWb@node2/",
        "amqp://user:PWa,PWb@node1/",  # a raw comma in a password splits it
        " , ",
    ],
)
def test_each_node_url_is_validated(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings.load({"AMQP_URL": url})
    assert caught.value.key == "amqp.url"
    assert "PW" not in str(caught.value)
