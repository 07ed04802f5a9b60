"""Each platform's settings tables come from the registry: [clients.<name>] and
[sources.<name>] exist, load, and are checked by the platform itself."""

from __future__ import annotations

import pytest

from service import settings
from service.errors import ConfigError
from service.vendors import registry
from service.vendors.adapter import AnyPlatform


@pytest.mark.parametrize("platform", registry.PLATFORMS, ids=lambda p: p.name)
def test_each_platform_has_its_tables(platform: AnyPlatform) -> None:
    loaded = settings.from_mapping({})
    assert isinstance(platform.client_settings(loaded.clients), platform.tables.client)
    assert isinstance(platform.source_settings(loaded.sources), platform.tables.source)


@pytest.mark.parametrize("platform", registry.PLATFORMS, ids=lambda p: p.name)
def test_a_platforms_blank_secret_stops_start_up_naming_its_key(platform: AnyPlatform) -> None:
    with pytest.raises(ConfigError) as refused:
        settings.from_mapping({"sources": {platform.name: {"secrets": [" "]}}})
    assert refused.value.key == f"sources.{platform.name}.secrets"


def test_an_unknown_platform_table_is_an_unknown_setting() -> None:
    with pytest.raises(ConfigError) as refused:
        settings.from_mapping({"clients": {"nosuchplatform": {}}})
    assert refused.value.key == "clients.nosuchplatform"


def test_the_environment_names_every_platform_variable() -> None:
    for platform in registry.PLATFORMS:
        assert set(platform.tables.env) <= set(settings.ENVIRONMENT)
    assert settings.ENVIRONMENT["WORKATO_API_TOKEN"] == "clients.workato.api_token"
    assert settings.ENVIRONMENT["UIPATH_WEBHOOK_SECRET"] == "sources.uipath.secrets"
