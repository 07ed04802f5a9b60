"""The publisher setting and the fast path's contract with the aiormq it leans on.

The fast path writes into aiormq's private books. tests/integration/test_broker.py proves
it for the installed aiormq; these tests keep that proof honest: the range the fast path
trusts (publisher.PROVEN) is the one pyproject.toml pins, the installed aiormq is in it,
and outside it the service publishes through aio-pika instead, and says so.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import cast

import pytest
import structlog
from aio_pika.abc import AbstractChannel

from service.bus import fastpath, publisher
from service.errors import ConfigError
from service.settings import from_mapping

PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"
CHANNEL = cast(AbstractChannel, object())  # neither publisher touches it when built


def test_the_pinned_aiormq_is_the_proven_range() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pinned = [d.replace(" ", "") for d in dependencies if d.startswith("aiormq")]
    assert pinned == [f"aiormq>={publisher.PROVEN[0]},<{publisher.PROVEN[1]}"]


def test_the_installed_aiormq_is_proven() -> None:
    assert publisher.proven(), (
        "the installed aiormq is outside publisher.PROVEN: run tests/integration/test_broker.py "
        "with it, and widen PROVEN and the pin in pyproject.toml together if it passes"
    )


@pytest.mark.parametrize(
    ("installed", "trusted"),
    [("7.2.4", True), ("7.3", True), ("7.10.1", True), ("7.2.3", False), ("6.9.0", False),
     ("8.0.0", False), ("8.0.0rc1", False), ("garbage", False)],
)  # fmt: skip
def test_only_the_proven_range_is_trusted(installed: str, trusted: bool) -> None:
    assert publisher.proven(installed) is trusted


def test_each_setting_builds_its_publisher() -> None:
    assert isinstance(publisher.build("fast", CHANNEL), fastpath.FastPublisher)
    assert isinstance(publisher.build("aio-pika", CHANNEL), publisher.AioPikaPublisher)


def test_an_unproven_aiormq_falls_back_to_aio_pika_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(publisher, "proven", lambda installed=None: False)
    with structlog.testing.capture_logs() as logs:
        built = publisher.build("fast", CHANNEL)
    assert isinstance(built, publisher.AioPikaPublisher)
    (line,) = [e for e in logs if e["event"] == "broker.publisher_fallback"]
    assert line["log_level"] == "warning"
    assert 'amqp.publisher = "aio-pika"' in line["detail"]


def test_an_unknown_publisher_stops_start_up_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="amqp.publisher"):
        from_mapping({"amqp": {"publisher": "turbo"}})
