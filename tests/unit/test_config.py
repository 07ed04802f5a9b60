"""The settings machinery, on dataclasses defined anywhere (make_dataclass included)."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass

import pytest

from service import config
from service.config import setting
from service.errors import ConfigError


@dataclass(frozen=True)
class Api:
    token: str = setting("", "the API token", env="{table}_TOKEN", secret=True)
    timeout_s: float = setting(30.0, "seconds")


Clients = dataclasses.make_dataclass(
    "Clients",
    [(name, Api, setting(Api(), f"The {name} API.")) for name in ("alpha", "beta")],
    frozen=True,
)
Root = dataclasses.make_dataclass(
    "Root", [("clients", Clients, dataclasses.field(default=Clients()))], frozen=True
)


def test_environment_follows_the_fields_and_their_tables() -> None:
    assert config.environment(Root) == {
        "ALPHA_TOKEN": "clients.alpha.token",
        "BETA_TOKEN": "clients.beta.token",
    }
    tree = config.from_environment(Root, {"BETA_TOKEN": "PWbeta"})
    built = config.build(Root, tree, {})
    assert built.clients.beta.token == "PWbeta"
    assert "PWbeta" not in repr(built)


def test_generated_toml_loads_back_to_the_defaults() -> None:
    text = config.render_toml(Root, "A header.")
    assert "# The alpha API.\n" in text and "# $ALPHA_TOKEN: the API token" in text
    assert config.build(Root, tomllib.loads(text), {}) == Root()


def test_unknown_and_removed_keys() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        config.build(Root, {"clients": {"alpha": {"tokn": "x"}}}, {})
    removed = {"clients.alpha.key": "use clients.alpha.token"}
    with pytest.raises(ConfigError, match="use clients.alpha.token"):
        config.build(Root, {"clients": {"alpha": {"key": "PWold"}}}, removed)
    assert config.build(Root, {"clients": {"alpha": {"key": ""}}}, removed) == Root()
