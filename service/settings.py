"""Frozen, typed settings, loaded once at start-up.

Layers, later wins: the defaults below, the TOML file named by `SERVICE_CONFIG`, then
environment variables. Each field carries its documentation and its environment variable
(service/config.py), from which `config/default.toml` is generated (`make config`). A
wrong value stops start-up with a ConfigError naming the key. Secrets are kept out of
reprs; nothing else in the service reads `os.environ`.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from service import config
from service.callback_tokens import MIN_KEY_CHARS
from service.config import setting
from service.errors import ConfigError

MODES = ("all", "receiver", "worker")  # what `python -m service` serves
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "default.toml"
HEADER = """\
Every setting of the service, with its default. Generated from service/settings.py by
`make config` (`python -m service settings defaults`): edit the fields' documentation
there, not here.

Layers, later wins: these defaults, the TOML file named by $SERVICE_CONFIG, then the
environment variables named beside each key. Lists from the environment are
comma-separated. An unknown key or a wrong value stops start-up with a message that names
the key."""


@dataclass(frozen=True)
class HttpSettings:
    host: str = setting("0.0.0.0", env="HTTP_HOST")
    port: int = setting(8080, "0 = pick a free port", env="HTTP_PORT")
    max_body_bytes: int = setting(
        25 * 1024 * 1024, "25 MiB: LeanIX payloads can reach 20 MB; larger bodies get 413"
    )
    publish_timeout_s: float = setting(
        5.0, "wait this long for the broker's confirm, then answer 503"
    )
    retry_after_s: int = setting(5, "Retry-After sent with a 503")
    shutdown_grace_s: float = setting(
        30.0, "on SIGTERM, time to finish in-flight requests and handlers"
    )
    event_loop: str = setting(
        "uvloop", "uvloop (faster; falls back if absent) or asyncio", env="EVENT_LOOP"
    )
    processes: int = setting(
        1, "receiver processes sharing the port (0 = one per CPU)", env="HTTP_PROCESSES"
    )
    max_inflight_body_bytes: int = setting(
        64 * 1024 * 1024,
        "Body bytes one process holds at once (requests being read or published). A request "
        "that would go over gets 503 + Retry-After before its body is read (a chunked body "
        "counts as max_body_bytes). A 25 MiB body costs ~65 MB while it is handled (the "
        "body, the CloudEvent made of it, the broker's frames): 64 MiB admits two at a time, "
        "and with an idle receiver's ~70 MB and the connections of 200 clients it stayed at "
        "~250 MB in tests/hostile/test_receiver_memory.py, under the 512 Mi a container gets.",
    )
    header_timeout_s: float = setting(
        10.0, "a connection's request headers must all arrive within this"
    )
    body_timeout_s: float = setting(30.0, "a request's body must all arrive within this, else 408")
    keepalive_timeout_s: float = setting(
        75.0,
        "idle keep-alive connections close after this (keep it above your load balancer's "
        "idle timeout)",
    )
    max_connections: int = setting(512, "open connections per process; more are closed at once")

    @property
    def process_count(self) -> int:
        return self.processes or os.cpu_count() or 1


@dataclass(frozen=True)
class AmqpSettings:
    url: str = setting(
        "amqp://guest:guest@127.0.0.1:5672/",
        "the password never appears in logs; several nodes of a cluster: comma-separated "
        "URLs, tried in turn",
        env="AMQP_URL",
        secret=True,
    )
    exchange: str = setting(
        "events", "durable topic exchange the events go to", env="AMQP_EXCHANGE"
    )
    queue: str = setting(
        "bridge.worker", 'durable work queue of the worker, bound with "#"', env="AMQP_QUEUE"
    )
    queue_type: str = setting("quorum", "quorum or classic")
    delivery_limit: int = setting(20, "quorum queues: redeliveries before the broker dead-letters")
    connect_retry_s: float = setting(2.0, "pause between attempts to reach the broker")
    publisher: str = setting(
        "fast", "fast (hand-encoded, batched; only on a proven aiormq) or aio-pika"
    )

    @property
    def urls(self) -> tuple[str, ...]:
        """The broker URLs, one per cluster node, in the order they are tried."""
        return split_urls(self.url)

    @property
    def safe_url(self) -> str:
        """The broker URL(s) with any password masked, for logs."""
        return ",".join(redact_url(url) for url in self.urls)

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.exchange}.dead"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}.dead"


@dataclass(frozen=True)
class LeanixSource:
    authorization: tuple[str, ...] = setting(
        (),
        "Accepted values of the Authorization header (the subscription's "
        'authorizationHeader), e.g. "Basic dXNlcjpwYXNz". Several, so one can be rotated '
        "without downtime.",
        env="LEANIX_WEBHOOK_AUTHORIZATION",
        secret=True,
    )


@dataclass(frozen=True)
class HmacSource:
    secrets: tuple[str, ...] = setting((), env="{table}_WEBHOOK_SECRET", secret=True)


@dataclass(frozen=True)
class CallbackSource:
    secrets: tuple[str, ...] = setting(
        (), "Standard Webhooks secrets (whsec_...)", env="{table}_CALLBACK_SECRET", secret=True
    )


@dataclass(frozen=True)
class SourcesSettings:
    timestamp_tolerance_s: int = setting(
        300, "Standard Webhooks: accepted clock skew of webhook-timestamp"
    )
    callback_signing_keys: tuple[str, ...] = setting(
        (),
        "Keys of each Leapwork / Workato run's own callback token (callback_tokens.py; 32+ "
        "characters, e.g. from `openssl rand -base64 32`): the first signs new runs' tokens, "
        "all verify. Needed by the worker (to give each run its token) and the receiver (to "
        "check it); never sent anywhere. Required when callback_base_url is set and a "
        "Leapwork or Workato client is configured.",
        env="CALLBACK_SIGNING_KEY",
        secret=True,
    )
    leanix: LeanixSource = LeanixSource()
    uipath: HmacSource = setting(HmacSource(), "The Orchestrator webhook's secret(s).")
    robocorp: HmacSource = setting(HmacSource(), "The Control Room webhook / callback secret(s).")
    leapwork: CallbackSource = CallbackSource()
    workato: CallbackSource = CallbackSource()


@dataclass(frozen=True)
class LeanixApi:
    base_url: str = setting(
        "https://app.leanix.net", "https://<subdomain>.leanix.net", env="LEANIX_BASE_URL"
    )
    api_token: str = setting(
        "", "a technical user's API token", env="LEANIX_API_TOKEN", secret=True
    )
    rate_limit_rps: float = setting(
        30.0, "client-side limit; LeanIX allows 1800 requests/min per user"
    )
    rate_limit_shared: bool = setting(
        True,
        "LeanIX limits each user: every worker with this API token shares one bucket, kept "
        "in the store. false: each process keeps its own (rate_limit_rps per process).",
    )
    timeout_s: float = 30.0
    ignore_user_ids: tuple[str, ...] = setting(
        (),
        "Events caused by these LeanIX users are ignored (our own write-backs); the technical "
        "user behind api_token is added automatically once its token is known.",
    )


@dataclass(frozen=True)
class LeapworkApi:
    base_url: str = setting(
        "http://localhost:9001", "the Controller's REST API", env="LEAPWORK_BASE_URL"
    )
    access_key: str = setting("", env="LEAPWORK_ACCESS_KEY", secret=True)
    timeout_s: float = 30.0


@dataclass(frozen=True)
class RobocorpApi:
    base_url: str = setting("https://cloud.robocorp.com/api/v1", env="ROBOCORP_BASE_URL")
    api_key: str = setting("", 'sent as "RC-WSKEY <key>"', env="ROBOCORP_API_KEY", secret=True)
    workspace_id: str = setting("", env="ROBOCORP_WORKSPACE_ID")
    timeout_s: float = 30.0


@dataclass(frozen=True)
class UipathApi:
    base_url: str = setting(
        "", "https://cloud.uipath.com/<org>/<tenant>/orchestrator_", env="UIPATH_BASE_URL"
    )
    identity_url: str = setting(
        "https://cloud.uipath.com/identity_/connect/token", env="UIPATH_IDENTITY_URL"
    )
    client_id: str = setting(
        "", "an external application (client credentials)", env="UIPATH_CLIENT_ID"
    )
    client_secret: str = setting("", env="UIPATH_CLIENT_SECRET", secret=True)
    scopes: str = setting(
        "OR.Jobs",
        'space-separated, the least the calls need (README "UiPath scopes"); or '
        '"OR.Jobs.Read OR.Jobs.Write"',
        env="UIPATH_SCOPES",
    )
    folder_id: int = setting(0, "sent as X-UIPATH-OrganizationUnitId", env="UIPATH_FOLDER_ID")
    timeout_s: float = 30.0


@dataclass(frozen=True)
class WorkatoApi:
    api_token: str = setting(
        "", "API Platform token, sent as API-TOKEN", env="WORKATO_API_TOKEN", secret=True
    )
    timeout_s: float = 60.0
    developer_api_url: str = setting(
        "https://www.workato.com/api",
        "The Developer API, to poll the jobs of a rule's recipe (start.target.recipe_id): an "
        "API client's token (Authorization: Bearer; the legacy x-user-email/x-user-token keys "
        "are refused since 2025-07-14) and its data centre's URL (EU "
        "https://app.eu.workato.com/api, JP https://app.jp.workato.com/api, SG, AU, IL: "
        "app.<dc>.workato.com/api).",
        env="WORKATO_DEVELOPER_API_URL",
    )
    developer_api_token: str = setting(
        "", "empty: no polling", env="WORKATO_DEVELOPER_API_TOKEN", secret=True
    )
    run_deadline_s: float = setting(
        86400.0, "a run not completed a day after its start is written back as timed out"
    )


@dataclass(frozen=True)
class ClientsSettings:
    leanix: LeanixApi = LeanixApi()
    leapwork: LeapworkApi = LeapworkApi()
    robocorp: RobocorpApi = RobocorpApi()
    uipath: UipathApi = UipathApi()
    workato: WorkatoApi = WorkatoApi()


@dataclass(frozen=True)
class WorkerSettings:
    prefetch: int = setting(32, "unacknowledged events in flight per worker process")
    handler_modules: tuple[str, ...] = setting(
        (), "your modules with @handler functions, imported at start", env="HANDLER_MODULES"
    )
    handler_timeout_s: float = setting(
        300.0, "a handler running longer is cancelled and its event retried"
    )
    retry_delays_s: tuple[float, ...] = setting(
        (5.0, 30.0, 120.0, 600.0, 3600.0),
        "Delays before each retry of a failed event (RetryLater, vendor outages, timeouts), "
        "with jitter; after the last one the event is dead-lettered.",
        env="RETRY_DELAYS_S",
    )
    claim_lease_s: float = setting(
        10.0,
        "An idempotent handler's claim on an event lapses this long after its worker last "
        "renewed it (renewed every third of it while the handler runs): a dead worker's "
        "events are taken over this soon after RabbitMQ redelivers them.",
    )


@dataclass(frozen=True)
class AutomationSettings:
    callback_base_url: str = setting(
        "",
        "The public base URL of this service, given to vendors for run-completion callbacks "
        "(https://bridge.example.com -> https://bridge.example.com/callbacks/<vendor>). "
        "Empty: no callbacks are requested and runs complete by polling alone.",
        env="CALLBACK_BASE_URL",
    )
    poll_initial_s: float = setting(30.0, "first status poll of a started run, then doubling...")
    poll_max_s: float = setting(600.0, "...up to this interval")
    poll_interval_s: float = setting(1.0, "how often the worker looks for runs due a poll")
    ignore_own_events: bool = setting(True, "ignore LeanIX events caused by our own technical user")


@dataclass(frozen=True)
class EventLogSettings:
    enabled: bool = True
    retention_days: float = setting(30.0, "events last updated longer ago are deleted")
    max_data_bytes: int = setting(
        65536, "events with larger payloads are logged without their data"
    )


@dataclass(frozen=True)
class StoreSettings:
    url: str = setting(
        "sqlite+aiosqlite:///var/bridge.sqlite3",
        "sqlite+aiosqlite:///<path> (relative to the working directory; embedded, one worker "
        "host) or postgresql+asyncpg://user:password@host:5432/bridge (several workers; the "
        "password is never logged).",
        env="STORE_URL",
        secret=True,
    )
    connect_retry_s: float = setting(2.0, "start-up waits for the store: pause between attempts")


@dataclass(frozen=True)
class LogSettings:
    level: str = setting("info", "debug, info, warning or error", env="LOG_LEVEL")
    format: str = setting(
        "auto", "auto (console on a terminal, else JSON), json or console", env="LOG_FORMAT"
    )


@dataclass(frozen=True)
class Settings:
    http: HttpSettings = HttpSettings()
    amqp: AmqpSettings = AmqpSettings()
    sources: SourcesSettings = SourcesSettings()
    worker: WorkerSettings = WorkerSettings()
    clients: ClientsSettings = setting(
        ClientsSettings(),
        "Outbound APIs. A client without its credential is not started; rules that need it "
        "fail validation at start-up, naming the rule.",
    )
    automation: AutomationSettings = AutomationSettings()
    store: StoreSettings = setting(
        StoreSettings(), "Where started runs and handled events are recorded."
    )
    eventlog: EventLogSettings = setting(
        EventLogSettings(),
        "Every event a worker takes and every handling attempt, searchable in the admin API.",
    )
    log: LogSettings = LogSettings()
    rules: tuple[dict, ...] = setting(  # type: ignore[type-arg]  # validated by automation.rules
        (),
        "Rules: which LeanIX events start which run, and what is written back ([[rules]] "
        "tables, validated by automation/rules.py). See config/rules.example.toml; put yours "
        "in the file named by $SERVICE_CONFIG.",
    )


# Environment variable -> dotted key. List values are comma-separated.
ENVIRONMENT: Mapping[str, str] = config.environment(Settings)

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


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from the defaults, the TOML file and the environment."""
    env = os.environ if environ is None else environ
    tree: dict[str, Any] = {}
    extra = env.get("SERVICE_CONFIG")
    if extra:
        config.merge(tree, config.read_toml(Path(extra), "SERVICE_CONFIG"))
    for name, dotted in REMOVED_ENVIRONMENT.items():
        if env.get(name, "").strip():
            raise ConfigError(f"{dotted} (from ${name})", REMOVED[dotted])
    config.merge(tree, config.from_environment(Settings, env))
    return from_mapping(tree)


def from_mapping(tree: Mapping[str, Any]) -> Settings:
    """Validate a nested mapping (as read from TOML) into Settings."""
    settings = config.build(Settings, tree, REMOVED)
    _validate(settings)
    return settings


def defaults_toml() -> str:
    """config/default.toml: every key with its default, documentation and variable."""
    return config.render_toml(Settings, HEADER)


def split_urls(urls: str) -> tuple[str, ...]:
    """The URLs of a comma-separated list (a comma inside one is written %2C)."""
    return tuple(url.strip() for url in urls.split(",") if url.strip())


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


def _validate(s: Settings) -> None:
    _require(0 <= s.http.port <= 65535, "http.port", "must be between 0 and 65535")
    _require(s.http.max_body_bytes > 0, "http.max_body_bytes", "must be positive")
    _require(s.http.publish_timeout_s > 0, "http.publish_timeout_s", "must be positive")
    _require(s.http.retry_after_s >= 1, "http.retry_after_s", "must be at least 1")
    _require(s.http.shutdown_grace_s >= 0, "http.shutdown_grace_s", "must not be negative")
    _require(s.http.event_loop in {"uvloop", "asyncio"}, "http.event_loop", "uvloop or asyncio")
    _require(0 <= s.http.processes <= 64, "http.processes", "must be between 0 and 64")
    _validate_http_bounds(s.http)
    _require(bool(s.amqp.urls), "amqp.url", "names no broker: amqp://user:password@host:5672/")
    for url in s.amqp.urls:
        _check_amqp_url(url)
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
    "(# as %23, a comma as %2C, / as %2F, ? as %3F, @ as %40, : as %3A, % as %25, a space as %20)"
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
