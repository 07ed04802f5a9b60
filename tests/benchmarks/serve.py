"""Serve one role of a benchmark in its own process.

    python -m tests.benchmarks.serve ours|baseline|worker --prefix P --amqp-url U
                                     [--loop service|asyncio|uvloop] [--profile F]
                                     [--processes N]

ours      the service's receiver: create_app(settings, broker) with a started Broker
baseline  the naive receiver of baseline.py
worker    the service's Consumer with the recording handler, and recorder.py's HTTP app

--loop service (the default) runs on the loop the settings name (http.event_loop), as
`python -m service` does. Prints one JSON line on stdout once it serves ({"port": ...,
"pid": ..., "loop": the loop it really runs on}); logs go to
stderr the way the service writes them (JSON lines). SIGTERM stops it cleanly.

--processes N (ours, N > 1) serves as `python -m service receiver` does with
http.processes = N: the socket is bound, announced, then the other receivers are forked
(service/processes.py); the announcement says "processes", and the caller waits for
/readyz. PROMETHEUS_MULTIPROC_DIR must be set (procs.server does). With
--profile F, SIGUSR1 starts pyinstrument (when installed) and the stop writes the profile
to F, and the raw session next to it (F with .pyisession: `pyinstrument --load=...`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import os
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from aiohttp import web

from service import logs, processes, runtime
from service.bus.broker import Broker
from service.settings import Settings, from_mapping
from service.store import Database
from service.web import create_app
from service.worker.consumer import Consumer
from tests.benchmarks import baseline
from tests.benchmarks.config import READY_TIMEOUT_S, settings_tree
from tests.benchmarks.recorder import Recorder

GRACE_S = 5.0
PROFILE_INTERVAL_S = float(os.environ.get("BENCH_PROFILE_INTERVAL_S", "0.001"))
Role = Callable[[Settings, AsyncExitStack], Awaitable[web.Application]]


async def ours(settings: Settings, stack: AsyncExitStack) -> web.Application:
    broker = await _broker(settings, stack)
    return create_app(settings, broker)


async def naive(settings: Settings, stack: AsyncExitStack) -> web.Application:
    return await baseline.create_app(settings.amqp, stack)


async def worker(settings: Settings, stack: AsyncExitStack) -> web.Application:
    broker = await _broker(settings, stack)
    recorder = Recorder()
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-store-"))
    database = Database(f"sqlite+aiosqlite:///{folder}/store.sqlite3")  # its log and claims
    await database.open()
    stack.push_async_callback(database.close)
    consumer = Consumer(settings, broker, recorder.registry(), database=database)
    await consumer.start()
    stack.push_async_callback(consumer.stop, GRACE_S)
    return recorder.app()


ROLES: dict[str, Role] = {"ours": ours, "baseline": naive, "worker": worker}


async def _broker(settings: Settings, stack: AsyncExitStack) -> Broker:
    broker = Broker(settings.amqp)
    await broker.start()
    stack.push_async_callback(broker.close)
    await broker.wait_ready(READY_TIMEOUT_S)
    return broker


async def _listen(app: web.Application, stack: AsyncExitStack) -> int:
    """Serve `app` on a free loopback port; return the port."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=GRACE_S)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port: int = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return port


class Profiling:
    """pyinstrument, started by SIGUSR1 and written at the stop; inert if not installed."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.profiler: Any = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.path is not None:
            loop.add_signal_handler(signal.SIGUSR1, self.start)

    def start(self) -> None:
        try:
            from pyinstrument import Profiler
        except ImportError:
            return
        self.profiler = Profiler(interval=PROFILE_INTERVAL_S, async_mode="disabled")
        self.profiler.start()

    def write(self) -> None:
        if self.profiler is None or self.path is None:
            return
        session = self.profiler.stop()
        session.save(str(self.path.with_suffix(".pyisession")))  # pyinstrument --load=<file>
        self.path.write_text(render(self.profiler))


def render(profiler: Any) -> str:
    """The flat view (self time per function), then the call tree down to 1% of the time."""
    flat = profiler.output_text(flat=True, flat_time="self", unicode=True)
    options = {"show_regex": ".*", "filter_threshold": 0.01}  # library frames too, >= 1%
    tree = profiler.output_text(unicode=True, time="percent_of_total", processor_options=options)
    return f"=== self time per function ===\n{flat}\n=== call tree ===\n{tree}"


async def serve(role: str, settings: Settings, profile: Path | None) -> None:
    """Serve the role until SIGTERM or SIGINT, then close everything it opened."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    profiling = Profiling(profile)
    profiling.install(loop)
    async with AsyncExitStack() as stack:
        app = await ROLES[role](settings, stack)
        port = await _listen(app, stack)
        if role != "baseline":
            gc.freeze()  # as service.runtime.serve does once started
        loop_name = type(loop).__module__.partition(".")[0]
        announcement = {"role": role, "port": port, "pid": os.getpid(), "loop": loop_name}
        print(json.dumps(announcement), flush=True)
        await stop.wait()
        profiling.write()


def run(main: Coroutine[Any, Any, None], loop: str) -> None:
    """Run `main` on uvloop when asked and installed, else on asyncio's own loop."""
    if loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            pass  # the announcement says which loop it really runs on
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.serve")
    parser.add_argument("role", choices=sorted(ROLES))
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--amqp-url", required=True)
    parser.add_argument("--loop", choices=["service", "asyncio", "uvloop"], default="service")
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args(argv)
    settings = from_mapping(settings_tree(args.prefix, args.amqp_url))
    logs.configure(settings.log)
    loop = getattr(settings.http, "event_loop", "asyncio") if args.loop == "service" else args.loop
    if args.role == "ours" and args.processes > 1:
        return forked(settings, args.processes, loop)
    run(serve(args.role, settings, args.profile), loop)
    return 0


def forked(settings: Settings, count: int, loop: str) -> int:
    """The service's own multi-process receiver (runtime.serve_forked) on a free port."""
    store = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='bench-store-')}/store.sqlite3"
    settings = dataclasses.replace(
        settings,
        http=dataclasses.replace(settings.http, processes=count, event_loop=loop),
        store=dataclasses.replace(settings.store, url=store),
    )
    sock = processes.listening_socket(settings.http)
    loop_name = loop if loop == "asyncio" or _has_uvloop() else "asyncio"
    announcement = {
        "role": "ours", "port": sock.getsockname()[1], "pid": os.getpid(),
        "loop": loop_name, "processes": count,
    }  # fmt: skip
    print(json.dumps(announcement), flush=True)
    return runtime.serve_forked(settings, "receiver", sock, count)


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
