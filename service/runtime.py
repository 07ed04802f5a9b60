"""Runtime: open every resource in one place, run until SIGTERM/SIGINT, then drain.

Shutdown order: stop consuming and finish handlers in flight, stop accepting HTTP and
finish requests in flight (both within `http.shutdown_grace_s`), close the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from functools import partial
from typing import Any

import structlog
from aiohttp import web

from service import logs, metrics, processes
from service.automation import handlers as automation
from service.automation.poller import Poller
from service.automation.rules import VENDORS, check_clients
from service.automation.rules import load as load_rules
from service.bus.broker import Broker
from service.probes import REFRESH, Refresh, worker_app
from service.receiver import server
from service.receiver.app import create_app
from service.resources import Resources, open_database, open_resources
from service.settings import MODES, Settings
from service.store import Database
from service.worker.consumer import Consumer
from service.worker.journal import prune_forever
from service.worker.registry import Registry, import_modules

log = structlog.get_logger("service")

__all__ = ["MODES", "main", "run", "serve", "serve_forked"]


def main(settings: Settings, mode: str = "all") -> int:
    """Serve `mode` until stopped, from `http.processes` receiver processes; the exit code."""
    count = settings.http.process_count if mode != "worker" else 1
    if count == 1:
        run(serve(settings, mode), settings.http.event_loop)
        return 0
    return serve_forked(settings, mode, processes.listening_socket(settings.http), count)


def serve_forked(settings: Settings, mode: str, sock: socket.socket, count: int) -> int:
    """Serve from `count` processes accepting on `sock`: the extra receivers are forked
    before any event loop exists (service/processes.py); this one also runs the worker
    in `all` mode. The exit code: 1 if a receiver died."""
    loop = settings.http.event_loop
    asyncio.run(_migrate(settings))  # once, before the processes race to do it
    pids = processes.fork(
        count - 1,
        lambda: run(serve(settings, "receiver", sock=processes.own_socket(sock)), loop),
        before=logs.flush,
    )
    receivers = processes.Receivers(pids)
    run(serve(settings, mode, sock=sock, receivers=receivers), loop)
    return 1 if receivers.failed else 0


def run(main: Coroutine[Any, Any, None], event_loop: str = "uvloop") -> None:
    """Run `main` on uvloop when asked and installed (faster socket I/O), else on
    asyncio's own loop."""
    if event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.warning("uvloop.missing", fallback="asyncio")
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


async def _migrate(settings: Settings) -> None:
    async with AsyncExitStack() as stack:
        await open_database(settings, stack)


async def serve(
    settings: Settings,
    mode: str = "all",
    registry: Registry | None = None,
    stop: asyncio.Event | None = None,
    sock: socket.socket | None = None,
    receivers: processes.Receivers | None = None,
) -> None:
    """Run the receiver, the worker, or both, until `stop` is set or a signal arrives.

    `sock`: listen on this socket (shared with other receiver processes) rather than
    binding http.host:http.port; `receivers`: those processes, stopped with this one.
    """
    from service.worker.registry import registry as default_registry

    stop = stop or asyncio.Event()
    grace = settings.http.shutdown_grace_s
    starting: asyncio.Task[None] | None = None
    async with AsyncExitStack() as stack:
        broker = Broker(settings.amqp)
        await broker.start()
        stack.push_async_callback(broker.close)
        if receivers is not None:  # they drain while this process does; reaped last
            receivers.watch(stop)
            stack.push_async_callback(receivers.wait, grace)
        refresh: list[Refresh] = []
        database: Database | None = None
        if mode in ("all", "worker"):
            starting, resources = await _start_worker(
                settings, broker, registry or default_registry, stack, stop
            )
            database = resources.database
            refresh.append(runs_in_flight(database))
        if mode == "receiver":
            database = await open_database(settings, stack)
        app = create_app(settings, broker, database) if mode != "worker" else worker_app(broker, [])
        app[REFRESH].extend(refresh)
        runner = await _start_http(settings, app, sock)
        stack.push_async_callback(runner.cleanup)
        _on_signals(stop)
        gc.freeze()  # what start-up made lives as long as the process: out of the GC's sweeps
        log.info("service.started", mode=mode, broker=settings.amqp.safe_url, pid=os.getpid())
        await stop.wait()
        log.info("service.stopping", grace_s=grace)
        if receivers is not None:
            receivers.terminate()
    log.info("service.stopped")
    failed = starting is not None and starting.done() and not starting.cancelled()
    if failed and starting is not None and (error := starting.exception()):
        raise error


async def _start_worker(
    settings: Settings,
    broker: Broker,
    registry: Registry,
    stack: AsyncExitStack,
    stop: asyncio.Event,
) -> tuple[asyncio.Task[None], Resources]:
    """Open the worker's resources, wire the automation loop if rules exist, consume."""
    import_modules(settings.worker.handler_modules)
    rules = load_rules(settings.rules)
    resources = await open_resources(settings, broker, stack)
    check_clients(rules, resources.runners.keys(), resources.leanix is not None)
    resources.rules = rules
    if rules and not any(r.name == "automation.start" for r in registry.registrations):
        automation.register(registry)
    consumer = Consumer(settings, broker, registry, resources)
    starting = asyncio.create_task(consumer.start())
    starting.add_done_callback(lambda task: _fail_on_error(task, stop))
    stack.push_async_callback(_stop_consumer, consumer, starting, settings.http.shutdown_grace_s)
    if rules:
        await _start_background(Poller(resources).run, stack)
    if settings.eventlog.enabled:
        await _start_background(
            partial(prune_forever, resources.database, settings.eventlog), stack
        )
    log.info("worker.rules", count=len(rules), vendors=sorted(resources.runners))
    return starting, resources


async def _start_background(
    run: Callable[[asyncio.Event], Coroutine[Any, Any, None]], stack: AsyncExitStack
) -> None:
    """Run `run(halt)` until shutdown, when `halt` is set and it is awaited."""
    halt = asyncio.Event()
    task = asyncio.create_task(run(halt))

    async def stop_polling() -> None:
        halt.set()
        await task

    stack.push_async_callback(stop_polling)


def runs_in_flight(database: Database) -> Refresh:
    """Refresh the runs-in-flight gauge from the store."""

    async def refresh() -> None:
        counts = await database.runs.in_flight()
        for vendor in sorted({*VENDORS, *counts}):
            metrics.runs_in_flight.labels(vendor).set(counts.get(vendor, 0))

    return refresh


async def _start_http(
    settings: Settings, app: web.Application, sock: socket.socket | None = None
) -> web.AppRunner:
    runner, site = await server.start(settings.http, app, sock)
    log.info("http.listening", host=settings.http.host, port=site.port, pid=os.getpid())
    return runner


def _fail_on_error(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    """A worker that cannot consume must not look alive: log why and stop the process."""
    if task.cancelled() or task.exception() is None:
        return
    log.error("worker.start_failed", error=repr(task.exception()))
    stop.set()


async def _stop_consumer(consumer: Consumer, starting: asyncio.Task[None], grace: float) -> None:
    if not starting.done():
        starting.cancel()
        return
    await consumer.stop(grace)


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
