"""LeanIX ↔ automation-platform event bridge.

The path of a message, as the modules are named:

    HTTP request
      -> receiver/app.py        routes, problem+json errors, access log
      -> receiver/ingest.py     read body (bounded) -> authenticate -> parse -> normalise
           receiver/signatures.py   verifiers on the raw bytes, constant-time
           receiver/normalise.py    sender payload -> type/subject/time/id
           vendors/<name>/          each platform's callback check, normaliser, client
           cloudevent.py            CloudEvents 1.0 structured JSON
      -> bus/broker.py          persistent publish, awaited confirm, then 202
      => RabbitMQ               bus/topology.py: topic exchange -> work queue (+ dead letters)
      -> worker/consumer.py     decode -> dispatch -> settle (ack / dead-letter)
      -> worker/registry.py     @handler("leanix.factsheet.*") functions, yours included

Vendor APIs are never called inside an HTTP request.
"""

from service.cloudevent import CloudEvent
from service.errors import RejectEvent, RetryLater
from service.worker.registry import Context, handler

__all__ = ["CloudEvent", "Context", "RejectEvent", "RetryLater", "handler"]
