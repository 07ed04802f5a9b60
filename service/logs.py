"""Logs: structlog, JSON lines in a container, readable lines on a terminal.

Log events, not prose: one line per request outcome and per handled event, with its
duration and event id. Never pass a secret, a header or a body to a logger.

JSON lines are rendered to bytes by orjson and written by a `LineWriter`: the lines of
one turn of the event loop go out in one write (under load, one syscall for dozens of
access-log lines, not one each); outside a running loop, and at exit, they are written
at once.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
from collections.abc import Callable
from typing import Any, TextIO

import orjson
import structlog

from service.settings import LogSettings


def _dumps(obj: object, **_: object) -> bytes:
    return orjson.dumps(obj, default=str)


class LineWriter:
    """A structlog logger for rendered lines (bytes), written once per loop turn."""

    def __init__(self, write: Callable[[bytes], Any], flush: Callable[[], Any]) -> None:
        self._write, self._flush = write, flush
        self._lines: list[bytes] = []
        self._scheduled = False

    def msg(self, line: bytes) -> None:
        self._lines.append(line)
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        loop.call_soon(self.flush)
        self._scheduled = True

    log = debug = info = warn = warning = error = err = critical = exception = fatal = msg

    def flush(self) -> None:
        self._scheduled = False
        if self._lines:
            lines, self._lines = self._lines, []
            self._write(b"\n".join(lines) + b"\n")
            self._flush()


_current: LineWriter | None = None


def flush() -> None:
    """Write the JSON lines still pending (before a fork, so none is written twice)."""
    if _current is not None:
        _current.flush()


def _writer(out: TextIO) -> LineWriter:
    """A LineWriter on `out`: its bytes when it has them, else decoded text."""
    binary = getattr(out, "buffer", None)
    if binary is None:
        return LineWriter(lambda data: out.write(data.decode()), out.flush)

    def flush() -> None:  # holds `out`: were it collected, it would close its buffer
        out.flush()

    return LineWriter(binary.write, flush)


def configure(settings: LogSettings, stream: TextIO | None = None, cache: bool = True) -> None:
    """Configure structlog (and stdlib logging, used by aio-pika) once, at start-up."""
    out = stream or sys.stderr
    level = getattr(logging, settings.level.upper())
    as_json = settings.format == "json" or (settings.format == "auto" and not out.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    global _current
    if _current is not None:  # configured again (tests): the last writer's lines first
        _current.flush()
        atexit.unregister(_current.flush)
        _current = None
    if as_json:
        writer = _current = _writer(out)
        atexit.register(writer.flush)
        renderer: Any = structlog.processors.JSONRenderer(serializer=_dumps)
        factory: Any = lambda *_: writer  # noqa: E731  # one writer for every logger
    else:
        renderer = structlog.dev.ConsoleRenderer()
        # WriteLogger: one write per line (print() writes the newline separately).
        factory = structlog.WriteLoggerFactory(out)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory,
        cache_logger_on_first_use=cache,
    )
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stderr)
