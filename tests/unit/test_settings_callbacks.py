"""Settings of the run callback tokens (issue 9 item 17): keys, and the static tokens' end."""

from __future__ import annotations

from typing import Any

import pytest

from service import settings
from service.errors import ConfigError
from tests import senders

KEY = senders.CALLBACK_SIGNING_KEY


@pytest.mark.parametrize("name", ["LEAPWORK_CALLBACK_TOKEN", "WORKATO_CALLBACK_TOKEN"])
def test_a_static_callback_token_stops_start_up_saying_what_to_do(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings.load({name: senders.CALLBACK_TOKEN, "CALLBACK_SIGNING_KEY": KEY})
    text = str(caught.value)
    assert f"from ${name}" in text and "CALLBACK_SIGNING_KEY" in text
    assert "forge" in text
    assert senders.CALLBACK_TOKEN not in text


@pytest.mark.parametrize("vendor", ["leapwork", "workato"])
def test_static_tokens_in_a_toml_file_stop_start_up_but_an_empty_list_passes(vendor: str) -> None:
    with pytest.raises(ConfigError, match=f"sources.{vendor}.tokens.*own token"):
        settings.from_mapping({"sources": {vendor: {"tokens": [senders.CALLBACK_TOKEN]}}})
    settings.from_mapping({"sources": {vendor: {"tokens": []}}})
    settings.load({"LEAPWORK_CALLBACK_TOKEN": "", "WORKATO_CALLBACK_TOKEN": " "})


def test_signing_keys_come_from_the_environment_comma_separated_and_stay_hidden() -> None:
    loaded = settings.load({"CALLBACK_SIGNING_KEY": f"{KEY}, {KEY}-older"})
    assert loaded.sources.callback_signing_keys == (KEY, f"{KEY}-older")
    assert KEY not in repr(loaded)


def test_a_short_signing_key_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigError, match="sources.callback_signing_keys.*32") as caught:
        settings.load({"CALLBACK_SIGNING_KEY": "too-short-key"})
    assert "too-short-key" not in str(caught.value)


CALLBACKS = {"CALLBACK_BASE_URL": "https://bridge.example.com"}


@pytest.mark.parametrize(
    ("client", "vendor"),
    [({"LEAPWORK_ACCESS_KEY": "k"}, "leapwork"), ({"WORKATO_API_TOKEN": "t"}, "workato")],
)
def test_callbacks_asked_of_leapwork_or_workato_need_a_key_fail_closed(
    client: dict[str, str], vendor: str
) -> None:
    with pytest.raises(ConfigError, match=f"sources.callback_signing_keys.*{vendor} runs"):
        settings.load({**CALLBACKS, **client})
    settings.load({**CALLBACKS, **client, "CALLBACK_SIGNING_KEY": KEY})
    settings.load(client)  # no callback URL: runs complete by polling


@pytest.mark.parametrize("env", [CALLBACKS, {**CALLBACKS, "ROBOCORP_API_KEY": "k"}])
def test_no_key_is_needed_when_no_leapwork_or_workato_run_calls_back(env: Any) -> None:
    assert not settings.load(env).sources.callback_signing_keys
