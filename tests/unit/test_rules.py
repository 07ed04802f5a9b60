"""Rules: loading and validation, matching, templates, Fact Sheet flattening."""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from service.automation import factsheet, rules, templates
from service.errors import ConfigError
from service.settings import from_mapping
from service.simulators.lab import Lab
from service.vendors import registry
from tests.senders import fixture

EXAMPLE = Path(__file__).parents[2] / "config" / "rules.example.toml"


def rule(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "r",
        "on": "leanix.factsheet.*",
        "start": {"vendor": "uipath", "target": {"release_key": "rk"}},
    }
    raw.update(overrides)
    return raw


def test_the_example_file_is_valid_and_covers_every_platform() -> None:
    settings = from_mapping(tomllib.loads(EXAMPLE.read_text()))
    loaded = rules.load(settings.rules)
    assert {r.vendor for r in loaded} == set(registry.names())


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"on": "x"}, "rules[0].name"),
        (rule(start={"vendor": "zapier", "target": {}}), "rules[r].start.vendor"),
        (rule(start={"vendor": "leapwork", "target": {}}), "rules[r].start.target.schedule_id"),
        (rule(start={"vendor": "uipath"}), "rules[r].start.target"),
        (rule(when={"colour": "red"}), "rules[r].when.colour"),
        (rule(when={"tag": 3}), "rules[r].when.tag"),
        (rule(on="uipath.job.*"), "rules[r].on"),
        (rule(dry_run="yes"), "rules[r].dry_run"),
        (rule(write_back={"on_success": {"colour": 1}}), "rules[r].write_back.on_success.colour"),
        (
            rule(
                start={
                    "vendor": "uipath",
                    "target": {"release_key": "rk"},
                    "inputs": {"x": "{{ secrets.token }}"},
                }
            ),
            "rules[r]",
        ),
    ],
)
def test_invalid_rules_name_the_rule_and_key(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        rules.load((raw,))
    assert caught.value.key == key


def test_rule_names_are_unique() -> None:
    with pytest.raises(ConfigError, match="two rules"):
        rules.load((rule(), rule()))


def test_a_rule_needs_its_client_unless_it_is_a_dry_run() -> None:
    loaded = rules.load((rule(), rule(name="dry", dry_run=True)))
    with pytest.raises(ConfigError, match=r"uipath client is not configured") as caught:
        rules.check_clients(loaded, vendors=[], leanix=True)
    assert caught.value.key == "rules[r].start.vendor"
    with pytest.raises(ConfigError, match="LEANIX_API_TOKEN"):
        rules.check_clients(loaded, vendors=["uipath"], leanix=False)
    rules.check_clients(loaded[1:], vendors=[], leanix=False)


def sheet(**overrides: Any) -> dict[str, Any]:
    flat = factsheet.flatten(
        orjson.loads(fixture("leanix-factsheet-updated.json"))["factSheet"], date(2023, 9, 30)
    )
    flat.update(overrides)
    return flat


@pytest.mark.parametrize(
    ("when", "matches"),
    [
        ({}, True),
        ({"fact_sheet_type": "Application"}, True),
        ({"fact_sheet_type": ["ITComponent", "Application"]}, True),
        ({"fact_sheet_type": "ITComponent"}, False),
        ({"lifecycle_phase": "active"}, True),
        ({"lifecycle_phase": "endOfLife"}, False),
        ({"fields": {"category": "applicationSystem"}}, True),
        ({"fields": {"category": "other"}}, False),
        ({"fields": {"lxAppId": "APP-00870", "alias": "foo bar"}}, True),
        ({"tag": "automate"}, False),
    ],
)
def test_conditions(when: dict[str, Any], matches: bool) -> None:
    loaded = rules.load((rule(when=when),))[0]
    assert loaded.matches("leanix.factsheet.updated", sheet()) is matches


def test_tags_must_all_be_present() -> None:
    loaded = rules.load((rule(when={"tag": ["a", "b"]}),))[0]
    assert loaded.matches("leanix.factsheet.updated", sheet(tags=["b", "a", "c"]))
    assert not loaded.matches("leanix.factsheet.updated", sheet(tags=["a"]))


def test_patterns_and_events_without_a_fact_sheet() -> None:
    loaded = rules.load((rule(on=["leanix.factsheet.created"]),))[0]
    assert loaded.matches("leanix.factsheet.created", sheet())
    assert not loaded.matches("leanix.factsheet.updated", sheet())
    assert not loaded.matches("leanix.factsheet.created", None)


def test_flatten_a_real_snapshot() -> None:
    flat = sheet()
    assert flat["id"] == "06ee9782-1952-4a59-848b-5e009a7e43c5"
    assert flat["name"] == "ServiceNow"
    assert flat["fields"]["alias"] == "foo bar"
    assert flat["fields"]["category"] == "applicationSystem"
    assert flat["fields"]["lxAppId"] == "APP-00870"
    assert flat["lifecycle_phase"] == "active"
    assert factsheet.flatten({"fields": []}, date(2023, 10, 27))["lifecycle_phase"] is None


def test_snapshot_in_every_payload_mode() -> None:
    default = orjson.loads(fixture("leanix-factsheet-created.json"))
    wrapped = orjson.loads(fixture("leanix-wrapped.json"))
    reshaped = {"id": "x", "type": "ITComponent", "fields": [{"key": "k", "value": {"value": 1}}]}
    assert factsheet.snapshot(default)["name"] == "AC Management"  # type: ignore[index]
    assert factsheet.snapshot(wrapped)["rev"] == 4  # type: ignore[index]
    assert factsheet.flatten(factsheet.snapshot(reshaped) or {})["fields"] == {"k": 1}
    assert factsheet.snapshot({"type": "FactSheetUpdatedEvent"}) is None


def test_templates() -> None:
    context = {
        "fact_sheet": {"id": "fs", "name": "A & B", "fields": {"n": 3}},
        "run": {"outputs": {}},
    }
    assert templates.render("{{ fact_sheet.id }}", context) == "fs"
    assert templates.render("{{fact_sheet.fields.n}}", context) == 3  # keeps its type
    assert (
        templates.render("n={{ fact_sheet.fields.n }} {{ fact_sheet.name }}", context)
        == "n=3 A & B"
    )
    assert templates.render({"a": ["{{ run.outputs.missing }}"]}, context) == {"a": [None]}
    assert templates.render("{{ fact_sheet }}x", context).startswith('{"id":"fs"')
    with pytest.raises(templates.TemplateError):
        templates.render("{{ fact_sheet.name.first }}", context)


def test_event_data_cannot_inject_a_template() -> None:
    context = {"fact_sheet": {"name": "{{ fact_sheet.secret }}", "secret": "s3cret"}}
    assert templates.render("{{ fact_sheet.name }}", context) == "{{ fact_sheet.secret }}"


@pytest.mark.parametrize("recipe_id", [0, -3, "abc", True, 1.5, ""])
def test_a_workato_recipe_id_must_be_a_recipe_id(recipe_id: Any) -> None:
    target = {"endpoint_url": "https://apim.workato.com/acme/bridge-v1/x", "recipe_id": recipe_id}
    with pytest.raises(ConfigError) as caught:
        rules.load((rule(start={"vendor": "workato", "target": target}),))
    assert caught.value.key == "rules[r].start.target.recipe_id"


@pytest.mark.parametrize("recipe_id", [1234, "1234"])
def test_a_workato_rule_may_name_the_recipe_to_poll(recipe_id: Any) -> None:
    target = {"endpoint_url": "https://apim.workato.com/acme/bridge-v1/x", "recipe_id": recipe_id}
    [loaded] = rules.load((rule(start={"vendor": "workato", "target": target}),))
    assert loaded.target["recipe_id"] == recipe_id


@pytest.mark.parametrize(
    "schedule_id",
    ["Regression", "ff9cf360-3fb2-4914-b423", "ff9cf360-3fb2-4914-b423-16358a954e8g", 42, ["x"]],
)
def test_a_leapwork_schedule_id_that_is_not_a_guid_stops_start_up(schedule_id: Any) -> None:
    raw = rule(start={"vendor": "leapwork", "target": {"schedule_id": schedule_id}})
    with pytest.raises(ConfigError) as refused:
        rules.load((raw,))
    assert refused.value.key == "rules[r].start.target.schedule_id"
    assert "GUID" in str(refused.value)


def test_a_leapwork_schedule_id_that_is_a_guid_loads() -> None:
    guid = "ff9cf360-3fb2-4914-b423-16358a954e86"
    raw = rule(start={"vendor": "leapwork", "target": {"schedule_id": guid}})
    [loaded] = rules.load((raw,))
    assert loaded.target == {"schedule_id": guid}


@pytest.mark.parametrize(
    "path", ["config/rules.example.toml", "deploy/demo-rules.toml", "config/local.toml"]
)
def test_the_shipped_rules_load(path: str) -> None:
    tree = tomllib.loads((EXAMPLE.parents[1] / path).read_text())
    rules.load(from_mapping(tree).rules)


async def test_the_labs_rules_load() -> None:
    async with Lab().running() as lab:
        rules.load(tuple(lab.rule(vendor) for vendor in rules.VENDORS))
