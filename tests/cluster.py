"""The test session's three-node RabbitMQ cluster (deploy/rabbitmq-cluster.sh).

When a cluster test is among the session's tests, tests/conftest.py starts the cluster in
the background as soon as the tests are collected, so its nodes boot while other tests run,
and stops it at the session's end. The cluster test waits for it (`Cluster.ready`), with a
deadline, and skips, saying why, only where this machine cannot start several RabbitMQ
nodes: RabbitMQ missing, not root, no rabbitmq user, or a node that did not start in time
(with its log's folder). `BRIDGE_CLUSTER_TESTS=0` turns the cluster tests off.

Each session's cluster has its own node names, ports and folders (under
/var/lib/rabbitmq/bridge-test-<pid>-<port>): two suites on one machine, or a cluster started
by hand, never meet. A session killed before its end leaves its nodes running; the next
session stops them (their pytest process is gone).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import random
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.waiting import poll_interval

SCRIPT = Path(__file__).parents[1] / "deploy" / "rabbitmq-cluster.sh"
BASE = Path("/var/lib/rabbitmq")
PREFIX = "bridge-test-"
START_DEADLINE_S = 300  # from the start's launch: three nodes booting on a loaded machine
NODE_WAIT_S = 150  # the script's wait for one node
REPORT: list[str] = []  # lines for the session's summary (the failover times)


def unable() -> str | None:
    """Why this machine cannot start a cluster for the tests, or None if it can."""
    if os.environ.get("BRIDGE_CLUSTER_TESTS") == "0":
        return "the cluster tests are turned off (BRIDGE_CLUSTER_TESTS=0)"
    for tool in ("rabbitmq-server", "rabbitmqctl"):
        if not shutil.which(tool) and not Path("/usr/sbin", tool).exists():
            return f"a RabbitMQ cluster needs {tool}, which is not installed"
    if os.geteuid() != 0:
        return "a RabbitMQ cluster on this machine needs root (the nodes run as the rabbitmq user)"
    try:
        pwd.getpwnam("rabbitmq")
    except KeyError:
        return "a RabbitMQ cluster needs the rabbitmq user, which does not exist"
    return None


def _free_port_base() -> int:
    """A base port whose three AMQP ports and three distribution ports (+20000) are free."""
    for _ in range(50):
        base = random.randrange(20000, 29990)
        ports = [base + n for n in range(3)] + [base + 20000 + n for n in range(3)]
        try:
            for port in ports:
                with socket.socket() as probe:
                    probe.bind(("0.0.0.0", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free ports for a RabbitMQ cluster")


@dataclass
class Cluster:
    """One session's cluster: its names and ports, and the script's start or stop running."""

    name: str
    root: Path
    port_base: int
    output: Path
    starting: subprocess.Popen[bytes] | None = None
    stopping: subprocess.Popen[bytes] | None = None
    launched_at: float = field(default_factory=time.monotonic)

    @classmethod
    def for_session(cls) -> Cluster:
        base = _free_port_base()
        root = BASE / f"{PREFIX}{os.getpid()}-{base}"
        return cls(f"bt{os.getpid()}-c", root, base, Path(f"/tmp/{root.name}.log"))

    @classmethod
    def left_by(cls, root: Path) -> Cluster | None:
        """The cluster a session left in `root` if its pytest process is gone, else None."""
        try:
            pid, base = (int(part) for part in root.name.removeprefix(PREFIX).split("-"))
        except ValueError:
            return None
        try:
            os.kill(pid, 0)
            return None  # its session runs
        except ProcessLookupError:
            pass
        except PermissionError:
            return None
        return cls(f"bt{pid}-c", root, base, Path(f"/tmp/{root.name}.log"))

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CLUSTER_NAME": self.name,
            "CLUSTER_ROOT": str(self.root),
            "CLUSTER_PORT_BASE": str(self.port_base),
            "CLUSTER_WAIT_S": str(NODE_WAIT_S),
        }

    def node(self, index: int) -> str:
        """Node `index`'s (0-based) Erlang name."""
        return f"{self.name}{index + 1}@localhost"

    @property
    def nodes(self) -> list[str]:
        return [self.node(index) for index in range(3)]

    @property
    def urls(self) -> list[str]:
        return [f"amqp://guest:guest@127.0.0.1:{self.port_base + n}/" for n in range(3)]

    def _script(self, *args: str) -> subprocess.Popen[bytes]:
        """The script in its own session (Ctrl-C at pytest does not cut it half way), its
        output to a file: a pipe a detached node inherited would stay open."""
        with self.output.open("ab") as out:
            return subprocess.Popen(
                ["bash", str(SCRIPT), *args], env=self.env(), stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def start(self) -> None:
        self.launched_at = time.monotonic()
        self.starting = self._script("start")

    async def ready(self) -> list[str] | str:
        """The nodes' URLs once the cluster runs, or why it does not (a reason to skip)."""
        assert self.starting is not None
        while self.starting.poll() is None:
            if time.monotonic() - self.launched_at > START_DEADLINE_S:
                return (
                    f"the RabbitMQ cluster did not start within {START_DEADLINE_S} s "
                    f"(the nodes' logs: {self._keep_logs()})"
                )
            await poll_interval()  # the start's progress, polled with a deadline
        if self.starting.returncode != 0:
            said = self.output.read_text(errors="replace").strip().splitlines()[-3:]
            return (
                f"the RabbitMQ cluster did not start: {' / '.join(said)} "
                f"(the nodes' logs: {self._keep_logs()}; the script's: {self.output})"
            )
        return self.urls

    def _keep_logs(self) -> Path:
        """A copy of the nodes' logs that outlives the stop (which removes their folders)."""
        kept = Path(f"/tmp/{self.root.name}-logs")
        for log in self.root.glob("node*/log"):
            shutil.copytree(log, kept / log.parent.name, dirs_exist_ok=True)
        return kept

    def stop(self) -> None:
        """Stop the nodes and remove their folders, in the background (once)."""
        if self.stopping is not None:
            return
        if self.starting is not None and self.starting.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.starting.pid, 15)
            self.starting.wait()
        self.stopping = self._script("stop")

    def wait_stopped(self, timeout_s: float = 60) -> None:
        if self.stopping is None:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            if self.stopping.wait(timeout_s) == 0:
                self.output.unlink(missing_ok=True)


SESSION: Cluster | None = None
LEFT: list[Cluster] = []  # clusters of killed sessions, being stopped


def start_for_session() -> None:
    """Start the session's cluster in the background (and stop what killed sessions left)."""
    global SESSION
    if SESSION is not None or unable() is not None:
        return
    for root in BASE.glob(f"{PREFIX}*"):
        left = Cluster.left_by(root)
        if left is not None:
            left.stop()  # in the background; its names and ports are not ours
            LEFT.append(left)
    SESSION = Cluster.for_session()
    SESSION.start()


def stop_for_session() -> None:
    if SESSION is not None:
        SESSION.stop()
    for cluster in [*LEFT, *([SESSION] if SESSION else [])]:
        cluster.wait_stopped()
