"""Adapter: what one automation platform tells the service about itself.

A platform (UiPath, Robocorp, Leapwork, Workato, ...) is one package under
`service/vendors/<name>/` that exports one `Platform`; `service/vendors/registry.py` lists
them, one line each. The core asks the registry and never names a platform:

    settings.py            `tables`: its `[clients.<name>]` and `[sources.<name>]` tables
    receiver/sources.py    `receiving`: its callback path, verifier and normaliser
    resources.py           `running.client`: its run client, when its credentials are set
    automation/rules.py    `running.check_target`: a rule's `start.target`, at start-up
    automation/starter.py  `running.credential`: what a run is given to call back with
    automation/completion  `completion`: the run keys and state a callback event carries
    automation/preflight   `running.preflight`: its start-up check of its rules' targets
    admin/openapi          `api`: the callback endpoint's description and body schema
    simulators/lab.py      `lab`: its simulator, wired to the service, for tests and demo
    subscriptions_cli.py   `webhooks`: its webhook subscription, made to match the settings

A platform package may import the generic toolkit only: this module, `vendors.tables`
(shared settings shapes and checks), `vendors.openapi`, `service.config` (`setting`),
`service.runs`, `service.errors`, `service.cloudevent`, `service.callback_tokens`,
`service.clients.base` and `clients.ratelimit`, `service.subscriptions`, the verifiers in
`service.vendors.signatures` and `service.vendors.runtoken`, the normaliser kit in
`service.vendors.normalise`, and `service.simulators.base`. Never `service.settings`
(which imports the registry), the receiver's app, the worker, the admin API or the
automation loop (tests/unit/test_layers.py checks).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Protocol, TypeVar

import aiohttp

from service import callback_tokens
from service.cloudevent import CloudEvent
from service.errors import ConfigError
from service.runs import RunClient, RunState
from service.vendors.normalise import Facts
from service.vendors.runtoken import RunCallback, RunToken
from service.vendors.signatures import StandardWebhooks, Verifier

if TYPE_CHECKING:
    from service.simulators.base import Simulator

ClientT = TypeVar("ClientT")  # the platform's [clients.<name>] settings
SourceT = TypeVar("SourceT")  # the platform's [sources.<name>] settings
Schema = dict[str, Any]  # a piece of the OpenAPI document, as plain dicts


# --- Settings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Tables(Generic[ClientT, SourceT]):
    """The platform's two settings tables and their checks.

    `client` is the frozen dataclass of `[clients.<name>]` (how to call the platform),
    `source` that of `[sources.<name>]` (how its callbacks authenticate); both construct
    with no arguments as "not configured". Declare each field with `service.config.setting`
    (its default, documentation and environment variable: config/default.toml and the
    variables are derived from them); `client_doc`/`source_doc` document the tables
    themselves. `env` adds variables for fields declared without one
    (`"WORKATO_API_TOKEN": "clients.workato.api_token"`). `validate` raises ConfigError
    naming the key of a value that cannot work. `run_tokens`: whether, with these client
    settings, runs are given their own callback token, so that start-up requires
    `sources.callback_signing_keys` when `automation.callback_base_url` is set.
    """

    client: type[ClientT]
    source: type[SourceT]
    env: Mapping[str, str] = field(default_factory=dict)
    validate: Callable[[ClientT, SourceT], None] = lambda client, source: None
    client_doc: str = ""
    source_doc: str = ""
    run_tokens: Callable[[ClientT], bool] = lambda client: False


class SourcesTable(Protocol):
    """What `[sources]` holds for every platform (service.settings.SourcesSettings)."""

    @property
    def timestamp_tolerance_s(self) -> int: ...

    @property
    def callback_signing_keys(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class SharedKeys:
    """What every callback source shares, from `[sources]`: the Standard Webhooks clock
    tolerance and the keys of the runs' own callback tokens (callback_tokens.py)."""

    tolerance_s: int
    signing_keys: Sequence[str] = field(repr=False)

    @classmethod
    def of(cls, sources: SourcesTable) -> SharedKeys:
        return cls(sources.timestamp_tolerance_s, sources.callback_signing_keys)


# --- Receiving: the callback endpoint -----------------------------------------------------


class Completion(NamedTuple):
    """What a callback event says about a run: the keys to find it by, and its state.

    `keys` are tried in order against the stored run's vendor run id and correlation id;
    a platform whose callbacks carry a run token names the run by its correlation id only
    (the id the token vouches for).
    """

    keys: tuple[str, ...]
    state: RunState


@dataclass(frozen=True)
class Receiving(Generic[SourceT]):
    """The platform's callback endpoint, `POST <path>`.

    `verifier` builds the request check from the source settings (None: no credential is
    configured, the endpoint answers 404 with `enable_hint`); reuse the generic verifiers
    (`BodyHmac`, `StandardWebhooks`, `RunCallback` via `signed_or_run_token`). `normalise`
    turns the parsed JSON body into the CloudEvent's `Facts` (type `<name>.<entity>.<action>`)
    and raises MalformedEvent for what cannot be an event of this platform. `completions`
    are the topic patterns of the event types that report a run's progress or end, and
    `completion` reads one such event.
    """

    path: str
    verifier: Callable[[SourceT, SharedKeys], Verifier | None]
    normalise: Callable[[dict[str, Any]], Facts]
    enable_hint: str
    completions: tuple[str, ...]
    completion: Callable[[CloudEvent], Completion]


# --- Running: starting and polling runs ---------------------------------------------------


@dataclass(frozen=True)
class PlannedRun:
    """A rule's start on this platform, as the platform's start-up check sees it."""

    rule: str
    target: Mapping[str, Any]
    inputs: Mapping[str, Any]


class Preflight(Protocol):
    """Check the targets of the rules that will start runs, once, when the worker starts.

    Log what is wrong (never a secret), never raise: the platform may be down at start-up.
    `calls_back`: whether runs are given a callback URL and credential.
    """

    def __call__(
        self, client: RunClient, runs: Sequence[PlannedRun], calls_back: bool
    ) -> Awaitable[None]: ...


@dataclass(frozen=True)
class Running(Generic[ClientT, SourceT]):
    """How the automation loop starts, polls and finds runs on the platform.

    `client` builds the run client over the worker's one HTTP session, or None when the
    credentials it needs are not set. `check_target` validates a rule's `start.target`
    table at start-up (ConfigError naming `<key>.<field>`); the table is then handed to
    `RunClient.start` unchanged. `credential` is what a run is given to call back with,
    with the URL `<automation.callback_base_url><receiving.path>`; None: the run is not
    asked to call back (it is polled, or calls back through a webhook set up elsewhere).
    """

    client: Callable[[aiohttp.ClientSession, ClientT], RunClient | None]
    check_target: Callable[[Mapping[str, Any], str], None]
    credential: Callable[[SourceT, SharedKeys, str], str | None] = (
        lambda source, keys, correlation_id: None
    )
    preflight: Preflight | None = None


# --- Description and lab ------------------------------------------------------------------


@dataclass(frozen=True)
class ApiDescription:
    """The callback endpoint in the OpenAPI document (describes only; nothing reads it).

    `body_name` names the request body schema `body` in `components.schemas`; `security`
    lists the alternatives (each a security requirement), whose schemes not already in the
    document are given in `security_schemes`.
    """

    summary: str
    auth: str
    body_name: str
    body: Schema
    security: tuple[Schema, ...]
    security_schemes: Mapping[str, Schema] = field(default_factory=dict)


class LabPlatform(Protocol):
    """The platform's simulator in the lab (simulators/lab.py), wired to the service."""

    @property
    def simulator(self) -> Simulator:
        """The platform's simulator (served by the lab)."""
        ...

    def target(self) -> dict[str, Any]:
        """A rule's `start.target` on the running simulator (fixed ids: deploy/demo-rules)."""
        ...

    def clients(self) -> dict[str, Any]:
        """The `[clients.<name>]` table that points the service at the simulator."""
        ...

    def sources(self) -> dict[str, Any]:
        """The `[sources.<name>]` table that accepts the simulator's callbacks."""
        ...

    def connect(self, callback_url: str) -> None:
        """Point the simulator's own webhooks, if it has any, at the service."""
        ...

    def credentials(self) -> dict[str, str]:
        """Environment variables that point a service at the served simulator."""
        ...

    def started_inputs(self) -> list[dict[str, Any]]:
        """The inputs of each run the simulator started, in order, as it received them."""
        ...

    def fail_next_run(self) -> None:
        """Make the simulator's next run end failed (in the platform's own words)."""
        ...


# --- The platform -------------------------------------------------------------------------


@dataclass(frozen=True)
class Platform(Generic[ClientT, SourceT]):
    """One automation platform: everything the service knows about it, in one value."""

    name: str  # the rule's `start.vendor`, the settings tables' name, the event-type prefix
    tables: Tables[ClientT, SourceT]
    receiving: Receiving[SourceT]
    running: Running[ClientT, SourceT]
    api: ApiDescription
    lab: Callable[[float], LabPlatform]  # run_duration_s -> the platform in the lab
    # `python -m service subscriptions`: (session, service.subscriptions.Subscriber) -> its
    # service.subscriptions.WebhookApi; None: not managed.
    webhooks: Callable[[aiohttp.ClientSession, Any], Any] | None = None

    def client_settings(self, clients: object) -> ClientT:
        """This platform's table of `[clients]`."""
        settings: ClientT = getattr(clients, self.name)
        return settings

    def source_settings(self, sources: object) -> SourceT:
        """This platform's table of `[sources]`."""
        settings: SourceT = getattr(sources, self.name)
        return settings


AnyPlatform = Platform[Any, Any]


# --- Toolkit for platform packages --------------------------------------------------------


def require(target: Mapping[str, Any], needed: Sequence[str], vendor: str, key: str) -> None:
    """Each of `needed` is set in a rule's target; else ConfigError naming it."""
    for name in needed:
        if not target.get(name):
            raise ConfigError(f"{key}.{name}", f"required to start a {vendor} run")


def signed_or_run_token(vendor: str, secrets: Sequence[str], keys: SharedKeys) -> Verifier | None:
    """Standard Webhooks with `secrets`, or the run's own token; None if neither is set."""
    signed = StandardWebhooks(secrets, keys.tolerance_s) if secrets else None
    token = RunToken(vendor, keys.signing_keys) if keys.signing_keys else None
    if signed is None and token is None:
        return None
    return RunCallback(signed, token)


def run_token(vendor: str, keys: SharedKeys, correlation_id: str) -> str | None:
    """The run's own callback token, bound to its correlation id; None without a key."""
    if not keys.signing_keys:
        return None
    return callback_tokens.sign(keys.signing_keys[0], vendor, correlation_id)


def event_data(event: CloudEvent) -> Mapping[str, Any]:
    """A callback event's data as a mapping (empty when it is not an object)."""
    return event.data if isinstance(event.data, Mapping) else {}


def outputs(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The run's `outputs` object in a callback's data (empty when absent or not one)."""
    found = data.get("outputs")
    return found if isinstance(found, Mapping) else {}
