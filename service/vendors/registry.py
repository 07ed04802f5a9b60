"""Registry: the automation platforms the service knows, one line each.

Every other layer asks this module (`PLATFORMS`, `platform(name)`, `names()`) and never
imports a platform's package itself. Adding a platform: its folder under
`service/vendors/`, exporting `PLATFORM` (adapter.py), and its line in `PACKAGES`.
"""

from __future__ import annotations

from importlib import import_module

from service.vendors.adapter import AnyPlatform, SharedKeys, SourcesTable

PACKAGES = (
    "service.vendors.leapwork",
    "service.vendors.robocorp",
    "service.vendors.uipath",
    "service.vendors.workato",
    "service.vendors.http",
)

PLATFORMS: tuple[AnyPlatform, ...] = tuple(import_module(p).PLATFORM for p in PACKAGES)
_BY_NAME: dict[str, AnyPlatform] = {p.name: p for p in PLATFORMS}


def names() -> tuple[str, ...]:
    """The platforms' names, in registry order (a rule's `start.vendor` is one of them)."""
    return tuple(_BY_NAME)


def platform(name: str) -> AnyPlatform:
    """The platform called `name`; KeyError if there is none."""
    return _BY_NAME[name]


def find(name: str) -> AnyPlatform | None:
    """The platform called `name`, or None."""
    return _BY_NAME.get(name)


def shared_keys(sources: SourcesTable) -> SharedKeys:
    """What every platform's callback check shares, from `[sources]`."""
    return SharedKeys.of(sources)
