"""LeanIX ↔ automation-platform event bridge.

The path of a message, as the modules are named:

    HTTP request
      -> web.py                 the one HTTP application: receiver, probes, admin
      -> receiver/app.py        routes, problem+json errors, access log
      -> receiver/ingest.py     read body (bounded) -> authenticate -> parse -> normalise
           vendors/signatures.py    verifiers on the raw bytes, constant-time
           vendors/normalise.py     sender payload -> type/subject/time/id
           vendors/<name>/          each platform's callback check, normaliser, client
           cloudevent.py            CloudEvents 1.0 structured JSON
      -> bus/broker.py          persistent publish, awaited confirm, then 202
      => RabbitMQ               bus/topology.py: topic exchange -> work queue (+ dead letters)
      -> worker/consumer.py     decode -> dispatch -> settle (ack / dead-letter)
      -> worker/dispatcher.py   each matching handler, under its claim and timeout
      -> worker/registry.py     @handler("leanix.factsheet.*") functions, yours included,
                                and @lifespan hooks; worker/context.py: what they may use

Vendor APIs are never called inside an HTTP request. service/testing.py runs handlers
on an event in memory, with the worker's dispatch, retry and dead-letter decisions.
"""

from service.cloudevent import CloudEvent
from service.errors import RejectEvent, RetryLater
from service.worker.context import Services, State, StateKey
from service.worker.registry import Context, Registry, handler, include, lifespan

__all__ = [
    "CloudEvent",
    "Context",
    "Registry",
    "RejectEvent",
    "RetryLater",
    "Services",
    "State",
    "StateKey",
    "handler",
    "include",
    "lifespan",
]
