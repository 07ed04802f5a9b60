"""Meters: what a process costs, read from /proc while it runs.

RSS        VmRSS of /proc/<pid>/status, sampled in the background
CPU        utime + stime of /proc/<pid>/stat, over a window

A server of several processes (forked receivers) counts whole: its children's CPU and
RSS are added to its own. RSS counts pages shared since the fork once per process, so
the sum is an upper bound of what they take.
machine    busy and total ticks of /proc/stat, to see what else ran meanwhile
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
RSS_INTERVAL_S = 0.2


def family(pid: int) -> list[int]:
    """A process and its children (forked receivers)."""
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [pid, *map(int, children)]
    return [pid]


def rss_mb(pid: int) -> float:
    """Resident set size (VmRSS) of a process and its children, in MiB."""
    return sum(_own_rss_mb(p) for p in family(pid))


def _own_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def pss_mb(pid: int) -> float:
    """Proportional set size of a process and its children, in MiB: a page shared by k
    processes counts 1/k in each, so the sum is what they take together."""
    total = 0.0
    for p in family(pid):
        for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) / 1024
    return total


def cpu_s(pid: int) -> float:
    """CPU time (user + system) a process and its children have used so far, in seconds."""
    return sum(_own_cpu_s(p) for p in family(pid))


def _own_cpu_s(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_jiffies() -> tuple[int, int]:
    """Busy and total CPU time of the whole machine so far, in clock ticks (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def broker_pid() -> int | None:
    """The local RabbitMQ's pid (the beam.smp process), if there is one to watch."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        with contextlib.suppress(OSError):
            if comm.read_text().strip() == "beam.smp":
                return int(comm.parent.name)
    return None


def watched(**pids: int) -> dict[str, int]:
    """The processes to meter: those given, and the broker when it runs here."""
    broker = broker_pid()
    return pids | ({"broker": broker} if broker is not None else {})


@dataclass
class CpuMeter:
    """CPU use of named processes (% of one core) and of the machine (% of all cores)."""

    pids: dict[str, int]
    _cpu: dict[str, float] = field(default_factory=dict)
    _machine: tuple[int, int] = (0, 0)
    _t: float = 0.0

    def start(self) -> None:
        self._cpu = {name: cpu_s(pid) for name, pid in self.pids.items()}
        self._machine, self._t = machine_jiffies(), time.perf_counter()

    def stop(self) -> dict[str, float]:
        """% of one core per process, and the machine's busy share of all its cores."""
        elapsed = time.perf_counter() - self._t
        used = {name: cpu_s(pid) - self._cpu[name] for name, pid in self.pids.items()}
        busy, total = machine_jiffies()
        share = (busy - self._machine[0]) / max(1, total - self._machine[1])
        percents = {f"{name}_percent": round(100 * u / elapsed, 1) for name, u in used.items()}
        return percents | {"machine_busy_percent": round(100 * share, 1)}


def others_percent(cpu: dict[str, float]) -> float:
    """The machine's busy time not used by the metered processes, in % of one core.

    Other tenants and the kernel: a sign of interference when it is large.
    """
    own = sum(v for k, v in cpu.items() if k != "machine_busy_percent")
    return round(max(0.0, (os.cpu_count() or 1) * cpu["machine_busy_percent"] - own), 1)


def cpu_text(cpu: dict[str, float]) -> str:
    """Each process's CPU, then everything else the machine did, in % of one core."""
    own = {k.removesuffix("_percent"): v for k, v in cpu.items() if k != "machine_busy_percent"}
    own["others"] = others_percent(cpu)
    return ", ".join(f"{name} {v:.0f}%" for name, v in own.items())


async def machine_busy(window_s: float) -> float:
    """How busy the machine is over `window_s`, in % of one core."""
    before = machine_jiffies()
    await asyncio.sleep(window_s)  # the measurement window itself
    busy, total = machine_jiffies()
    share = (busy - before[0]) / max(1, total - before[1])
    return round(100 * share * (os.cpu_count() or 1), 1)


async def idle_cpu(pid: int, idle_s: float) -> dict[str, float]:
    """CPU seconds a process uses over `idle_s` seconds with no requests."""
    before = cpu_s(pid)
    await asyncio.sleep(idle_s)  # the measurement window itself, not a wait for a result
    used = cpu_s(pid) - before
    return {
        "window_s": idle_s,
        "cpu_s": round(used, 3),
        "cpu_percent": round(100 * used / idle_s, 2),
    }


@dataclass
class RssSampler:
    """Samples a process's RSS and PSS (its children's included) in the background while in
    its `async with` block."""

    pid: int
    samples: list[float] = field(default_factory=list)
    pss_samples: list[float] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RssSampler:
        self._task = asyncio.create_task(self._sample())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(OSError):
            self._take()

    def _take(self) -> None:
        self.samples.append(rss_mb(self.pid))
        with contextlib.suppress(OSError):  # smaps_rollup: Linux 4.14 and newer
            self.pss_samples.append(pss_mb(self.pid))

    async def _sample(self) -> None:
        while True:
            self._take()
            await asyncio.sleep(RSS_INTERVAL_S)  # the sampling period
