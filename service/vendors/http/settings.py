"""Settings of the `http` platform: named credentials bound to hosts, callback secrets,
timeouts. Checked once at start-up; no secret is ever in a repr or an error.

    [clients.http]
    timeout_s = 30.0
    run_deadline_s = 86400.0          # an open run this old is written back as timed out
    plain_http_hosts = []             # hosts that may be called over http:// (tests, localhost)

    [[clients.http.credentials]]      # named by a rule: start.target.credential = "n8n"
    name = "n8n"
    hosts = ["n8n.example.com"]       # the only hosts these headers are ever sent to
    headers = { "X-N8N-API-KEY" = "..." }
    # or as JSON in $HTTP_CREDENTIALS: [{"name": "n8n", "hosts": [...], "headers": {...}}]

    [sources.http]
    secrets = ["whsec_..."]           # Standard Webhooks secrets of /callbacks/http

A rule names a credential; it never holds one, and event data cannot choose one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from service.config import setting
from service.errors import ConfigError
from service.vendors.tables import CallbackSource, positive, real_credentials
from service.vendors.tables import standard_webhooks_secrets as whsec_secrets

# A header name as RFC 9110 allows it (a token); values are checked for control bytes.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
HOST = re.compile(r"[a-z0-9.-]+(:[0-9]{1,5})?\Z")
KEY = "clients.http"


@dataclass(frozen=True)
class Credential:
    """Secret headers, and the hosts they may be sent to."""

    name: str
    hosts: tuple[str, ...]
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    def allows(self, host: str, port: int | None) -> bool:
        """Whether these headers may go to `host` (listed alone, or as `host:port`)."""
        hosts = {h.lower() for h in self.hosts}
        return host.lower() in hosts or f"{host.lower()}:{port}" in hosts


@dataclass(frozen=True)
class HttpApi:
    """`[clients.http]`: how the `http` platform calls endpoints."""

    timeout_s: float = 30.0
    run_deadline_s: float = setting(
        86400.0, "a run not completed a day after its start is written back as timed out"
    )
    plain_http_hosts: tuple[str, ...] = setting(
        (),
        "hosts that may be called over plain http:// (tests, a sidecar on localhost); "
        "every other endpoint must be https://",
        env="HTTP_PLAIN_HTTP_HOSTS",
    )
    credentials: tuple[Credential, ...] = setting(
        (),
        "[[clients.http.credentials]] tables: name (what a rule's start.target.credential "
        "says), hosts (the only hosts, or host:port, its headers are sent to) and headers "
        "(secret header values, e.g. an API key or Authorization)",
        secret=True,
    )
    credentials_json: str = setting(
        "",
        'more credentials, as a JSON list: [{"name": ..., "hosts": [...], "headers": {...}}]',
        env="HTTP_CREDENTIALS",
        secret=True,
    )

    def plain_http(self, host: str) -> bool:
        """Whether `host` may be called over plain http (never outside tests/localhost)."""
        return host.lower() in {h.lower() for h in self.plain_http_hosts}


HttpSource = CallbackSource  # [sources.http] secrets: $HTTP_CALLBACK_SECRET


def named_credentials(api: HttpApi) -> dict[str, Credential]:
    """Every credential by name, checked; ConfigError names the key (never a value)."""
    found: dict[str, Credential] = {}
    for index, credential in enumerate((*api.credentials, *_from_json(api.credentials_json))):
        key = f"{KEY}.credentials[{credential.name or index}]"
        _check(credential, key)
        if credential.name in found:
            raise ConfigError(key, "two credentials have this name")
        found[credential.name] = credential
    return found


def validate(api: HttpApi, source: CallbackSource) -> None:
    """Refuse settings that cannot work, naming the key (never echoing a secret)."""
    positive(api.timeout_s, f"{KEY}.timeout_s")
    positive(api.run_deadline_s, f"{KEY}.run_deadline_s")
    real_credentials(source.secrets, "sources.http.secrets")
    whsec_secrets(source.secrets, "sources.http.secrets")
    named_credentials(api)


def _from_json(text: str) -> list[Credential]:
    key = f"{KEY}.credentials_json (from $HTTP_CREDENTIALS)"
    if not text.strip():
        return []
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ConfigError(key, "is not JSON") from None
    if not isinstance(raw, list) or not all(isinstance(item, Mapping) for item in raw):
        raise ConfigError(key, 'must be a list of {"name", "hosts", "headers"} objects')
    return [_credential(item, key) for item in raw]


def _credential(raw: Mapping[str, Any], key: str) -> Credential:
    if set(raw) != {"name", "hosts", "headers"}:
        raise ConfigError(key, 'each credential has exactly "name", "hosts" and "headers"')
    hosts, headers = raw["hosts"], raw["headers"]
    if not isinstance(hosts, list) or not isinstance(headers, Mapping):
        raise ConfigError(key, '"hosts" is a list, "headers" an object')
    return Credential(str(raw["name"]), tuple(map(str, hosts)), dict(headers))


def _check(credential: Credential, key: str) -> None:
    if not credential.name.strip():
        raise ConfigError(f"{key}.name", "every credential needs a name")
    if not credential.hosts:
        raise ConfigError(f"{key}.hosts", "list the hosts these headers may be sent to")
    for host in credential.hosts:
        if not HOST.match(host.lower()):
            raise ConfigError(f"{key}.hosts", "each is a host name (or host:port), no scheme")
    if not credential.headers:
        raise ConfigError(f"{key}.headers", "a table of header names to secret values")
    for name, value in credential.headers.items():
        _header(name, value, f"{key}.headers")


def _header(name: str, value: Any, key: str) -> None:
    if not HEADER_NAME.match(name):
        raise ConfigError(key, "a header name may hold letters, digits and !#$%&'*+.^_`|~-")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}.{name}", "must be a non-empty string")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ConfigError(f"{key}.{name}", "holds a control character (a line break?)")
