"""A worker killed (SIGKILL) or stopped (SIGTERM) in the middle of a handler."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import pytest

from service.settings import Settings
from tests.faults.conftest import Files, publish_event, queue_depth, wait_for

pytestmark = pytest.mark.integration


async def test_sigkill_mid_handler_redelivers_and_the_effect_happens_once(
    start_worker: Callable[..., Any], files: Files, fault_settings: Settings
) -> None:
    first = await start_worker(slow_s=30)
    await wait_for(lambda: _ready(fault_settings), what="the worker declared its queue")
    await publish_event(fault_settings, "kill-1")
    await wait_for(lambda: files.started_lines(), what="the handler started")
    first.process.send_signal(signal.SIGKILL)
    assert await first.wait_exit() == -signal.SIGKILL
    assert files.effect_lines() == []  # killed before its effect

    second = await start_worker(slow_s=0)
    await wait_for(lambda: files.effect_lines(), what="the event was redelivered and handled")
    await wait_for(lambda: _drained(fault_settings), what="the event was acked")
    second.process.send_signal(signal.SIGTERM)
    assert await second.wait_exit() == 0

    assert files.effect_lines() == ["kill-1"]
    starts = files.started_lines()
    assert starts[0][:2] == ["kill-1", str(first.process.pid)]
    assert starts[-1] == ["kill-1", str(second.process.pid), "True"]  # it knew: redelivered


async def test_sigterm_lets_the_handler_in_flight_finish_then_exits_0(
    start_worker: Callable[..., Any], files: Files, fault_settings: Settings
) -> None:
    worker = await start_worker(slow_s=1.0)
    await wait_for(lambda: _ready(fault_settings), what="the worker declared its queue")
    await publish_event(fault_settings, "term-1")
    await wait_for(lambda: files.started_lines(), what="the handler started")
    worker.process.send_signal(signal.SIGTERM)
    assert await worker.wait_exit() == 0
    assert files.effect_lines() == ["term-1"]  # finished, not cut off
    assert await queue_depth(fault_settings) == 0  # and acked: nothing to redeliver


async def _ready(settings: Settings) -> bool:
    try:
        await queue_depth(settings)
    except Exception:
        return False
    return True


async def _drained(settings: Settings) -> bool:
    return await queue_depth(settings) == 0
