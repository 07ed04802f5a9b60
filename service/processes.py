"""Processes: several receiver processes accepting on one listening socket.

One Python process serves HTTP on one core. With `http.processes` above 1 the service
binds its listening socket before any event loop exists, forks the extra receivers, and
every process accepts on that socket: the kernel gives each new connection to one of
them. The first process also runs the worker in `all` mode; the others only receive.
Each process has its own broker connection; a 202 still means its own publish was
confirmed.

Metrics are summed across the processes by prometheus_client's multiprocess mode: a
directory of per-process files, named before prometheus_client is first imported.

SIGTERM or SIGINT to the first process stops them all, each draining what it has in
flight. A receiver that dies stops the whole service, exit code 1: running at part
strength without saying so would hide the failure; the orchestrator restarts it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from service.settings import HttpSettings

log = structlog.get_logger("service.processes")

METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # what prometheus_client reads
BACKLOG = 1024
POLL_S = 0.2  # where pidfds are missing: how often to look for a dead receiver
PR_SET_PDEATHSIG = 1  # linux/prctl.h
M_MMAP_THRESHOLD = -3  # malloc.h
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's default starting value, kept fixed


def prepare_metrics() -> Path:
    """Give prometheus_client a fresh directory for per-process files, and remove it at
    exit. Must run before prometheus_client is imported: it picks its mode then."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before its multiprocess directory")
    given = os.environ.get(METRICS_DIR)
    if given:  # the operator's own directory (say, an emptyDir): clear last run's files
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return path
    path = Path(tempfile.mkdtemp(prefix="bridge-metrics-"))
    os.environ[METRICS_DIR] = str(path)
    atexit.register(_remove, path, os.getpid())
    return path


def _remove(path: Path, owner: int) -> None:
    if os.getpid() == owner:  # forked receivers run the same exit functions: not theirs
        shutil.rmtree(path, ignore_errors=True)


def return_large_blocks() -> None:
    """Have glibc's malloc give every block over 128 KiB its own mapping, returned to the
    system when freed.

    By default glibc raises that threshold to the largest block freed so far (up to
    32 MiB): after one 25 MiB body, the next ones are carved from the heap, and a burst
    of them leaves the process hundreds of MB larger for good. Elsewhere than glibc,
    nothing is done.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def listening_socket(http: HttpSettings) -> socket.socket:
    """Bind and listen on http.host:http.port (0 picks a free port), before forking."""
    family, kind, proto, _, address = socket.getaddrinfo(
        http.host, http.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return _listen(socket.socket(family, kind, proto), address)


def own_socket(shared: socket.socket) -> socket.socket:
    """A forked receiver's own listening socket on the same address (SO_REUSEPORT): the
    kernel spreads new connections evenly over the sockets of the group, where a shared
    socket lets whichever process wakes first take a whole burst."""
    if not hasattr(socket, "SO_REUSEPORT"):
        return shared
    sock = _listen(socket.socket(shared.family, shared.type, shared.proto), shared.getsockname())
    shared.close()
    return sock


def _listen(sock: socket.socket, address: Any) -> socket.socket:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


def fork(count: int, serve: Callable[[], None], before: Callable[[], None]) -> list[int]:
    """Start `count` processes running `serve()`; their pids. `before` runs first in the
    parent (flush what would otherwise be written twice)."""
    pids = []
    parent = os.getpid()
    for _ in range(count):
        before()
        pid = os.fork()
        if pid == 0:  # pragma: no cover  # the child: coverage does not follow a fork
            _child(serve, parent)
        pids.append(pid)
    return pids


def _child(serve: Callable[[], None], parent: int) -> None:  # pragma: no cover
    code = 1
    try:
        _die_with(parent)
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # until its loop takes the signals over
        serve()
        code = 0
    except BaseException:
        log.exception("receiver.process_failed", pid=os.getpid())
    finally:
        with contextlib.suppress(Exception):
            atexit._run_exitfuncs()  # flush the logs; os._exit skips atexit
        os._exit(code)


def _die_with(parent: int) -> None:  # pragma: no cover
    """Get SIGTERM when the first process dies, even by SIGKILL: no orphan keeps serving
    on the port (Linux's PR_SET_PDEATHSIG; elsewhere the first process must stop them)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before prctl took effect
        raise SystemExit("the first receiver process is gone")


class Receivers:
    """The forked receivers, seen from the first process: watched, stopped, reaped."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = set(pids)
        self.failed: list[tuple[int, int]] = []  # (pid, exit code) of those that died
        self._stopping = False
        self._gone = asyncio.Event()
        self._polls: set[asyncio.Task[None]] = set()

    def watch(self, stop: asyncio.Event) -> None:
        """Set `stop` if a receiver dies before it is told to stop."""
        loop = asyncio.get_running_loop()
        for pid in list(self.pids):
            try:
                fd = os.pidfd_open(pid)
            except (AttributeError, OSError):
                poll = loop.create_task(self._poll(pid, stop))
                self._polls.add(poll)
                poll.add_done_callback(self._polls.discard)
                continue
            loop.add_reader(fd, self._exited, pid, fd, stop)
        if not self.pids:
            self._gone.set()

    def _exited(self, pid: int, fd: int, stop: asyncio.Event) -> None:
        asyncio.get_running_loop().remove_reader(fd)
        os.close(fd)
        self._reap(pid, os.waitpid(pid, 0)[1], stop)

    async def _poll(self, pid: int, stop: asyncio.Event) -> None:
        while pid in self.pids:
            done, status = os.waitpid(pid, os.WNOHANG)  # noqa: ASYNC222  # WNOHANG: never blocks
            if done:
                self._reap(pid, status, stop)
                return
            await asyncio.sleep(POLL_S)  # no pidfd on this system: poll the child's state

    def _reap(self, pid: int, status: int, stop: asyncio.Event) -> None:
        self.pids.discard(pid)
        code = os.waitstatus_to_exitcode(status)
        if not self._stopping:
            self.failed.append((pid, code))
            log.error("receiver.process_died", pid=pid, exit_code=code, action="stopping")
            stop.set()
        if not self.pids:
            self._gone.set()

    def terminate(self) -> None:
        """Ask every receiver to drain and stop."""
        self._stopping = True
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    async def wait(self, grace_s: float) -> None:
        """Wait for every receiver to exit; kill those still there after `grace_s`."""
        self.terminate()
        started = time.monotonic()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_s + 1.0):
                await self._gone.wait()
        for pid in list(self.pids):
            log.warning("receiver.process_killed", pid=pid, after_s=time.monotonic() - started)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)  # noqa: ASYNC222  # after SIGKILL: at once
            self.pids.discard(pid)
