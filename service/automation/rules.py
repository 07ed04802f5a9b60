"""Rules: which LeanIX events start which automation run, and what is written back.

    [[rules]]
    name = "provision-application"
    on = ["leanix.factsheet.created", "leanix.factsheet.updated"]  # topic patterns
    dry_run = false                                  # log what it would do, start nothing
    when = { fact_sheet_type = "Application", tag = "automate",
             lifecycle_phase = "active", fields = { category = "applicationSystem" },
             workspace = "production" }             # [[leanix.workspaces]] name or id
    start = { vendor = "uipath", target = { release_key = "..." },
              inputs = { factSheetId = "{{ fact_sheet.id }}", name = "{{ fact_sheet.name }}" },
              concurrency = 2 }        # runs of this target in flight at once; more wait
    coalesce = "30s"                   # events for one Fact Sheet within 30 s: one run
    write_back.comment = "{{ run.vendor }} run {{ run.id }}: {{ run.outcome }}"
    write_back.on_success = { fields = { description = "..." }, tags = ["provisioned"] }
    write_back.on_failure = { tags = ["provisioning-failed"] }

Rules are validated once at start-up; every error names the rule and the key.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from service.automation.templates import ROOTS, paths
from service.bus.topics import topic_matches
from service.errors import ConfigError
from service.store.ids import store_key
from service.vendors import registry

VENDORS: tuple[str, ...] = registry.names()  # a rule's `start.vendor`
_WHEN_KEYS = {"fact_sheet_type", "tag", "lifecycle_phase", "fields", "workspace"}
_OUTCOME_KEYS = {"fields", "tags", "lifecycle", "lx_state"}
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_COALESCE_S = 86400.0
MAX_CONCURRENCY = 10_000


@dataclass(frozen=True)
class Conditions:
    fact_sheet_types: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # all must be present
    lifecycle_phases: tuple[str, ...] = ()
    fields: Mapping[str, Any] = field(default_factory=dict)
    workspaces: tuple[str, ...] = ()  # names or workspaceIds ([[leanix.workspaces]])

    def hold(self, sheet: Mapping[str, Any]) -> bool:
        """Whether a flattened Fact Sheet meets every condition."""
        if self.fact_sheet_types and sheet.get("type") not in self.fact_sheet_types:
            return False
        if not set(self.tags) <= set(sheet.get("tags") or ()):
            return False
        if self.lifecycle_phases and sheet.get("lifecycle_phase") not in self.lifecycle_phases:
            return False
        values = sheet.get("fields") or {}
        return all(values.get(name) == wanted for name, wanted in self.fields.items())


@dataclass(frozen=True)
class Outcome:
    """What to write to the Fact Sheet for one outcome; values are templates."""

    fields: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    lifecycle: Mapping[str, str] = field(default_factory=dict)  # phase -> date
    lx_state: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.fields or self.tags or self.lifecycle or self.lx_state)


@dataclass(frozen=True)
class WriteBack:
    comment: str | None = None
    on_success: Outcome = Outcome()
    on_failure: Outcome = Outcome()


@dataclass(frozen=True)
class Rule:
    name: str
    patterns: tuple[str, ...]
    vendor: str
    target: Mapping[str, Any]
    inputs: Mapping[str, Any] = field(default_factory=dict)
    when: Conditions = Conditions()
    write_back: WriteBack = WriteBack()
    dry_run: bool = False
    concurrency: int | None = None  # runs of its target in flight at once (start.concurrency)
    coalesce_s: float | None = None  # one run per Fact Sheet per window (coalesce)

    @property
    def target_key(self) -> str:
        """What a target is known by: the vendor and its target table, whatever the key
        order (rules naming the same target share its slots)."""
        text = orjson.dumps(dict(self.target), option=orjson.OPT_SORT_KEYS).decode()
        return store_key(f"{self.vendor}:{text}")

    @property
    def waits(self) -> bool:
        """Whether its starts go through the waiting starts (service/automation/capacity.py)."""
        return not self.dry_run and (self.concurrency is not None or self.coalesce_s is not None)

    def matches(
        self,
        event_type: str,
        sheet: Mapping[str, Any] | None,
        workspace: Collection[str] = (),
    ) -> bool:
        """Whether this rule fires for an event of `event_type` about `sheet`, from the
        workspace called `workspace` (its name and id; empty if unknown)."""
        if not any(topic_matches(p, event_type) for p in self.patterns):
            return False
        if self.when.workspaces and not set(self.when.workspaces) & set(workspace):
            return False
        return sheet is not None and self.when.hold(sheet)


def load(raw_rules: tuple[Mapping[str, Any], ...]) -> tuple[Rule, ...]:
    """Validate the `[[rules]]` tables; ConfigError names the rule and key."""
    rules = tuple(_rule(raw, index) for index, raw in enumerate(raw_rules))
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise ConfigError(f"rules[{rule.name}].name", "two rules have this name")
        seen.add(rule.name)
    return _shared_limits(rules)


def _shared_limits(rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
    """Rules starting one target share its limit: two limits for it are an error, and a
    rule that sets none takes the one another rule sets."""
    limits: dict[str, tuple[int, str]] = {}
    for rule in rules:
        if rule.concurrency is None:
            continue
        other = limits.setdefault(rule.target_key, (rule.concurrency, rule.name))
        if other[0] != rule.concurrency:
            raise ConfigError(
                f"rules[{rule.name}].start.concurrency",
                f"rule {other[1]!r} starts the same target with concurrency = {other[0]}: "
                "rules sharing a target share its limit, set one value (or leave it to one rule)",
            )
    return tuple(
        replace(rule, concurrency=limits[rule.target_key][0])
        if rule.concurrency is None and rule.target_key in limits and not rule.dry_run
        else rule
        for rule in rules
    )


def limit_of(rules: tuple[Rule, ...], target_key: str) -> tuple[tuple[str, ...], int | None]:
    """The rules that start a target, and how many of its runs may be in flight at once."""
    starting = [rule for rule in rules if rule.target_key == target_key]
    limits = {rule.concurrency for rule in starting if rule.concurrency is not None}
    return tuple(rule.name for rule in starting), min(limits) if limits else None


def _rule(raw: Mapping[str, Any], index: int) -> Rule:
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"rules[{index}].name", "every rule needs a name")
    key = f"rules[{name}]"
    _only(raw, {"name", "on", "dry_run", "when", "start", "write_back", "coalesce"}, key)
    start = _table(raw.get("start"), f"{key}.start", required=True)
    _only(start, {"vendor", "target", "inputs", "concurrency"}, f"{key}.start")
    vendor = _vendor(start.get("vendor"), f"{key}.start.vendor")
    target = _target(start.get("target"), vendor, f"{key}.start.target")
    inputs = _table(start.get("inputs"), f"{key}.start.inputs")
    rule = Rule(
        name=name,
        patterns=_patterns(raw.get("on"), f"{key}.on"),
        vendor=vendor,
        target=target,
        inputs=inputs,
        when=_conditions(_table(raw.get("when"), f"{key}.when"), f"{key}.when"),
        write_back=_write_back(_table(raw.get("write_back"), f"{key}.write_back"), key),
        dry_run=_bool(raw.get("dry_run", False), f"{key}.dry_run"),
        concurrency=_concurrency(start.get("concurrency"), f"{key}.start.concurrency"),
        coalesce_s=_duration(raw.get("coalesce"), f"{key}.coalesce"),
    )
    _check_templates(raw, key)
    return rule


def _only(table: Mapping[str, Any], allowed: set[str], key: str) -> None:
    for name in table:
        if name not in allowed:
            raise ConfigError(f"{key}.{name}", f"unknown key (expected one of {sorted(allowed)})")


def _table(value: Any, key: str, required: bool = False) -> dict[str, Any]:
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(key, "must be a table" + (" and is required" if required else ""))
    return dict(value)


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise ConfigError(key, "must be a string or a list of strings")
    return tuple(values)


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, "must be true or false")
    return value


def _concurrency(value: Any, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise ConfigError(key, f"must be a whole number of runs, 1 to {MAX_CONCURRENCY}")
    return value


def _duration(value: Any, key: str) -> float | None:
    """A window: seconds as a number, or a string such as "500ms", "30s", "5m", "1h"."""
    if value is None:
        return None
    seconds = _seconds(value)
    if seconds is None or not 0 < seconds <= MAX_COALESCE_S:
        raise ConfigError(
            key, 'must be a duration up to 24 h: seconds, or a string such as "30s" or "5m"'
        )
    return seconds


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    unit = next((u for u in ("ms", "s", "m", "h") if text.endswith(u)), None)
    if unit is None:
        return None
    try:
        return float(text[: -len(unit)]) * _UNITS[unit]
    except ValueError:
        return None


def _patterns(value: Any, key: str) -> tuple[str, ...]:
    patterns = _strings(value, key) or ("leanix.factsheet.*",)
    for pattern in patterns:
        if not pattern.startswith(("leanix.", "#", "*")) or ".." in pattern:
            raise ConfigError(key, f"{pattern!r} is not a pattern of LeanIX event types")
    return patterns


def _vendor(value: Any, key: str) -> str:
    if value not in VENDORS:
        raise ConfigError(key, f"must be one of {', '.join(VENDORS)}")
    return str(value)


def _target(value: Any, vendor: str, key: str) -> dict[str, Any]:
    """The platform's own check of the target (service/vendors/<vendor>/)."""
    target = _table(value, key, required=True)
    registry.platform(vendor).running.check_target(target, key)
    return target


def _conditions(when: Mapping[str, Any], key: str) -> Conditions:
    _only(when, _WHEN_KEYS, key)
    return Conditions(
        fact_sheet_types=_strings(when.get("fact_sheet_type"), f"{key}.fact_sheet_type"),
        tags=_strings(when.get("tag"), f"{key}.tag"),
        lifecycle_phases=_strings(when.get("lifecycle_phase"), f"{key}.lifecycle_phase"),
        fields=_table(when.get("fields"), f"{key}.fields"),
        workspaces=_strings(when.get("workspace"), f"{key}.workspace"),
    )


def _write_back(raw: Mapping[str, Any], key: str) -> WriteBack:
    key = f"{key}.write_back"
    _only(raw, {"comment", "on_success", "on_failure"}, key)
    comment = raw.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise ConfigError(f"{key}.comment", "must be a string")
    return WriteBack(
        comment=comment,
        on_success=_outcome(
            _table(raw.get("on_success"), f"{key}.on_success"), f"{key}.on_success"
        ),
        on_failure=_outcome(
            _table(raw.get("on_failure"), f"{key}.on_failure"), f"{key}.on_failure"
        ),
    )


def _outcome(raw: Mapping[str, Any], key: str) -> Outcome:
    _only(raw, _OUTCOME_KEYS, key)
    lx_state = raw.get("lx_state")
    if lx_state is not None and not isinstance(lx_state, str):
        raise ConfigError(f"{key}.lx_state", "must be a string")
    return Outcome(
        fields=_table(raw.get("fields"), f"{key}.fields"),
        tags=_strings(raw.get("tags"), f"{key}.tags"),
        lifecycle=_table(raw.get("lifecycle"), f"{key}.lifecycle"),
        lx_state=lx_state,
    )


def _check_templates(raw: Mapping[str, Any], key: str) -> None:
    for path in paths(raw):
        if path.split(".")[0] not in ROOTS:
            raise ConfigError(key, f"template {{{{ {path} }}}}: starts with one of {sorted(ROOTS)}")


def check_workspaces(rules: tuple[Rule, ...], known: Collection[str]) -> None:
    """Every `when.workspace` names a configured workspace (by name or id); with the
    single-workspace configuration (`known` empty) any workspaceId is taken."""
    for rule in rules:
        unknown = [w for w in rule.when.workspaces if known and w not in known]
        if unknown:
            raise ConfigError(
                f"rules[{rule.name}].when.workspace",
                f"{unknown[0]!r} is no workspace of [[leanix.workspaces]] (name or id)",
            )


def check_clients(rules: tuple[Rule, ...], vendors: Collection[str], leanix: bool) -> None:
    """Every rule that will run has its vendor's client, and LeanIX to write back to."""
    for rule in rules:
        if rule.dry_run:
            continue
        if rule.vendor not in vendors:
            raise ConfigError(
                f"rules[{rule.name}].start.vendor",
                f"the {rule.vendor} client is not configured: set its credentials in "
                f"[clients.{rule.vendor}] or the environment (see config/default.toml)",
            )
        if not leanix:
            raise ConfigError(
                f"rules[{rule.name}]",
                "writing back needs the LeanIX client: set clients.leanix.api_token "
                "($LEANIX_API_TOKEN)",
            )
