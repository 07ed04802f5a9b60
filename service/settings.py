"""Frozen, typed settings, loaded once at start-up.

Layers, later wins: the defaults below, the TOML file named by `SERVICE_CONFIG`, then
environment variables. Each field carries its documentation and its environment variable
(service/config.py), from which `config/default.toml` is generated (`make config`). A
wrong value stops start-up with a ConfigError naming the key. Secrets are kept out of
reprs; nothing else in the service reads `os.environ`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from service import config
from service.bus.settings import AmqpSettings
from service.callback_tokens import MIN_KEY_CHARS
from service.config import setting
from service.errors import ConfigError
from service.vendors import registry

MODES = ("all", "receiver", "worker", "pull")  # what `python -m service` serves
WORKSPACE_NAME = re.compile(r"[a-z0-9_]{1,40}")  # a [[leanix.workspaces]] name
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
class _Sources:
    """[sources]: LeanIX's and what every source shares; each platform's table is added
    from the registry (SourcesSettings, below)."""

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


@dataclass(frozen=True)
class LeanixMetrics:
    enabled: bool = setting(
        False,
        "Post a point per finished run to LeanIX's Metrics API (POST "
        "/services/metrics/v1/points), in the background: posting never delays or fails a "
        "write-back.",
        env="LEANIX_METRICS_ENABLED",
    )
    measurement: str = setting("automation_runs", "tags: factSheetId, vendor, rule, outcome")
    flush_interval_s: float = setting(5.0, "points wait this long, at most, to be posted")
    max_pending: int = setting(1000, "points held while LeanIX is down; beyond, the oldest drop")
    attempts: int = setting(3, "posts of one point that LeanIX failed (5xx, 429, timeout)")


@dataclass(frozen=True)
class LeanixApi:
    base_url: str = setting(
        "https://app.leanix.net", "https://<subdomain>.leanix.net", env="LEANIX_BASE_URL"
    )
    workspace_name: str = setting(
        "",
        "the workspace's name as in its URLs (<base_url>/<name>/factsheet/...): the console "
        "links Fact Sheets into LeanIX; empty: it shows their names without a link",
        env="LEANIX_WORKSPACE_NAME",
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
    metrics: LeanixMetrics = setting(LeanixMetrics(), "Run metrics, charted on LeanIX dashboards.")


@dataclass(frozen=True)
class LeanixWorkspace:
    name: str = setting("", "what rules (when.workspace) and logs call it: a-z, 0-9, _")
    id: str = setting("", "the workspaceId LeanIX puts in this workspace's events")
    base_url: str = setting("", "empty: clients.leanix.base_url")
    api_token: str = setting(
        "", "its technical user's API token; or $LEANIX_<NAME>_API_TOKEN", secret=True
    )
    authorization: tuple[str, ...] = setting(
        (),
        "the Authorization values of its webhook subscription; or "
        "$LEANIX_<NAME>_WEBHOOK_AUTHORIZATION",
        secret=True,
    )
    ignore_user_ids: tuple[str, ...] = ()
    pull_subscription_id: str = setting(
        "",
        "PULL: this workspace's subscription id, overriding the lookup of the subscription "
        "named subscriptions.leanix_identifier (as leanix_pull.subscription_id does for one)",
    )


@dataclass(frozen=True)
class LeanixSettings:
    workspaces: tuple[LeanixWorkspace, ...] = setting(
        (),
        "Several LeanIX workspaces served by one deployment ([[leanix.workspaces]] tables), "
        "each with its own API token, webhook Authorization values and technical user; an "
        "event's workspace is its workspaceId (CloudEvent source leanix:<id>). Empty: the "
        "one workspace of [clients.leanix] and [sources.leanix]. The other [clients.leanix] "
        "settings (rate limit, timeout, metrics) apply to every workspace.",
    )


@dataclass(frozen=True)
class _Clients:
    """[clients]: LeanIX's; each platform's table is added from the registry
    (ClientsSettings, below)."""

    leanix: LeanixApi = LeanixApi()


def _with_platforms(base: type, name: str, side: str) -> type:
    """`base` with one table per platform (service/vendors/registry.py), in its order."""
    tables = []
    for platform in registry.PLATFORMS:
        table = getattr(platform.tables, side)
        doc = getattr(platform.tables, f"{side}_doc")
        tables.append((platform.name, table, setting(table(), doc)))
    composed = dataclasses.make_dataclass(name, tables, bases=(base,), frozen=True)
    composed.__module__ = __name__
    return composed


if TYPE_CHECKING:  # what the core may read: LeanIX's and the shared keys
    ClientsSettings = _Clients
    SourcesSettings = _Sources
else:  # ask a platform for its own: registry.platform(name).client_settings(clients)
    ClientsSettings = _with_platforms(_Clients, "ClientsSettings", "client")
    SourcesSettings = _with_platforms(_Sources, "SourcesSettings", "source")


@dataclass(frozen=True)
class PullSettings:
    subscription_id: str = setting(
        "",
        "Optional override: the id of the LeanIX PULL subscription to pull. Empty: with "
        "subscriptions.leanix_delivery = PULL, each workspace's puller finds the subscription "
        "`subscriptions apply` made by its identifier (subscriptions.leanix_identifier). "
        "Either way `all` mode pulls too (`python -m service pull` pulls only).",
        env="LEANIX_PULL_SUBSCRIPTION_ID",
    )
    timeout_s: int = setting(10, "long-poll: LeanIX holds a fetch open up to this for events")
    batch_size: int = setting(
        100, "events published at once (a fetched batch larger than this is split)"
    )
    lease_s: float = setting(
        10.0, "one puller per subscription: a dead holder's lease is taken over after this"
    )
    retry_s: float = setting(2.0, "pause after a failed fetch, publish or commit")

    @property
    def enabled(self) -> bool:
        return bool(self.subscription_id)


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
    waiting_interval_s: float = setting(
        1.0,
        "how often the worker starts waiting starts now due (rules with start.concurrency or "
        "coalesce: a window closed, a slot freed elsewhere, a worker died)",
    )
    waiting_claim_s: float = setting(
        300.0,
        "a waiting start being started is held this long by its worker (one that died lets "
        "it go then); a run `starting` for longer no longer takes its target's slot",
    )


@dataclass(frozen=True)
class SubscriptionsSettings:
    leanix_identifier: str = setting(
        "leanix-bridge", "the LeanIX webhook subscription `subscriptions apply` manages"
    )
    leanix_delivery: str = setting(
        "PUSH",
        "PUSH (LeanIX posts to automation.callback_base_url/webhooks/leanix with "
        "sources.leanix.authorization) or PULL (the service fetches)",
        env="LEANIX_DELIVERY",
    )
    webhook_name: str = setting(
        "leanix-bridge", "the name of the webhooks it manages where they have one (UiPath)"
    )


@dataclass(frozen=True)
class ReconcileSettings:
    interval: str = setting(
        "",
        "Reconcile on a schedule in the worker (`all` or `worker` mode) this often, e.g. 15m "
        "or 1h (as `reconcile --apply`, every workspace); one replica at a time, under a "
        "lease in the store. Empty: never (run `python -m service reconcile` yourself).",
        env="RECONCILE_INTERVAL",
    )
    margin: str = setting(
        "5m", "each scheduled run looks back interval + margin, so no change falls between runs"
    )

    @property
    def interval_s(self) -> float | None:
        return duration_s(self.interval) if self.interval.strip() else None

    @property
    def margin_s(self) -> float:
        return duration_s(self.margin) or 0.0


_DURATION = re.compile(r"^([0-9]{1,9}(?:\.[0-9]{1,6})?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_s(value: str) -> float | None:
    """`90s`, `15m`, `2h`, `1d` in seconds; None if it is no such duration."""
    match = _DURATION.match(value.strip())
    return float(match.group(1)) * _UNITS[match.group(2)] if match else None


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
    amqp: AmqpSettings = setting(AmqpSettings())
    sources: SourcesSettings = setting(SourcesSettings())
    worker: WorkerSettings = WorkerSettings()
    leanix: LeanixSettings = LeanixSettings()
    clients: ClientsSettings = setting(
        ClientsSettings(),
        "Outbound APIs. A client without its credential is not started; rules that need it "
        "fail validation at start-up, naming the rule.",
    )
    automation: AutomationSettings = AutomationSettings()
    leanix_pull: PullSettings = setting(
        PullSettings(),
        "PULL delivery: fetch LeanIX webhook events instead of receiving them (no inbound port).",
    )
    subscriptions: SubscriptionsSettings = setting(
        SubscriptionsSettings(),
        "Webhook subscriptions made to match by `python -m service subscriptions apply`.",
    )
    reconcile: ReconcileSettings = setting(
        ReconcileSettings(),
        "Reconciliation: Fact Sheets changed without a recorded run, published again.",
    )
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
# Variables a platform names in `tables.env`, for fields declared without one.
_PLATFORM_ENVIRONMENT: Mapping[str, str] = {
    name: dotted for platform in registry.PLATFORMS for name, dotted in platform.tables.env.items()
}
ENVIRONMENT: Mapping[str, str] = config.environment(Settings, _PLATFORM_ENVIRONMENT)

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
    config.merge(tree, config.from_environment(Settings, env, _PLATFORM_ENVIRONMENT))
    _workspace_secrets(tree, env)
    return from_mapping(tree)


def _workspace_secrets(tree: dict[str, Any], env: Mapping[str, str]) -> None:
    """Each [[leanix.workspaces]] entry's secrets from $LEANIX_<NAME>_API_TOKEN and
    $LEANIX_<NAME>_WEBHOOK_AUTHORIZATION (comma-separated), when set: they win over the file."""
    workspaces = (tree.get("leanix") or {}).get("workspaces")
    for entry in workspaces if isinstance(workspaces, list) else []:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not WORKSPACE_NAME.fullmatch(name):
            continue  # refused by the validation, naming the key
        prefix = f"LEANIX_{name.upper()}_"
        if env.get(prefix + "API_TOKEN"):
            entry["api_token"] = env[prefix + "API_TOKEN"]
        if env.get(prefix + "WEBHOOK_AUTHORIZATION"):
            values = env[prefix + "WEBHOOK_AUTHORIZATION"].split(",")
            entry["authorization"] = [v.strip() for v in values if v.strip()]


def from_mapping(tree: Mapping[str, Any]) -> Settings:
    """Validate a nested mapping (as read from TOML) into Settings."""
    settings = config.build(Settings, tree, REMOVED)
    _validate(settings)
    return settings


def defaults_toml() -> str:
    """config/default.toml: every key with its default, documentation and variable."""
    return config.render_toml(Settings, HEADER, _PLATFORM_ENVIRONMENT)


def _validate(s: Settings) -> None:
    _require(0 <= s.http.port <= 65535, "http.port", "must be between 0 and 65535")
    _require(s.http.max_body_bytes > 0, "http.max_body_bytes", "must be positive")
    _require(s.http.publish_timeout_s > 0, "http.publish_timeout_s", "must be positive")
    _require(s.http.retry_after_s >= 1, "http.retry_after_s", "must be at least 1")
    _require(s.http.shutdown_grace_s >= 0, "http.shutdown_grace_s", "must not be negative")
    _require(s.http.event_loop in {"uvloop", "asyncio"}, "http.event_loop", "uvloop or asyncio")
    _require(0 <= s.http.processes <= 64, "http.processes", "must be between 0 and 64")
    _validate_http_bounds(s.http)
    _validate_pull(s.leanix_pull)
    _validate_reconcile(s.reconcile)
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
    _validate_metrics(s.clients.leanix.metrics)
    _validate_workspaces(s)
    _require(s.store.connect_retry_s > 0, "store.connect_retry_s", "must be positive")
    _require(s.eventlog.retention_days > 0, "eventlog.retention_days", "must be positive")
    _require(s.eventlog.max_data_bytes >= 0, "eventlog.max_data_bytes", "must not be negative")
    auto = s.automation
    _require(auto.poll_initial_s > 0, "automation.poll_initial_s", "must be positive")
    _require(auto.poll_max_s >= auto.poll_initial_s, "automation.poll_max_s", ">= poll_initial_s")
    _require(auto.poll_interval_s > 0, "automation.poll_interval_s", "must be positive")
    _require(auto.waiting_interval_s > 0, "automation.waiting_interval_s", "must be positive")
    _require(auto.waiting_claim_s >= 1, "automation.waiting_claim_s", "must be at least 1 s")
    base = auto.callback_base_url
    _require(
        not base or base.startswith(("http://", "https://")),
        "automation.callback_base_url",
        "an http(s) URL",
    )
    _require(s.clients.leanix.timeout_s > 0, "clients.leanix.timeout_s", "must be positive")
    delivery = s.subscriptions.leanix_delivery
    _require(delivery in {"PUSH", "PULL"}, "subscriptions.leanix_delivery", "PUSH or PULL")
    _validate_credentials(s.sources)
    for platform in registry.PLATFORMS:
        tables = platform.tables
        tables.validate(platform.client_settings(s.clients), platform.source_settings(s.sources))
    _validate_callback_keys(s)


def _validate_http_bounds(http: HttpSettings) -> None:
    _require(
        http.max_inflight_body_bytes >= http.max_body_bytes,
        "http.max_inflight_body_bytes",
        "must be at least http.max_body_bytes, or a body of the largest size is never read",
    )
    for name in ("header_timeout_s", "body_timeout_s", "keepalive_timeout_s"):
        _require(getattr(http, name) > 0, f"http.{name}", "must be positive")
    _require(http.max_connections >= 1, "http.max_connections", "must be at least 1")


def _validate_pull(pull: PullSettings) -> None:
    # LeanIX's long-poll range is not documented: 1..60 s is what the API docs' examples use.
    _require(1 <= pull.timeout_s <= 60, "leanix_pull.timeout_s", "must be between 1 and 60")
    _require(pull.batch_size >= 1, "leanix_pull.batch_size", "must be at least 1")
    _require(pull.lease_s >= 1, "leanix_pull.lease_s", "must be at least 1 second")
    _require(pull.retry_s > 0, "leanix_pull.retry_s", "must be positive")


def _validate_reconcile(r: ReconcileSettings) -> None:
    durations = "a duration: 90s, 15m, 2h or 1d"
    _require(not r.interval.strip() or bool(r.interval_s), "reconcile.interval", durations)
    _require(duration_s(r.margin) is not None, "reconcile.margin", durations)


def _validate_credentials(sources: SourcesSettings) -> None:
    """An empty or blank credential would let a request without one in: refuse to start.
    (Each platform checks its own source's, in its `tables.validate`.)"""
    named = [
        ("sources.leanix.authorization", sources.leanix.authorization),
        ("sources.callback_signing_keys", sources.callback_signing_keys),
    ]
    for key, values in named:
        _require(
            all(value.strip() for value in values),
            key,
            "holds an empty or whitespace-only credential: remove it or give a real value",
        )


def _validate_workspaces(s: Settings) -> None:
    """Named, distinct workspaces, each with an id, and not beside the single-workspace keys."""
    if not s.leanix.workspaces:
        return
    single = s.clients.leanix.api_token or s.sources.leanix.authorization
    _require(
        not single,
        "leanix.workspaces",
        "set either [[leanix.workspaces]] or clients.leanix.api_token / "
        "sources.leanix.authorization, not both: move those into a workspace entry",
    )
    _require(
        not s.leanix_pull.subscription_id,
        "leanix_pull.subscription_id",
        "one id for several workspaces: set each workspace's pull_subscription_id instead "
        "(or neither: each puller finds its workspace's subscription by its identifier)",
    )
    seen: set[str] = set()  # names, ids and Authorization values: each names one workspace
    for n, ws in enumerate(s.leanix.workspaces, 1):
        key = f"leanix.workspaces (item {n})"
        _require(bool(WORKSPACE_NAME.fullmatch(ws.name)), f"{key}.name", "a-z, 0-9 and _ only")
        _require(bool(ws.id.strip()), f"{key}.id", "the workspaceId of its events is required")
        _require(not {ws.name, ws.id} & seen, key, "another workspace has this name or id")
        values = set(ws.authorization)
        _require(not values & seen, f"{key}.authorization", "a value another workspace uses")
        _require(all(v.strip() for v in values), f"{key}.authorization", "a blank value")
        base = ws.base_url
        _require(not base or base.startswith(("http://", "https://")), f"{key}.base_url", "URL")
        seen |= {ws.name, ws.id, *values}


def _validate_metrics(m: LeanixMetrics) -> None:
    key = "clients.leanix.metrics"
    _require(bool(m.measurement.strip()), f"{key}.measurement", "must not be empty")
    _require(m.flush_interval_s > 0, f"{key}.flush_interval_s", "must be positive")
    _require(m.max_pending >= 1, f"{key}.max_pending", "must be at least 1")
    _require(m.attempts >= 1, f"{key}.attempts", "must be at least 1")


def _validate_callback_keys(s: Settings) -> None:
    """Strong keys, and one whenever runs are asked to call back with their own token
    (Leapwork, Workato: their `tables.run_tokens`)."""
    key = "sources.callback_signing_keys"
    for value in s.sources.callback_signing_keys:
        problem = f"a key needs {MIN_KEY_CHARS}+ characters: e.g. `openssl rand -base64 32`"
        _require(len(value) >= MIN_KEY_CHARS, key, problem)
    asked = [
        platform.name
        for platform in registry.PLATFORMS
        if platform.tables.run_tokens(platform.client_settings(s.clients))
    ]
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


def _require(ok: bool, key: str, problem: str) -> None:
    if not ok:
        raise ConfigError(key, problem)
