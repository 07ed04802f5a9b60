"""Several LeanIX workspaces: their settings, which workspace an event is from, rules
scoped to one, and each Authorization value vouching for its own workspace's events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service import workspaces
from service.automation.rules import check_workspaces
from service.automation.rules import load as load_rules
from service.errors import ConfigError, Unauthorized
from service.receiver.ingest import scoped
from service.settings import Settings, from_mapping, load
from service.vendors.normalise import Facts
from service.vendors.signatures import Credential, ScopedAuthorization

PRODUCTION = {"name": "production", "id": "ws-prod", "api_token": "prod-token",
              "authorization": ["Basic cHJvZA=="]}  # fmt: skip
SANDBOX = {"name": "sandbox", "id": "ws-sand", "base_url": "https://acme-sandbox.leanix.net",
           "api_token": "sand-token", "authorization": ["Basic c2FuZA=="]}  # fmt: skip


def two() -> Settings:
    return from_mapping({"leanix": {"workspaces": [PRODUCTION, SANDBOX]}})


def test_the_single_workspace_configuration_is_one_workspace_taking_any() -> None:
    settings = from_mapping(
        {"clients": {"leanix": {"api_token": "t"}}, "sources": {"leanix": {"authorization": ["A"]}}}
    )
    [only] = workspaces.configured(settings)
    assert (only.name, only.id, only.api, only.authorization) == (
        "default", None, settings.clients.leanix, ("A",)
    )  # fmt: skip
    assert workspaces.find([only], "any-workspace") is only
    assert workspaces.scopes(settings) == frozenset()


def test_each_workspace_gets_its_own_token_and_url_and_the_shared_knobs() -> None:
    production, sandbox = workspaces.configured(two())
    assert sandbox.api.api_token == "sand-token"
    assert sandbox.api.base_url == "https://acme-sandbox.leanix.net"
    assert production.api.base_url == "https://app.leanix.net"  # clients.leanix.base_url
    assert sandbox.api.rate_limit_rps == two().clients.leanix.rate_limit_rps
    assert workspaces.find((production, sandbox), "ws-sand") is sandbox
    assert workspaces.find((production, sandbox), "ws-other") is None
    assert workspaces.scopes(two()) == {"production", "ws-prod", "sandbox", "ws-sand"}
    assert "sand-token" not in repr(two()) and "c2FuZA" not in repr(two())


def test_secrets_come_from_the_environment_by_workspace_name(tmp_path: Path) -> None:
    config = tmp_path / "service.toml"
    config.write_text('[[leanix.workspaces]]\nname = "sandbox"\nid = "ws-sand"\n')
    env = {"SERVICE_CONFIG": str(config), "LEANIX_SANDBOX_API_TOKEN": "from-env",
           "LEANIX_SANDBOX_WEBHOOK_AUTHORIZATION": "Basic YQ==, Basic Yg=="}  # fmt: skip
    [sandbox] = load(env).leanix.workspaces
    assert sandbox.api_token == "from-env"
    assert sandbox.authorization == ("Basic YQ==", "Basic Yg==")


def test_an_event_names_its_workspace_in_its_source() -> None:
    assert workspaces.id_of("leanix:ws-sand") == "ws-sand"
    assert workspaces.id_of("leanix") is None
    assert workspaces.id_of("uipath:ws-sand") is None


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"name": "Sand Box"}, "name"),
        ({"id": ""}, "id"),
        ({"name": "production"}, "leanix.workspaces (item 2)"),
        ({"authorization": PRODUCTION["authorization"]}, "authorization"),
        ({"base_url": "acme.leanix.net"}, "base_url"),
    ],
)
def test_wrong_workspaces_stop_start_up_naming_the_key(change: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_mapping({"leanix": {"workspaces": [PRODUCTION, {**SANDBOX, **change}]}})
    assert key in caught.value.key


def test_workspaces_beside_the_single_workspace_keys_are_refused() -> None:
    tree = {"leanix": {"workspaces": [PRODUCTION]}, "clients": {"leanix": {"api_token": "t"}}}
    with pytest.raises(ConfigError, match="not both"):
        from_mapping(tree)


def rule(**when: Any) -> dict[str, Any]:
    return {"name": "r", "when": when, "start": {"vendor": "robocorp",
            "target": {"process_id": "p"}}}  # fmt: skip


def test_a_rule_scoped_to_a_workspace_fires_for_its_events_only() -> None:
    [scoped_rule] = load_rules((rule(workspace="sandbox"),))
    sheet = {"id": "fs", "type": "Application"}
    assert scoped_rule.matches("leanix.factsheet.updated", sheet, {"ws-sand", "sandbox"})
    assert not scoped_rule.matches("leanix.factsheet.updated", sheet, {"ws-prod", "production"})
    assert not scoped_rule.matches("leanix.factsheet.updated", sheet)  # workspace unknown
    [anywhere] = load_rules((rule(),))
    assert anywhere.matches("leanix.factsheet.updated", sheet, {"ws-prod"})


def test_a_rule_naming_no_configured_workspace_stops_start_up() -> None:
    rules = load_rules((rule(workspace=["sandbox", "staging"]),))
    with pytest.raises(ConfigError, match="staging") as caught:
        check_workspaces(rules, workspaces.scopes(two()))
    assert caught.value.key == "rules[r].when.workspace"
    check_workspaces(rules, frozenset())  # one workspace: any workspaceId is taken


def test_an_authorization_value_names_its_workspace() -> None:
    verifier = ScopedAuthorization([("leanix:ws-prod", ["Basic cHJvZA=="]),
                                    ("leanix:ws-sand", ["Basic c2FuZA=="])])  # fmt: skip
    credential = verifier.verify({"Authorization": "Basic c2FuZA=="}, b"{}")
    assert credential.source == "leanix:ws-sand"
    with pytest.raises(Unauthorized):
        verifier.check({"Authorization": "Basic b3RoZXI="})
    assert "c2FuZA" not in repr(verifier)


def test_a_workspace_credential_vouches_for_its_workspaces_events_only() -> None:
    credential = Credential("authorization-header", source="leanix:ws-sand")
    ours = Facts("leanix:ws-sand", "leanix.factsheet.updated")
    assert scoped(ours, credential) == ours
    unnamed = Facts("leanix", "leanix.callback.received")  # a body a callback script reshaped
    assert scoped(unnamed, credential).source == "leanix:ws-sand"
    with pytest.raises(Unauthorized):
        scoped(Facts("leanix:ws-prod", "leanix.factsheet.updated"), credential)
    assert scoped(ours, Credential("authorization-header")) == ours  # one workspace: as before
