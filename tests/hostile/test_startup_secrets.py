"""The AMQP password never reaches the output, whatever its characters: a URL that cannot
be parsed is refused without echoing it; one that can is logged with the password masked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from service.settings import from_mapping
from service.simulators.lab import free_port
from tests.conftest import AMQP_URL, delete_topology, settings_tree
from tests.hostile.startup_process import running, service_env

pytestmark = pytest.mark.integration

BROKER = make_url(AMQP_URL.replace("amqp://", "postgresql://"))  # just to read host and port
WHERE = f"{BROKER.host}:{BROKER.port or 5672}"


@pytest.fixture
async def cleanup(prefix: str) -> AsyncIterator[None]:
    yield
    await delete_topology(from_mapping(settings_tree(prefix)))


@pytest.mark.parametrize("raw", ["PWa#PWb", "PWa/PWb", "PWa?PWb", "12#PWa"])
async def test_a_raw_reserved_character_is_refused_without_echoing_the_url(
    raw: str, prefix: str, tmp_path: Path
) -> None:
    env = service_env(prefix, free_port(), f"sqlite+aiosqlite:///{tmp_path}/s.sqlite3")
    env["AMQP_URL"] = f"amqp://guest:{raw}@{WHERE}/"
    async with running("receiver", env) as service:
        assert await service.exit_code(timeout_s=30) == 2
    assert b"amqp.url" in service.output and b"%23" in service.output
    assert b"PW" not in service.output
    assert b"Traceback" not in service.output


async def test_an_encoded_password_is_masked_in_every_line(
    prefix: str, tmp_path: Path, cleanup: None
) -> None:
    encoded = "PWa%23PWb%2FPWc%3FPWd%40PWe"  # the broker refuses it: guest's password is guest
    env = service_env(prefix, free_port(), f"sqlite+aiosqlite:///{tmp_path}/s.sqlite3")
    env["AMQP_URL"] = f"amqp://guest:{encoded}@{WHERE}/"
    config = tmp_path / "service.toml"
    config.write_text("[amqp]\nconnect_retry_s = 0.2\n")  # the retry logged soon, not in 2 s
    env["SERVICE_CONFIG"] = str(config)
    async with running("receiver", env) as service:
        started = await service.wait_event("service.started")
        assert started["broker"] == f"amqp://guest:***@{WHERE}/"
        await service.wait_event("broker.unreachable", count=2)  # refused, and retried
        assert await service.stop() == 0
    assert b"PW" not in service.output
