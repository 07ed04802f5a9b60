"""Runtime: open every resource in one place, run until SIGTERM/SIGINT, then drain.

Start-up order: the broker (connecting in the background), HTTP (probes answer at once),
the store (waited for, service/startup.py), the worker. A failure closes what was opened
and is raised: the process exits with the reason, never hangs.

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

import aiohttp
import structlog
from aiohttp import web

from service import logs, metrics, processes, reconciliation, workspaces
from service.automation import handlers as automation
from service.automation.rules import VENDORS, check_clients, check_workspaces
from service.automation.rules import load as load_rules
from service.bus.broker import Broker
from service.probes import REFRESH, Refresh, worker_app
from service.pull import start as pulling
from service.receiver import server
from service.resources import database_of, open_resources
from service.settings import MODES, Settings
from service.startup import STARTUP, Startup, open_store
from service.store import Database
from service.web import create_app
from service.worker.consumer import Consumer
from service.worker.journal import prune_forever
from service.worker.registry import Registry, import_modules, open_lifespans

log = structlog.get_logger("service")

__all__ = ["MODES", "main", "run", "serve", "serve_forked"]


def main(settings: Settings, mode: str = "all") -> int:
    """Serve `mode` until stopped, from `http.processes` receiver processes; the exit code."""
    if mode == "pull" or (mode == "all" and pulling.wanted(settings)):
        pulling.require(settings)  # before anything is opened
    count = settings.http.process_count if mode in ("all", "receiver") else 1
    if count == 1:
        run(serve(settings, mode), settings.http.event_loop)
        return 0
    return serve_forked(settings, mode, processes.listening_socket(settings.http), count)


def serve_forked(settings: Settings, mode: str, sock: socket.socket, count: int) -> int:
    """Serve from `count` processes accepting on `sock`: the extra receivers are forked
    before any event loop exists (service/processes.py); this one also runs the worker
    in `all` mode. The exit code: 1 if a receiver died."""
    loop = settings.http.event_loop
    if not asyncio.run(_migrate(settings)):  # once, before the processes race to do it
        return 0  # stopped while waiting for the store
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


async def _migrate(settings: Settings) -> bool:
    """Open (migrate) the store once, waiting for it; False if stopped by a signal first."""
    stop = asyncio.Event()
    _on_signals(stop)
    async with AsyncExitStack() as stack:
        database = database_of(settings, stack)
        return await open_store(database, Startup(), stop, settings.store.connect_retry_s)


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
    The store is waited for while HTTP already answers (/readyz 503 naming it); an error
    during start-up closes what was opened and is raised, never left hanging.
    """
    from service.worker.registry import registry as default_registry

    stop = stop or asyncio.Event()
    grace = settings.http.shutdown_grace_s
    async with AsyncExitStack() as stack:
        try:
            broker = Broker(settings.amqp)
            await broker.start()
            stack.push_async_callback(broker.close)
            if receivers is not None:  # they drain while this process does; reaped last
                receivers.watch(stop)
                stack.push_async_callback(receivers.wait, grace)
            registry = registry or default_registry
            started = await _start(settings, mode, registry, broker, stack, stop, sock)
        except Exception as exc:
            log.error("startup.failed", mode=mode, error=repr(exc).splitlines()[0])
            raise
        gc.freeze()  # what start-up made lives as long as the process: out of the GC's sweeps
        if not stop.is_set():  # not stopped while waiting for the store
            log.info("service.started", mode=mode, broker=settings.amqp.safe_url, pid=os.getpid())
        await stop.wait()
        log.info("service.stopping", grace_s=grace)
        if receivers is not None:
            receivers.terminate()
    log.info("service.stopped")
    _raise_failure(started)


async def _start(
    settings: Settings,
    mode: str,
    registry: Registry,
    broker: Broker,
    stack: AsyncExitStack,
    stop: asyncio.Event,
    sock: socket.socket | None,
) -> list[asyncio.Task[Any]]:
    """Serve HTTP, then open the store (waiting for it) and the worker; closed on `stack`.

    The start-up work left running in the background: its failure stops the process.
    """
    rules = _worker_rules(settings) if mode in ("all", "worker") else ()
    database = database_of(settings, stack)
    serves_webhooks = mode in ("all", "receiver")
    app = create_app(settings, broker, database) if serves_webhooks else worker_app(broker, [])
    runner = await _start_http(settings, app, sock)
    stack.push_async_callback(runner.cleanup)
    _on_signals(stop)
    retry_s = settings.store.connect_retry_s
    if mode == "receiver":  # only the admin API needs the store: ingest serves meanwhile
        opening = open_store(database, app[STARTUP], stop, retry_s, blocks_ready=False)
        return [_in_background(opening, "store.open_failed", stack, stop)]
    if not await open_store(database, app[STARTUP], stop, retry_s):
        return []  # stopped while waiting
    if mode == "pull" or (mode == "all" and pulling.wanted(settings)):
        pullers = await _start_pullers(settings, broker, database, stack, stop)
        if mode == "pull":
            return pullers
    starting = await _start_worker(settings, broker, database, rules, registry, stack, stop)
    app[REFRESH].append(runs_in_flight(database))
    return [starting]


def _worker_rules(settings: Settings) -> tuple[Any, ...]:
    """Import the handler modules and load the rules: wrong ones stop start-up at once."""
    import_modules(settings.worker.handler_modules)
    return load_rules(settings.rules)


async def _start_worker(
    settings: Settings,
    broker: Broker,
    database: Database,
    rules: tuple[Any, ...],
    registry: Registry,
    stack: AsyncExitStack,
    stop: asyncio.Event,
) -> asyncio.Task[None]:
    """Open the worker's resources, include the automation loop if rules exist, run the
    lifespans, consume."""
    resources = await open_resources(settings, broker, database, stack, rules)
    check_clients(rules, resources.runners.keys(), resources.leanix is not None)
    check_workspaces(rules, workspaces.scopes(settings))
    if rules:  # a registry of both: the one given (the default one, too) stays as it was
        registry = automation.alongside(registry, resources)
    services = resources.services()
    await open_lifespans(registry, services, stack)  # closed after the consumer drained
    consumer = Consumer(settings, broker, registry, database=database, services=services)
    starting = asyncio.create_task(consumer.start())
    starting.add_done_callback(lambda task: _fail_on_error(task, stop, "worker.start_failed"))
    stack.push_async_callback(_stop_consumer, consumer, starting, settings.http.shutdown_grace_s)
    if settings.eventlog.enabled:
        await _start_background(partial(prune_forever, database, settings.eventlog), stack)
    scheduled = reconciliation.schedule(resources)
    if scheduled is not None:  # stopped before the consumer drains
        await _start_background(scheduled.run, stack)
        log.info("reconcile.scheduled", every_s=scheduled.interval_s, margin_s=scheduled.margin_s)
    log.info("worker.rules", count=len(rules), vendors=sorted(resources.runners))
    return starting


async def _start_pullers(
    settings: Settings,
    broker: Broker,
    database: Database,
    stack: AsyncExitStack,
    stop: asyncio.Event,
) -> list[asyncio.Task[None]]:
    """Pull each workspace's LeanIX PULL subscription onto the bus until shutdown
    (service/pull/): one puller, under its own lease, per workspace."""
    session = aiohttp.ClientSession(raise_for_status=False)
    stack.push_async_callback(session.close)
    halt = asyncio.Event()
    tasks = []
    for puller in pulling.build(settings, session, broker, database):
        task = asyncio.create_task(puller.run(halt))
        task.add_done_callback(lambda done: _fail_on_error(done, stop, "pull.stopped"))
        tasks.append(task)
        log.info("pull.started", workspace=puller.subscription.workspace, lease=puller.lease)

    async def stop_pulling() -> None:  # a batch cut short is fetched again: nothing lost
        halt.set()
        await asyncio.wait(tasks, timeout=settings.http.shutdown_grace_s)
        for task in tasks:
            await _cancel(task)

    stack.push_async_callback(stop_pulling)
    return tasks


def _in_background(
    work: Coroutine[Any, Any, Any], failure: str, stack: AsyncExitStack, stop: asyncio.Event
) -> asyncio.Task[Any]:
    """Run start-up `work` as a task: cancelled at shutdown, stopping the process if it fails."""
    task = asyncio.create_task(work)
    task.add_done_callback(lambda done: _fail_on_error(done, stop, failure))
    stack.push_async_callback(_cancel, task)
    return task


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):  # its failure is raised later
        await task


def _raise_failure(started: list[asyncio.Task[Any]]) -> None:
    """Raise what made background start-up work fail (it stopped the process)."""
    for task in started:
        if task.done() and not task.cancelled() and (error := task.exception()):
            raise error


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


def _fail_on_error(task: asyncio.Task[Any], stop: asyncio.Event, event: str) -> None:
    """A process that cannot do its work must not look alive: log why and stop it."""
    if task.cancelled() or task.exception() is None:
        return
    log.error(event, error=repr(task.exception()))
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
