"""Rules: `start.concurrency` and `coalesce` (issue 13, the downstream's capacity)."""

from __future__ import annotations

from typing import Any

import pytest

from service.automation import rules
from service.errors import ConfigError


def rule(name: str = "r", target: str = "rk", **overrides: Any) -> dict[str, Any]:
    start = {"vendor": "uipath", "target": {"release_key": target}}
    start.update(overrides.pop("start", {}))
    return {"name": name, "on": "leanix.factsheet.*", "start": start, **overrides}


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30s", 30.0), ("500ms", 0.5), ("5m", 300.0), ("1h", 3600.0), (2, 2.0), (0.25, 0.25),
     (" 10S ", 10.0)],
)  # fmt: skip
def test_a_window_is_a_duration(value: Any, seconds: float) -> None:
    (loaded,) = rules.load((rule(coalesce=value),))
    assert loaded.coalesce_s == seconds
    assert loaded.waits


@pytest.mark.parametrize("value", ["30", "soon", "-1s", "0s", 0, True, "25h", "nans", [1], "1d"])
def test_a_wrong_window_names_its_key(value: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        rules.load((rule(coalesce=value),))
    assert caught.value.key == "rules[r].coalesce"
    assert "duration" in str(caught.value)


@pytest.mark.parametrize("value", [0, -1, 1.5, "2", True, 10_001])
def test_a_wrong_concurrency_names_its_key(value: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        rules.load((rule(start={"concurrency": value}),))
    assert caught.value.key == "rules[r].start.concurrency"


def test_a_rule_without_either_starts_at_once() -> None:
    (loaded,) = rules.load((rule(),))
    assert loaded.concurrency is None and loaded.coalesce_s is None and not loaded.waits


def test_a_dry_run_never_waits() -> None:
    (loaded,) = rules.load((rule(dry_run=True, coalesce="1s", start={"concurrency": 1}),))
    assert not loaded.waits


def test_rules_starting_one_target_share_its_limit() -> None:
    loaded = rules.load((rule("a", start={"concurrency": 2}), rule("b"), rule("c", target="other")))
    a, b, c = loaded
    assert a.target_key == b.target_key != c.target_key
    assert b.concurrency == 2 and b.waits  # b takes a's limit: its runs use the same slots
    assert c.concurrency is None
    assert rules.limit_of(loaded, a.target_key) == (("a", "b"), 2)
    assert rules.limit_of(loaded, c.target_key) == (("c",), None)


def test_a_target_is_the_same_whatever_its_key_order() -> None:
    one = rules.load((rule(start={"target": {"release_key": "rk", "folder_id": 1}}),))[0]
    two = rules.load((rule(start={"target": {"folder_id": 1, "release_key": "rk"}}),))[0]
    assert one.target_key == two.target_key


def test_two_limits_for_one_target_are_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        rules.load((rule("a", start={"concurrency": 2}), rule("b", start={"concurrency": 3})))
    assert caught.value.key == "rules[b].start.concurrency"
    assert "'a'" in str(caught.value) and "concurrency = 2" in str(caught.value)
