"""The handler kit: typed state, services that never hand out None, lifespans, include."""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

import service
from service import CloudEvent, Context, Registry, Services, State, StateKey
from service.errors import ConfigError
from service.worker.registry import open_lifespans

NAME: StateKey[str] = StateKey("test.name")
COUNT = StateKey("test.count", int)


async def noop(event: CloudEvent, context: Context) -> None:
    return None


def test_the_state_returns_what_was_set_and_names_a_missing_key() -> None:
    state = State()
    state[NAME] = "inventory"
    assert state[NAME] == "inventory" and NAME in state and COUNT not in state
    assert state.get(COUNT) is None and state.get(COUNT, 7) == 7
    with pytest.raises(KeyError, match=r"test\.count.*@lifespan"):
        state[COUNT]


def test_the_state_is_read_only_once_frozen() -> None:
    state = State()
    state.freeze()
    with pytest.raises(RuntimeError, match="in a lifespan"):
        state[NAME] = "late"


def test_a_client_not_configured_is_a_config_error_naming_its_setting() -> None:
    context = Context()
    with pytest.raises(ConfigError, match=r"clients\.leanix\.api_token"):
        context.leanix  # noqa: B018
    with pytest.raises(ConfigError, match=r"clients\.uipath"):
        context.services.run_client("uipath")
    assert context.run_clients == {}


def test_a_context_holds_no_settings() -> None:
    assert not hasattr(Context(), "settings")
    assert "api_token" not in repr(Context())


async def test_lifespans_open_in_order_close_in_reverse_and_then_the_state_is_frozen() -> None:
    registry = Registry()
    seen: list[str] = []

    def recorder(name: str) -> Any:
        async def lifespan(services: Services) -> AsyncIterator[None]:
            seen.append(f"open {name}")
            services.state[StateKey(name, str)] = name
            yield
            seen.append(f"close {name}")

        return lifespan

    registry.lifespan(recorder("a"))
    registry.lifespan(recorder("b"))
    services = Services()
    async with AsyncExitStack() as stack:
        await open_lifespans(registry, services, stack)
        assert seen == ["open a", "open b"]
        with pytest.raises(RuntimeError):
            services.state[NAME] = "late"
    assert seen == ["open a", "open b", "close b", "close a"]


async def test_a_failing_lifespan_closes_those_opened_before_it() -> None:
    registry = Registry()
    seen: list[str] = []

    @registry.lifespan
    async def first(services: Services) -> AsyncIterator[None]:
        try:
            yield
        finally:  # an error is thrown in at the yield, like any async context manager
            seen.append("closed first")

    @registry.lifespan
    async def broken(services: Services) -> AsyncIterator[None]:
        raise RuntimeError("cannot open")
        yield

    with pytest.raises(RuntimeError, match="cannot open"):
        async with AsyncExitStack() as stack:
            await open_lifespans(registry, Services(), stack)
    assert seen == ["closed first"]


def test_a_registry_is_included_once_with_its_lifespans() -> None:
    mine = Registry()
    mine.add("leanix.#", noop, name="mine")

    @mine.lifespan
    async def opened(services: Services) -> AsyncIterator[None]:
        yield

    target = Registry()
    target.include(mine)
    target.include(mine)
    assert [r.name for r in target.registrations] == ["mine"]
    assert target.lifespans == [opened]
    clash = Registry()
    clash.add("#", noop, name="mine")
    with pytest.raises(ValueError, match="already registered"):
        clash.include(mine)


def test_the_kit_is_exported() -> None:
    kit = {"Context", "Services", "State", "StateKey", "Registry", "handler", "include", "lifespan"}
    assert kit <= set(service.__all__)


def test_the_automation_uses_the_kit_through_the_front_door_only() -> None:
    """The built-in automation is a handler module like a user's: it imports the kit from
    `service`, never the worker's modules."""
    folder = Path(service.__file__).parent / "automation"
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        inward = sorted(m for m in modules if m and m.startswith("service.worker"))
        assert not inward, f"{path.name} imports {inward}: use `from service import ...`"


def test_the_service_never_imports_its_testing_module() -> None:
    root = Path(service.__file__).parent
    for path in sorted(root.rglob("*.py")):
        if path.name != "testing.py":
            assert "service.testing" not in path.read_text(encoding="utf-8"), path
