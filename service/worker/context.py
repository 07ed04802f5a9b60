"""The handler kit: what a handler and its lifespans may use, typed and never None.

    Context     what a handler gets besides the event: its log, the attempt, the
                idempotency key and store transaction, and the worker's Services
    Services    the LeanIX client, the run clients (by platform) and the State the
                lifespans opened; nothing else (no settings, no secrets)
    State       a typed map, filled by the lifespans at start-up, read-only afterwards
    StateKey    a typed key into it, like aiohttp's web.AppKey

It must never hand a handler the settings, the broker or the whole store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import structlog
from structlog.typing import FilteringBoundLogger

from service.errors import ConfigError
from service.runs import RunClient

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from service.clients.leanix import LeanixClient

T = TypeVar("T")
D = TypeVar("D")


class StateKey(Generic[T]):
    """A typed key into the worker's State: `POOL = StateKey("myteam.pool", Pool)`."""

    __slots__ = ("name",)

    def __init__(self, name: str, kind: type[T] | None = None) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<StateKey {self.name}>"


class State:
    """What the lifespans opened, by typed key; read-only once the worker consumes."""

    def __init__(self) -> None:
        self._values: dict[StateKey[Any], Any] = {}
        self._frozen = False

    def __getitem__(self, key: StateKey[T]) -> T:
        try:
            value: T = self._values[key]
        except KeyError:
            raise KeyError(
                f"nothing is stored under {key.name!r}: set it in a lifespan "
                "(@lifespan) and name its module in worker.handler_modules"
            ) from None
        return value

    def __setitem__(self, key: StateKey[T], value: T) -> None:
        if self._frozen:
            raise RuntimeError(f"set {key.name!r} in a lifespan: the state is read-only now")
        self._values[key] = value

    def __contains__(self, key: StateKey[Any]) -> bool:
        return key in self._values

    @overload
    def get(self, key: StateKey[T]) -> T | None: ...
    @overload
    def get(self, key: StateKey[T], default: D) -> T | D: ...
    def get(self, key: StateKey[T], default: object = None) -> object:
        return self._values.get(key, default)

    def freeze(self) -> None:
        """No more writes: handlers share the state, so none may change it."""
        self._frozen = True


@dataclass(frozen=True)
class Services:
    """What handlers and lifespans may use: the clients configured, and the State."""

    run_clients: Mapping[str, RunClient] = field(default_factory=dict)  # by platform
    state: State = field(default_factory=State)
    leanix_client: LeanixClient | None = field(default=None, repr=False)

    @property
    def leanix(self) -> LeanixClient:
        """The LeanIX client; ConfigError (the event is dead-lettered) if not configured."""
        if self.leanix_client is None:
            raise ConfigError("clients.leanix.api_token", "set it to call LeanIX from a handler")
        return self.leanix_client

    def run_client(self, vendor: str) -> RunClient:
        """The client of one platform; ConfigError if its credentials are not configured."""
        client = self.run_clients.get(vendor)
        if client is None:
            raise ConfigError(f"clients.{vendor}", "set its credentials to start runs on it")
        return client


def _no_transaction() -> AbstractAsyncContextManager[AsyncConnection]:
    raise RuntimeError("context.transaction() needs a handler registered with idempotent=True")


@dataclass(frozen=True)
class Context:
    """What a handler gets besides the event."""

    log: FilteringBoundLogger = field(default_factory=lambda: structlog.get_logger())
    redelivered: bool = False  # delivered before: a retry, or after a crash; be idempotent
    attempt: int = 1
    # Give it to the vendor as its idempotency key (or reference, or look-up id): a run
    # interrupted after its effect and before the done mark runs again with the same key.
    idempotency_key: str = ""
    services: Services = field(default_factory=Services)
    _transaction: Callable[[], AbstractAsyncContextManager[AsyncConnection]] = field(
        default=_no_transaction, repr=False
    )

    @property
    def leanix(self) -> LeanixClient:
        """The LeanIX client (ConfigError if `clients.leanix.api_token` is not set)."""
        return self.services.leanix

    @property
    def run_clients(self) -> Mapping[str, RunClient]:
        """The platform clients whose credentials are configured, by platform name."""
        return self.services.run_clients

    @property
    def state(self) -> State:
        """What the lifespans opened: `context.state[POOL]`."""
        return self.services.state

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction on the worker's store that marks this handler done on this event
        when it commits: writes made in it happen exactly once. Idempotent handlers only;
        it raises ClaimLost (retried) if another delivery took the claim over meanwhile."""
        return self._transaction()
