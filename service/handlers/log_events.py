"""Log every event the worker receives: a starting point, and a way to watch the bus.

Enabled by `config/local.toml` (used by `make run`). Copy it to write your own handler.
"""

from __future__ import annotations

from service import CloudEvent, Context, handler


@handler("#", name="log_events")
async def log_event(event: CloudEvent, context: Context) -> None:
    """Log the event's CloudEvent attributes (never its data: it may hold personal data)."""
    context.log.info(
        "event.received",
        type=event.type,
        source=event.source,
        subject=event.subject,
        time=event.time,
        redelivered=context.redelivered,
    )
