"""Frozen, typed settings, loaded once at start-up.

Layers, later wins: the defaults below, `config/default.toml`, the TOML file named by
`SERVICE_CONFIG`, then environment variables. A wrong value stops start-up with a
ConfigError naming the key. Secrets are kept out of reprs; nothing else in the service
reads `os.environ`.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from service.callback_tokens import MIN_KEY_CHARS
from service.errors import ConfigError

MODES = ("all", "receiver", "worker")  # what `python -m service` serves
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "default.toml"


def _secrets() -> Any:
    return field(default=(), repr=False)


@dataclass(frozen=True)
class HttpSettings:
    host: str = "0.0.0.0"
    port: int = 8080
    max_body_bytes: int = 25 * 1024 * 1024
    publish_timeout_s: float = 5.0
    retry_after_s: int = 5
    shutdown_grace_s: float = 30.0
    event_loop: str = "uvloop"  # or "asyncio"
    processes: int = 1  # receiver processes sharing the port; 0 = one per CPU
    # Body bytes one process may hold at once (requests being read or published); a
    # request that would go over is answered 503 + Retry-After before its body is read.
    max_inflight_body_bytes: int = 64 * 1024 * 1024
    header_timeout_s: float = 10.0  # a connection's request headers must arrive within this
    body_timeout_s: float = 30.0  # a request's body must arrive within this
    keepalive_timeout_s: float = 75.0  # an idle keep-alive connection is closed after this
    max_connections: int = 512  # open connections per process; more are closed at once

    @property
    def process_count(self) -> int:
        return self.processes or os.cpu_count() or 1


@dataclass(frozen=True)
class AmqpSettings:
    url: str = field(default="amqp://guest:guest@127.0.0.1:5672/", repr=False)
    exchange: str = "events"
    queue: str = "bridge.worker"
    queue_type: str = "quorum"
    delivery_limit: int = 20
    connect_retry_s: float = 2.0
    publisher: str = "fast"

    @property
    def safe_url(self) -> str:
        """The broker URL with any password masked, for logs."""
        return redact_url(self.url)

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.exchange}.dead"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}.dead"


@dataclass(frozen=True)
class LeanixSource:
    authorization: tuple[str, ...] = _secrets()


@dataclass(frozen=True)
class HmacSource:
    secrets: tuple[str, ...] = _secrets()


@dataclass(frozen=True)
class CallbackSource:
    secrets: tuple[str, ...] = _secrets()


@dataclass(frozen=True)
class SourcesSettings:
    timestamp_tolerance_s: int = 300
    leanix: LeanixSource = LeanixSource()
    uipath: HmacSource = HmacSource()
    robocorp: HmacSource = HmacSource()
    leapwork: CallbackSource = CallbackSource()
    workato: CallbackSource = CallbackSource()
    # Keys of the Leapwork and Workato runs' own callback tokens (callback_tokens.py): the
    # first signs, all verify. Needed by the worker (to give each run its token) and the
    # receiver (to check it); never sent anywhere.
    callback_signing_keys: tuple[str, ...] = _secrets()


@dataclass(frozen=True)
class LeanixApi:
    base_url: str = "https://app.leanix.net"
    api_token: str = field(default="", repr=False)
    rate_limit_rps: float = 30.0
    # LeanIX limits each user: every worker with this API token shares one bucket in the
    # store. False: each process keeps its own (rate_limit_rps per process).
    rate_limit_shared: bool = True
    timeout_s: float = 30.0
    # Events caused by these LeanIX users are ignored (our own write-backs); the technical
    # user behind api_token is added automatically once its token is known.
    ignore_user_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class LeapworkApi:
    base_url: str = "http://localhost:9001"
    access_key: str = field(default="", repr=False)
    timeout_s: float = 30.0


@dataclass(frozen=True)
class RobocorpApi:
    base_url: str = "https://cloud.robocorp.com/api/v1"
    api_key: str = field(default="", repr=False)
    workspace_id: str = ""
    timeout_s: float = 30.0


@dataclass(frozen=True)
class UipathApi:
    base_url: str = ""  # https://cloud.uipath.com/{organization}/{tenant}/orchestrator_
    identity_url: str = "https://cloud.uipath.com/identity_/connect/token"
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    # Space-separated; the least the calls need (README "UiPath scopes"). OR.Jobs.Read
    # plus OR.Jobs.Write does as well.
    scopes: str = "OR.Jobs"
    folder_id: int = 0
    timeout_s: float = 30.0


@dataclass(frozen=True)
class WorkatoApi:
    api_token: str = field(default="", repr=False)
    timeout_s: float = 60.0
    # The Developer API (an API client's token), to poll a rule's recipe for its jobs;
    # per data centre: https://app.eu.workato.com/api, https://app.jp.workato.com/api, ...
    developer_api_url: str = "https://www.workato.com/api"
    developer_api_token: str = field(default="", repr=False)
    # A run not completed this long after its start is written back as timed out.
    run_deadline_s: float = 86400.0


@dataclass(frozen=True)
class ClientsSettings:
    leanix: LeanixApi = LeanixApi()
    leapwork: LeapworkApi = LeapworkApi()
    robocorp: RobocorpApi = RobocorpApi()
    uipath: UipathApi = UipathApi()
    workato: WorkatoApi = WorkatoApi()


@dataclass(frozen=True)
class WorkerSettings:
    prefetch: int = 32
    handler_modules: tuple[str, ...] = ()
    handler_timeout_s: float = 300.0
    retry_delays_s: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0, 3600.0)
    # An idempotent handler's claim lapses this long after its worker last renewed it
    # (every third of it while the handler runs): how soon a dead worker's work is taken over.
    claim_lease_s: float = 10.0


@dataclass(frozen=True)
class AutomationSettings:
    # The public base URL of this service, for vendors' callbacks (e.g.
    # https://bridge.example.com); empty: no callbacks are requested, runs are polled.
    callback_base_url: str = ""
    poll_initial_s: float = 30.0
    poll_max_s: float = 600.0
    poll_interval_s: float = 1.0
    ignore_own_events: bool = True


@dataclass(frozen=True)
class EventLogSettings:
    enabled: bool = True
    retention_days: float = 30.0
    max_data_bytes: int = 65536  # larger payloads are logged without their data


@dataclass(frozen=True)
class StoreSettings:
    # sqlite+aiosqlite:///<path> (embedded, one worker host) or
    # postgresql+asyncpg://user:password@host/db (several workers).
    url: str = field(default="sqlite+aiosqlite:///var/bridge.sqlite3", repr=False)
    connect_retry_s: float = 2.0  # start-up: pause between attempts to reach the store


@dataclass(frozen=True)
class LogSettings:
    level: str = "info"
    format: str = "auto"


@dataclass(frozen=True)
class Settings:
    http: HttpSettings = HttpSettings()
    amqp: AmqpSettings = AmqpSettings()
    sources: SourcesSettings = SourcesSettings()
    worker: WorkerSettings = WorkerSettings()
    clients: ClientsSettings = ClientsSettings()
    store: StoreSettings = StoreSettings()
    eventlog: EventLogSettings = EventLogSettings()
    automation: AutomationSettings = AutomationSettings()
    log: LogSettings = LogSettings()
    rules: tuple[dict, ...] = ()  # type: ignore[type-arg]  # validated by automation.rules


# Environment variable -> dotted key. List values are comma-separated.
ENVIRONMENT: Mapping[str, str] = {
    "HTTP_HOST": "http.host",
    "HTTP_PORT": "http.port",
    "EVENT_LOOP": "http.event_loop",
    "HTTP_PROCESSES": "http.processes",
    "AMQP_URL": "amqp.url",
    "AMQP_EXCHANGE": "amqp.exchange",
    "AMQP_QUEUE": "amqp.queue",
    "STORE_URL": "store.url",
    "CALLBACK_BASE_URL": "automation.callback_base_url",
    "LOG_LEVEL": "log.level",
    "LOG_FORMAT": "log.format",
    "HANDLER_MODULES": "worker.handler_modules",
    "RETRY_DELAYS_S": "worker.retry_delays_s",
    "LEANIX_WEBHOOK_AUTHORIZATION": "sources.leanix.authorization",
    "UIPATH_WEBHOOK_SECRET": "sources.uipath.secrets",
    "ROBOCORP_WEBHOOK_SECRET": "sources.robocorp.secrets",
    "LEAPWORK_CALLBACK_SECRET": "sources.leapwork.secrets",
    "WORKATO_CALLBACK_SECRET": "sources.workato.secrets",
    "CALLBACK_SIGNING_KEY": "sources.callback_signing_keys",
    "LEANIX_BASE_URL": "clients.leanix.base_url",
    "LEANIX_API_TOKEN": "clients.leanix.api_token",
    "LEAPWORK_BASE_URL": "clients.leapwork.base_url",
    "LEAPWORK_ACCESS_KEY": "clients.leapwork.access_key",
    "ROBOCORP_BASE_URL": "clients.robocorp.base_url",
    "ROBOCORP_API_KEY": "clients.robocorp.api_key",
    "ROBOCORP_WORKSPACE_ID": "clients.robocorp.workspace_id",
    "UIPATH_BASE_URL": "clients.uipath.base_url",
    "UIPATH_IDENTITY_URL": "clients.uipath.identity_url",
    "UIPATH_CLIENT_ID": "clients.uipath.client_id",
    "UIPATH_CLIENT_SECRET": "clients.uipath.client_secret",
    "UIPATH_FOLDER_ID": "clients.uipath.folder_id",
    "UIPATH_SCOPES": "clients.uipath.scopes",
    "WORKATO_API_TOKEN": "clients.workato.api_token",
    "WORKATO_DEVELOPER_API_URL": "clients.workato.developer_api_url",
    "WORKATO_DEVELOPER_API_TOKEN": "clients.workato.developer_api_token",
}


_STATIC_TOKENS = (
    "static callback tokens are no longer accepted: one token shared by every run let "
    "anyone who saw it forge the completion of any run. Remove it and set "
    "sources.callback_signing_keys ($CALLBACK_SIGNING_KEY): each run then gets its own token"
)
# Removed settings: a value given for one stops start-up, saying what to do instead.
REMOVED: Mapping[str, str] = {
    "sources.leapwork.tokens": _STATIC_TOKENS,
    "sources.workato.tokens": _STATIC_TOKENS,
}
REMOVED_ENVIRONMENT: Mapping[str, str] = {
    "LEAPWORK_CALLBACK_TOKEN": "sources.leapwork.tokens",
    "WORKATO_CALLBACK_TOKEN": "sources.workato.tokens",
}


def load(environ: Mapping[str, str] | None = None, default_file: Path = DEFAULT_CONFIG) -> Settings:
    """Build the settings from the TOML layers and the environment."""
    env = os.environ if environ is None else environ
    tree: dict[str, Any] = {}
    if default_file.exists():
        _merge(tree, _read_toml(default_file, "config/default.toml"))
    extra = env.get("SERVICE_CONFIG")
    if extra:
        _merge(tree, _read_toml(Path(extra), "SERVICE_CONFIG"))
    for name, dotted in ENVIRONMENT.items():
        if name in env:
            _set_dotted(tree, dotted, env[name], name)
    for name, dotted in REMOVED_ENVIRONMENT.items():
        if env.get(name, "").strip():
            raise ConfigError(f"{dotted} (from ${name})", REMOVED[dotted])
    return from_mapping(tree)


def from_mapping(tree: Mapping[str, Any]) -> Settings:
    """Validate a nested mapping (as read from TOML) into Settings."""
    settings = _build(Settings, tree, "")
    assert isinstance(settings, Settings)
    _validate(settings)
    return settings


def redact_url(url: str) -> str:
    """Mask the password of a URL, whatever its characters.

    A URL whose user information does not parse cleanly (a raw `#`, `/` or `?` in the
    password ends the authority early) has everything between `user:` and its last `@`
    masked, so no part of a password survives however the URL is written.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return _redact_raw(url)
    if "@" not in parts.netloc:
        return _redact_raw(url)  # no password, unless its "@" is beyond a raw "#", "/" or "?"
    if "@" in url[url.index(parts.netloc) + len(parts.netloc) :]:
        return _redact_raw(url)  # an "@" after the authority: part of the password may be there
    userinfo, _, host = parts.netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}" if colon else parts.netloc))


def _redact_raw(url: str) -> str:
    """Mask from after `user:` up to the URL's last `@` (there is no password without one)."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    if "@" not in rest:
        return url
    userinfo, _, after = rest.rpartition("@")
    user = userinfo.partition(":")[0]
    return f"{scheme}{separator}{user}:***@{after}"


def _read_toml(path: Path, key: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(key, f"file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(key, f"{path} is not valid TOML: {exc}") from None


def _merge(into: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


def _set_dotted(tree: dict[str, Any], dotted: str, raw: str, env_name: str) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = _EnvValue(raw, env_name)


@dataclass(frozen=True)
class _EnvValue:
    """A raw string from the environment, converted once its target type is known."""

    raw: str
    name: str


def _build(cls: type[Any], data: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(prefix.rstrip(".") or "<root>", "must be a table")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            _unknown(f"{prefix}{key}", data[key])
    values = {}
    for name in known & data.keys():
        values[name] = _convert(hints[name], data[name], f"{prefix}{name}")
    return cls(**values)


def _unknown(key: str, value: Any) -> None:
    """Refuse a key the settings do not have; a removed one left empty is let pass."""
    if key in REMOVED and not value:
        return
    raise ConfigError(key, REMOVED.get(key, "unknown setting"))


def _convert(hint: Any, value: Any, key: str) -> Any:
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, f"{key}.")
    if isinstance(value, _EnvValue):
        key = f"{key} (from ${value.name})"
        value = _from_env(hint, value.raw, key)
    return _check_type(hint, value, key)


def _from_env(hint: Any, raw: str, key: str) -> Any:
    if hint is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(key, f"expected an integer, got {raw!r}") from None
    if hint is float:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(key, f"expected a number, got {raw!r}") from None
    if typing.get_origin(hint) is tuple:
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def _check_type(hint: Any, value: Any, key: str) -> Any:
    if typing.get_origin(hint) is tuple:
        return _check_list(typing.get_args(hint)[0], value, key)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    expected = hint if isinstance(hint, type) else None
    if expected is None or isinstance(hint, types.UnionType):
        return value
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        raise ConfigError(key, f"expected {expected.__name__}, got {type(value).__name__}")
    return value


def _check_list(item: type, value: Any, key: str) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise ConfigError(key, f"expected a list of {item.__name__}")
    if item is float:
        value = [_number(v, key) for v in value]
    elif item is dict:
        if not all(isinstance(v, dict) for v in value):
            raise ConfigError(key, "expected a list of tables ([[rules]])")
    elif not all(isinstance(v, item) for v in value):
        raise ConfigError(key, f"expected a list of {item.__name__}")
    return tuple(value)


def _number(value: Any, key: str) -> float:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ConfigError(key, f"expected numbers, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(key, "expected a list of numbers")
    return float(value)


def _validate(s: Settings) -> None:
    _require(0 <= s.http.port <= 65535, "http.port", "must be between 0 and 65535")
    _require(s.http.max_body_bytes > 0, "http.max_body_bytes", "must be positive")
    _require(s.http.publish_timeout_s > 0, "http.publish_timeout_s", "must be positive")
    _require(s.http.retry_after_s >= 1, "http.retry_after_s", "must be at least 1")
    _require(s.http.shutdown_grace_s >= 0, "http.shutdown_grace_s", "must not be negative")
    _require(s.http.event_loop in {"uvloop", "asyncio"}, "http.event_loop", "uvloop or asyncio")
    _require(0 <= s.http.processes <= 64, "http.processes", "must be between 0 and 64")
    _validate_http_bounds(s.http)
    _check_amqp_url(s.amqp.url)
    _check_store_url(s.store.url)
    _require(bool(s.amqp.exchange), "amqp.exchange", "must not be empty")
    _require(bool(s.amqp.queue), "amqp.queue", "must not be empty")
    _require(s.amqp.queue_type in {"quorum", "classic"}, "amqp.queue_type", "quorum or classic")
    _require(s.amqp.delivery_limit >= 1, "amqp.delivery_limit", "must be at least 1")
    _require(s.amqp.publisher in {"fast", "aio-pika"}, "amqp.publisher", "fast or aio-pika")
    _require(s.worker.prefetch >= 1, "worker.prefetch", "must be at least 1")
    _require(s.worker.handler_timeout_s > 0, "worker.handler_timeout_s", "must be positive")
    _require(s.worker.claim_lease_s >= 0.1, "worker.claim_lease_s", "must be at least 0.1 s")
    _require(
        all(d >= 0.001 for d in s.worker.retry_delays_s),
        "worker.retry_delays_s",
        "delays must be at least 0.001 s",
    )
    _require(s.log.format in {"auto", "json", "console"}, "log.format", "auto, json or console")
    levels = {"debug", "info", "warning", "error"}
    _require(s.log.level.lower() in levels, "log.level", "debug, info, warning or error")
    _require(s.sources.timestamp_tolerance_s > 0, "sources.timestamp_tolerance_s", "positive")
    _require(s.clients.leanix.rate_limit_rps > 0, "clients.leanix.rate_limit_rps", "positive")
    _require(bool(s.clients.uipath.scopes.split()), "clients.uipath.scopes", "e.g. OR.Jobs")
    _require(s.store.connect_retry_s > 0, "store.connect_retry_s", "must be positive")
    _require(s.eventlog.retention_days > 0, "eventlog.retention_days", "must be positive")
    _require(s.eventlog.max_data_bytes >= 0, "eventlog.max_data_bytes", "must not be negative")
    auto = s.automation
    _require(auto.poll_initial_s > 0, "automation.poll_initial_s", "must be positive")
    _require(auto.poll_max_s >= auto.poll_initial_s, "automation.poll_max_s", ">= poll_initial_s")
    _require(auto.poll_interval_s > 0, "automation.poll_interval_s", "must be positive")
    base = auto.callback_base_url
    _require(
        not base or base.startswith(("http://", "https://")),
        "automation.callback_base_url",
        "an http(s) URL",
    )
    for name in ("leanix", "leapwork", "robocorp", "uipath", "workato"):
        timeout = getattr(s.clients, name).timeout_s
        _require(timeout > 0, f"clients.{name}.timeout_s", "must be positive")
    _validate_workato(s.clients.workato)
    _validate_callback_keys(s)
    _validate_credentials(s.sources)


def _validate_http_bounds(http: HttpSettings) -> None:
    _require(
        http.max_inflight_body_bytes >= http.max_body_bytes,
        "http.max_inflight_body_bytes",
        "must be at least http.max_body_bytes, or a body of the largest size is never read",
    )
    for name in ("header_timeout_s", "body_timeout_s", "keepalive_timeout_s"):
        _require(getattr(http, name) > 0, f"http.{name}", "must be positive")
    _require(http.max_connections >= 1, "http.max_connections", "must be at least 1")


def _validate_credentials(sources: SourcesSettings) -> None:
    """An empty or blank credential would let a request without one in: refuse to start."""
    keys = [("leanix", "authorization"), ("uipath", "secrets"), ("robocorp", "secrets")]
    keys += [("leapwork", "secrets"), ("workato", "secrets")]
    named = [
        (f"sources.{name}.{kind}", getattr(getattr(sources, name), kind)) for name, kind in keys
    ]
    named.append(("sources.callback_signing_keys", sources.callback_signing_keys))
    for key, values in named:
        _require(
            all(value.strip() for value in values),
            key,
            "holds an empty or whitespace-only credential: remove it or give a real value",
        )
    for name in ("leapwork", "workato"):
        for secret in getattr(sources, name).secrets:
            _check_whsec(secret, f"sources.{name}.secrets")


def _validate_workato(workato: WorkatoApi) -> None:
    url = workato.developer_api_url
    key = "clients.workato.developer_api_url"
    _require(url.startswith(("http://", "https://")), key, "an http(s) URL")
    _require(workato.run_deadline_s > 0, "clients.workato.run_deadline_s", "must be positive")


def _validate_callback_keys(s: Settings) -> None:
    """Strong keys, and one whenever Leapwork or Workato runs are asked to call back."""
    key = "sources.callback_signing_keys"
    for value in s.sources.callback_signing_keys:
        problem = f"a key needs {MIN_KEY_CHARS}+ characters: e.g. `openssl rand -base64 32`"
        _require(len(value) >= MIN_KEY_CHARS, key, problem)
    clients = {"leapwork": s.clients.leapwork.access_key, "workato": s.clients.workato.api_token}
    asked = [name for name, credential in clients.items() if credential]
    if s.automation.callback_base_url and asked and not s.sources.callback_signing_keys:
        raise ConfigError(
            key,
            f"{' and '.join(asked)} runs are asked to call back to "
            "automation.callback_base_url, each with its own token signed by this key: set "
            "$CALLBACK_SIGNING_KEY (e.g. `openssl rand -base64 32`), or leave "
            "callback_base_url empty to complete runs by polling",
        )


# Never echoes the URL: it holds a password.
_PERCENT_ENCODE = (
    "cannot be parsed: percent-encode the user name, the password and any @ after the host "
    "(# as %23, / as %2F, ? as %3F, @ as %40, : as %3A, % as %25, a space as %20)"
)


def _check_amqp_url(url: str) -> None:
    """A URL that parses one way only: a raw `#`, `/` or `?` in the password would end the
    authority early, so the password would be taken for a host, a port or a path."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError:
        raise ConfigError("amqp.url", _PERCENT_ENCODE) from None
    _require(parts.scheme in {"amqp", "amqps"}, "amqp.url", "must start with amqp:// or amqps://")
    _require("@" not in parts.path + parts.query + parts.fragment, "amqp.url", _PERCENT_ENCODE)
    _require(bool(parts.hostname), "amqp.url", "names no host: amqp://user:password@host:5672/")


def _check_store_url(url: str) -> None:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "store.url", "not a database URL: sqlite+aiosqlite:///<file> or "
            "postgresql+asyncpg://user:password@host:5432/db"
        ) from None  # fmt: skip
    # SQLAlchemy ends the password at its first "@": the rest would be taken for the host.
    _require("@" not in (parsed.host or ""), "store.url", _PERCENT_ENCODE)


def _check_whsec(secret: str, key: str) -> None:
    body = secret.removeprefix("whsec_")
    try:
        raw = base64.b64decode(body, validate=True)
    except ValueError:
        raise ConfigError(key, "a Standard Webhooks secret is whsec_<base64>") from None
    _require(len(raw) >= 16, key, "secret too short: use at least 24 random bytes")


def _require(ok: bool, key: str, problem: str) -> None:
    if not ok:
        raise ConfigError(key, problem)
