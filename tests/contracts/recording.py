"""Recording what crosses a simulator, to hold it to the vendor's contract.

`Recorder.install(monkeypatch)` wraps every simulator app served afterwards in two
middlewares: an outer one that records each request as it arrived (before any injected
fault), and an inner one that records the answer of the simulated API itself (so an
injected 503 or a hang is never mistaken for the vendor's answer). It also notes every
request a vendor client makes (`HttpApi.call`), so that requests a test writes by hand
(on purpose wrong, often) are held to the contract only through the simulator's answer:
a valid request must get an answer the contract describes, an invalid one a 4xx.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from service.clients.base import HttpApi
from service.simulators.base import Simulator
from tests.contracts.contract import Operation, Request, contract

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Key = tuple[str, str, tuple[tuple[str, str], ...], str]


@dataclass
class Exchange:
    """One request to a simulator and, if the simulated API answered it, the answer."""

    vendor: str
    request: Request
    reached: bool = False  # the simulated API handled it (no injected fault answered)
    status: int | None = None
    body: bytes = b""
    content_type: str | None = None
    by_client: bool = False  # sent by one of our vendor clients

    @property
    def key(self) -> Key:
        request = self.request
        return _key(request.method, request.path, request.query, request.body)

    def problems(self) -> list[str]:
        """Where this exchange departs from the vendor's contract."""
        request = self.request
        operation = contract(self.vendor).match(request.method, request.path)
        if operation is None:
            if not self.by_client:
                return []  # a test's hand-made request to a path no operation has
            return [f"{self.vendor}: {request.method} {request.path} is no contract operation"]
        wrong = operation.request_problems(request)
        ours = wrong if self.by_client else []
        if not self.reached or self.status is None:
            return ours
        if wrong:
            return ours + self._not_refused(operation, wrong)
        return operation.response_problems(self.status, self.body, self.content_type)

    def _not_refused(self, operation: Operation, wrong: list[str]) -> list[str]:
        """The contract describes the answers to valid requests: an invalid one must be
        refused (a missing Accept only falls back to the default type)."""
        refusable = [text for text in wrong if "header Accept" not in text]
        if not refusable or operation.refused(self.status or 0, self.body):
            return []
        return [f"{self.vendor} {operation.name}: answered {self.status} to {refusable}"]

    def request_problems(self) -> list[str]:
        """What the contract finds wrong in the request, whoever sent it."""
        operation = contract(self.vendor).match(self.request.method, self.request.path)
        assert operation is not None, f"{self.request.path} is no operation"
        return operation.request_problems(self.request)

    @property
    def operation(self) -> str | None:
        found = contract(self.vendor).match(self.request.method, self.request.path)
        return found.name if found else None


EXCHANGE = web.RequestKey("contract_exchange", Exchange)


def _key(method: str, path: str, query: tuple[tuple[str, str], ...], body: bytes) -> Key:
    return method.upper(), path, tuple(sorted(query)), hashlib.sha256(body).hexdigest()


def _sent_body(kwargs: Mapping[str, Any]) -> bytes:
    """The body aiohttp sends for these request arguments (default serializers)."""
    if kwargs.get("json") is not None:
        return json.dumps(kwargs["json"]).encode()
    data = kwargs.get("data")
    if isinstance(data, Mapping):
        return urlencode(dict(data), doseq=True).encode()
    return data.encode() if isinstance(data, str) else bytes(data or b"")


class Recorder:
    """Every exchange with the simulators served while installed."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self._sent: list[Key] = []

    @classmethod
    def install(cls, monkeypatch: pytest.MonkeyPatch) -> Recorder:
        recorder = cls()
        make_app, call = Simulator.app, HttpApi.call

        def app(simulator: Simulator) -> web.Application:
            application = make_app(simulator)
            application.middlewares.insert(0, recorder._arrival(simulator.name))
            application.middlewares.append(recorder._answer)
            return application

        async def noted_call(api: HttpApi, method: str, url: Any, **kwargs: Any) -> Any:
            sent = URL(url).extend_query(kwargs["params"]) if kwargs.get("params") else URL(url)
            query = tuple(sent.query.items())
            recorder._sent.append(_key(method, sent.path, query, _sent_body(kwargs)))
            return await call(api, method, url, **kwargs)

        monkeypatch.setattr(Simulator, "app", app)
        monkeypatch.setattr(HttpApi, "call", noted_call)
        return recorder

    def settled(self) -> list[Exchange]:
        """The exchanges, each marked if one of our clients sent it."""
        sent = Counter(self._sent)
        for exchange in self.exchanges:
            if sent[exchange.key] > 0:
                sent[exchange.key] -= 1
                exchange.by_client = True
        return self.exchanges

    def of(self, operation: str, *, by_client: bool | None = None) -> list[Exchange]:
        return [
            e
            for e in self.settled()
            if e.operation == operation and (by_client is None or e.by_client == by_client)
        ]

    def problems(self) -> list[str]:
        return [problem for e in self.settled() for problem in e.problems()]

    def _arrival(self, vendor: str) -> Any:
        @web.middleware
        async def arrive(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith("/_sim/"):
                return await handler(request)
            body = await request.read()  # aiohttp keeps it for the handler
            query = tuple((k, v) for k, v in request.rel_url.query.items())
            seen = Request(request.method, request.path, query, CIMultiDict(request.headers), body)
            exchange = Exchange(vendor, seen)
            self.exchanges.append(exchange)
            request[EXCHANGE] = exchange
            return await handler(request)

        return arrive

    @staticmethod
    @web.middleware
    async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
        exchange = request.get(EXCHANGE)
        if exchange is None:
            return await handler(request)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            _note(exchange, exc)
            raise
        _note(exchange, response)
        return response


def _note(exchange: Exchange, response: Any) -> None:
    body = getattr(response, "body", None)
    exchange.reached = True
    exchange.status = response.status
    exchange.body = (
        body if isinstance(body, bytes) else (getattr(response, "text", "") or "").encode()
    )
    exchange.content_type = response.headers.get("Content-Type") or getattr(
        response, "content_type", None
    )


def operation_problems(recorder: Recorder, operation: str) -> list[str]:
    """What departs from the contract in our requests of `operation` and their answers."""
    exchanges = recorder.of(operation, by_client=True)
    if not exchanges:
        return [f"no request of {operation} was sent: the scenario misses it"]
    return [problem for exchange in exchanges for problem in exchange.problems()]


def outside_contract(recorder: Recorder) -> list[str]:
    """Our requests that are no operation of the vendor's contract."""
    return [
        f"{e.vendor}: {e.request.method} {e.request.path}"
        for e in recorder.settled()
        if e.by_client and e.operation is None
    ]
