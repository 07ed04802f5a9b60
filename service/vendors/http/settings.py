"""Settings of the `http` platform: named credentials bound to hosts, callback secrets,
timeouts. Frozen and checked once at start-up; no secret is ever in a repr or an error.

    [clients.http]
    timeout_s = 30.0
    run_deadline_s = 86400.0          # an open run this old is written back as timed out
    plain_http_hosts = []             # hosts that may be called over http:// (tests, localhost)

    [clients.http.credentials.n8n]    # named by a rule: start.target.credential = "n8n"
    hosts = ["n8n.example.com"]       # the only hosts these headers are ever sent to
    headers = { "X-N8N-API-KEY" = "..." }
    # or all credentials as JSON in $HTTP_CREDENTIALS: {"n8n": {"hosts": [...], "headers": {...}}}

    [sources.http]
    secrets = ["whsec_..."]           # Standard Webhooks secrets of /callbacks/http

A rule names a credential; it never holds one, and event data cannot choose one.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from service.errors import ConfigError

# A header name as RFC 9110 allows it (a token); values are checked for control bytes.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
HOST = re.compile(r"[a-z0-9.-]+(:[0-9]{1,5})?\Z|\[[0-9a-f:.]+\](:[0-9]{1,5})?\Z")
KEY = "clients.http"


@dataclass(frozen=True)
class Credential:
    """Secret headers, and the hosts they may be sent to."""

    name: str
    hosts: frozenset[str]
    headers: Mapping[str, str] = field(repr=False)

    def allows(self, host: str, port: int | None) -> bool:
        """Whether these headers may go to `host` (listed alone, or as `host:port`)."""
        host = host.lower()
        return host in self.hosts or f"{host}:{port}" in self.hosts


@dataclass(frozen=True)
class HttpApi:
    """`[clients.http]`: how the `http` platform calls endpoints and checks callbacks."""

    timeout_s: float = 30.0
    run_deadline_s: float = 86400.0
    plain_http_hosts: tuple[str, ...] = ()
    # name -> {hosts, headers}; a JSON object when it comes from $HTTP_CREDENTIALS
    credentials: Mapping[str, Any] | str = field(default_factory=dict, repr=False)

    def credential(self, name: str) -> Credential | None:
        """The credential called `name`, or None."""
        return named_credentials(self).get(name)

    def plain_http(self, host: str) -> bool:
        """Whether `host` may be called over plain http (never outside tests/localhost)."""
        return host.lower() in {h.lower() for h in self.plain_http_hosts}


@dataclass(frozen=True)
class HttpSource:
    """`[sources.http]`: the Standard Webhooks secrets the endpoints sign callbacks with."""

    secrets: tuple[str, ...] = field(default=(), repr=False)


ENVIRONMENT: Mapping[str, str] = {
    "HTTP_CREDENTIALS": "clients.http.credentials",
    "HTTP_PLAIN_HTTP_HOSTS": "clients.http.plain_http_hosts",
    "HTTP_CALLBACK_SECRET": "sources.http.secrets",
}


def named_credentials(api: HttpApi) -> dict[str, Credential]:
    """Every credential, checked; ConfigError names the key (never a value)."""
    raw = api.credentials
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ConfigError(f"{KEY}.credentials", "$HTTP_CREDENTIALS is not JSON") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{KEY}.credentials", "must be a table of named credentials")
    return {str(name): _credential(str(name), value) for name, value in raw.items()}


def validate(api: HttpApi, source: HttpSource) -> None:
    """Refuse settings that cannot work, naming the key (never echoing a secret)."""
    if api.timeout_s <= 0:
        raise ConfigError(f"{KEY}.timeout_s", "must be positive")
    if api.run_deadline_s <= 0:
        raise ConfigError(f"{KEY}.run_deadline_s", "must be positive")
    for secret in source.secrets:
        _whsec(secret, "sources.http.secrets")
    named_credentials(api)


def _credential(name: str, raw: Any) -> Credential:
    key = f"{KEY}.credentials.{name}"
    if not isinstance(raw, Mapping) or set(raw) - {"hosts", "headers"}:
        raise ConfigError(key, "must be a table with `hosts` (a list) and `headers` (a table)")
    hosts = raw.get("hosts")
    if not isinstance(hosts, list | tuple) or not hosts:
        raise ConfigError(f"{key}.hosts", "list the hosts these headers may be sent to")
    for host in hosts:
        if not isinstance(host, str) or not HOST.match(host.lower()):
            raise ConfigError(f"{key}.hosts", "each entry is a host name, e.g. n8n.example.com")
    headers = raw.get("headers")
    if not isinstance(headers, Mapping) or not headers:
        raise ConfigError(f"{key}.headers", "must be a table of header names to secret values")
    for header, value in headers.items():
        _header(header, value, f"{key}.headers")
    return Credential(name, frozenset(h.lower() for h in hosts), dict(headers))


def _header(name: Any, value: Any, key: str) -> None:
    if not isinstance(name, str) or not HEADER_NAME.match(name):
        raise ConfigError(key, "a header name may hold letters, digits and !#$%&'*+.^_`|~-")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}.{name}", "must be a non-empty string")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ConfigError(f"{key}.{name}", "holds a control character (a line break?)")


def _whsec(secret: str, key: str) -> None:
    try:
        raw = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except ValueError:
        raise ConfigError(key, "a Standard Webhooks secret is whsec_<base64>") from None
    if len(raw) < 16:
        raise ConfigError(key, "secret too short: use at least 24 random bytes")
