"""Handler registry: topic patterns and registration."""

from __future__ import annotations

import pytest

from service.bus.topics import topic_matches
from service.cloudevent import CloudEvent
from service.errors import ConfigError
from service.worker.registry import (
    Context,
    Registry,
    idempotency_key,
    import_modules,
)


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("leanix.factsheet.*", "leanix.factsheet.updated", True),
        ("leanix.factsheet.*", "leanix.relation.updated", False),
        ("leanix.factsheet.*", "leanix.factsheet", False),
        ("leanix.#", "leanix.factsheet.updated", True),
        ("leanix.#", "leanix", True),
        ("#", "anything.at.all", True),
        ("*.job.*", "uipath.job.faulted", True),
        ("*.job.*", "uipath.job", False),
        ("#.completed", "robocorp.process_run.completed", True),
        ("uipath.#.faulted", "uipath.job.faulted", True),
        ("uipath.job.faulted", "uipath.job.faulted", True),
        ("uipath.job.faulted", "uipath.job.faulted.x", False),
    ],
)
def test_topic_matching(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected


async def noop(event: CloudEvent, context: Context) -> None:
    return None


def test_match_returns_handlers_in_registration_order() -> None:
    registry = Registry()

    @registry.handler("leanix.#")
    async def first(event: CloudEvent, context: Context) -> None: ...

    registry.add("leanix.factsheet.updated", noop, name="second")
    registry.add("uipath.#", noop, name="other")
    names = [r.name for r in registry.match("leanix.factsheet.updated")]
    assert names == [f"{__name__}.{first.__qualname__}", "second"]
    assert registry.match("workato.job.completed") == []


@pytest.mark.parametrize("pattern", ["", "a..b", ".a"])
def test_rejects_invalid_patterns(pattern: str) -> None:
    with pytest.raises(ValueError):
        Registry().add(pattern, noop)


def test_a_handler_module_that_cannot_be_imported_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="worker.handler_modules"):
        import_modules(["no_such_module_for_the_bridge"])


def test_a_pattern_full_of_hashes_is_matched_in_linear_time() -> None:
    pattern = ".".join(["#"] * 200) + ".x"
    assert not topic_matches(pattern, ".".join("abcdefghijklmnopqrstuvwxyz"))
    assert topic_matches(pattern, "a.b.x")


def test_the_idempotency_key_is_stable_per_event_and_handler() -> None:
    key = idempotency_key("e-1", "h")
    assert key == idempotency_key("e-1", "h")  # every delivery, every worker
    assert len(key) == 36  # a UUID: fits any vendor's reference field
    others = {idempotency_key("e-2", "h"), idempotency_key("e-1", "g"), idempotency_key("e", "1/h")}
    assert key not in others and len(others) == 3
    assert idempotency_key("a/b", "c") != idempotency_key("a", "b/c")


def test_a_store_transaction_needs_an_idempotent_handler() -> None:
    context = Context()
    with pytest.raises(RuntimeError, match="idempotent=True"):
        context.transaction()
