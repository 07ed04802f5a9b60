"""A simulated Leapwork Controller (REST API v4), for tests and the demo.

Schedules run flows. A run moves Queued -> Executing -> Finished over `run_duration_s`, with
one run item per flow; with `late_item_s` > 0 the last item appears that long after
Finished, as on a real controller, to exercise the clients' completion rule. Answers carry
.NET's "$id" keys. A finished run whose variables hold `callbackUrl` posts our documented
callback body there with `Authorization: Bearer <callbackToken>`, as a flow's closing HTTP
Request block would. A schedule given `variables` defines only those: runNow drops the
others without a word, as Leapwork does, and the schedule's read lists them ([U] Leapwork
documents no such field; without `variables` the read has none). The simulator never
blocks: runs advance in their own tasks.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from multidict import MultiMapping

from service.simulators.base import Handler, Simulator, json_response

API = "/api/v4"
VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
PASSING = frozenset({"Pass", "Passed", "Done"})


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _message(status: int, text: str) -> web.Response:
    """An error as ASP.NET Web API writes it."""
    return json_response({"$id": "1", "Message": text}, status)


@dataclass
class Schedule:
    id: str
    title: str
    flows: list[str]
    enabled: bool = True
    # The variables defined on the schedule: runNow keeps only these, silently, as
    # Leapwork does. None: any name is kept, and the schedule's read lists none (as in
    # Leapwork's documented answer).
    variables: tuple[str, ...] | None = None

    def doc(self) -> dict[str, Any]:
        """A ListSchedules item: the documented fields, and [U] its variables if defined."""
        doc = {"Id": self.id, "Title": self.title, "IsEnabled": self.enabled, "Type": "Schedule"}
        if self.variables is not None:
            names = enumerate(self.variables, 2)
            doc["Variables"] = [{"$id": str(n), "Name": name, "Value": ""} for n, name in names]
        return doc

    def accepted(self, variables: dict[str, str]) -> dict[str, str]:
        """The runNow variables the schedule defines; Leapwork drops the rest unsaid."""
        if self.variables is None:
            return variables
        return {name: value for name, value in variables.items() if name in self.variables}


@dataclass
class RunItem:
    id: str
    title: str
    status: str
    created_at: str = field(default_factory=_now)


@dataclass
class Run:
    id: str
    schedule: Schedule
    variables: dict[str, str]
    query: str  # the raw query string, as sent
    outcomes: list[str]  # the final FlowInfo.Status of each flow
    status: str = "Queued"
    items: list[RunItem] = field(default_factory=list)
    finished_at: str | None = None

    @property
    def passed(self) -> bool:
        return all(outcome in PASSING for outcome in self.outcomes)

    def add_item(self, index: int, status: str) -> None:
        self.items.append(RunItem(str(uuid.uuid4()), self.schedule.flows[index], status))

    def finish(self) -> None:
        self.status, self.finished_at = "Finished", _now()
        for index, item in enumerate(self.items):
            item.status = self.outcomes[index]

    def doc(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scheduleId": self.schedule.id,
            "status": self.status,
            "variables": self.variables,
            "query": self.query,
            "items": [[item.title, item.status] for item in self.items],
        }


class LeapworkSimulator(Simulator):
    """Leapwork's schedules, runs and run items, with faults and flow callbacks."""

    name = "leapwork"

    def __init__(
        self,
        access_key: str = "sim-access-key-01",
        *,
        run_duration_s: float = 0.2,
        late_item_s: float = 0.0,
    ) -> None:
        super().__init__()
        self.access_key = access_key
        self.run_duration_s = run_duration_s
        self.late_item_s = late_item_s
        self.pass_status = "Passed"  # [U] the docs sample says "Pass"
        self.item_ids_field = "RunItemIds"  # [U] v3 docs say "RunItemsIds"
        self.schedules: dict[str, Schedule] = {}
        self.runs: dict[str, Run] = {}
        self.callbacks: list[dict[str, Any]] = []  # each callback sent, failed or dropped
        self.schedule_reads = 0  # GET /api/v4/schedules (the list) answered
        self._outcomes: list[tuple[str, ...]] = []

    # --- control, from tests -------------------------------------------------------------

    def add_schedule(
        self,
        title: str,
        flows: list[str] | None = None,
        enabled: bool = True,
        schedule_id: str | None = None,
        variables: list[str] | None = None,
    ) -> str:
        """Add a schedule of flows (one "Flow A" by default); return its id. With
        `variables`, the schedule defines those only, and runNow drops any other."""
        identity = schedule_id or str(uuid.uuid4())
        defined = None if variables is None else tuple(variables)
        schedule = Schedule(identity, title, list(flows or ["Flow A"]), enabled, defined)
        self.schedules[schedule.id] = schedule
        return schedule.id

    def next_outcome(self, *statuses: str) -> None:
        """End the next run's flows with these statuses, in flow order ("Failed", ...)."""
        self._outcomes.append(statuses or ("Failed",))

    def state(self) -> dict[str, Any]:
        return {
            "schedules": [s.doc() for s in self.schedules.values()],
            "runs": [run.doc() for run in self.runs.values()],
            "callbacks": self.callbacks,
        }

    # --- the vendor API ------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        add, guard = app.router.add_route, self._guard
        add("GET", f"{API}/schedules", guard(self._list_schedules))
        add("PUT", f"{API}/schedules/{{id}}/runNow", guard(self._run_now))
        add("GET", f"{API}/schedules/{{id}}/status", guard(self._schedule_status))
        add("GET", f"{API}/run/{{id}}", guard(self._run_summary))
        add("GET", f"{API}/run/{{id}}/status", guard(self._run_status))
        add("GET", f"{API}/run/{{id}}/runItemIds", guard(self._run_item_ids))
        add("GET", f"{API}/runItems/{{id}}", guard(self._run_item))

    def _guard(self, handler: Handler) -> Handler:
        async def checked(request: web.Request) -> web.StreamResponse:
            given = request.headers.get("AccessKey", "").encode()
            if not hmac.compare_digest(given, self.access_key.encode()):
                return _message(401, "Authorization has been denied for this request.")
            return await handler(request)

        return checked

    async def _list_schedules(self, request: web.Request) -> web.Response:
        self.schedule_reads += 1
        docs = [{"$id": str(n), **s.doc()} for n, s in enumerate(self.schedules.values(), 1)]
        return json_response(docs)

    async def _run_now(self, request: web.Request) -> web.Response:
        schedule = self.schedules.get(request.match_info["id"])
        if schedule is None:
            return _message(404, "Schedule not found")
        problem = variable_problem(request.query)
        if problem:
            return _message(400, problem)
        if not schedule.enabled:  # [U] plugins refuse disabled schedules before asking
            return _message(400, f"Schedule {schedule.title} is disabled")
        if self._executing(schedule):
            text = f"Could not run schedule {schedule.title} as it is already in execution state"
            return _message(410, text)
        variables = schedule.accepted(dict(request.query))
        run = self._start(schedule, variables, request.rel_url.raw_query_string)
        return json_response({"$id": "1", "RunId": run.id})

    async def _schedule_status(self, request: web.Request) -> web.Response:
        schedule = self.schedules.get(request.match_info["id"])
        if schedule is None:
            return _message(404, "Schedule not found")
        status = "Executing" if self._executing(schedule) else "Finished"
        return json_response({"$id": "1", "Status": status})

    async def _run_summary(self, request: web.Request) -> web.Response:
        run = self.runs.get(request.match_info["id"])
        if run is None:
            return _message(404, "Run not found")
        finished = run.status == "Finished"
        failed = sum(item.status not in PASSING for item in run.items) if finished else 0
        schedule = {"$id": "2", "ScheduleId": run.schedule.id, "ScheduleTitle": run.schedule.title}
        doc = {"$id": "1", "RunId": run.id, "Schedule": schedule, "Status": run.status}
        return json_response({**doc, "Failed": failed, "Total": len(run.items)})

    async def _run_status(self, request: web.Request) -> web.Response:
        run = self.runs.get(request.match_info["id"])
        if run is None:
            return _message(404, "Run not found")
        return json_response({"$id": "1", "Status": run.status})

    async def _run_item_ids(self, request: web.Request) -> web.Response:
        run = self.runs.get(request.match_info["id"])
        if run is None:
            return _message(404, "Run not found")
        return json_response({"$id": "1", self.item_ids_field: [i.id for i in run.items]})

    async def _run_item(self, request: web.Request) -> web.Response:
        found = [(run, item) for run in self.runs.values() for item in run.items]
        for run, item in found:
            if item.id == request.match_info["id"]:
                return json_response(run_item_doc(run, item))
        return _message(404, "Run item not found")

    # --- runs ----------------------------------------------------------------------------

    def _executing(self, schedule: Schedule) -> bool:
        return any(r.schedule is schedule and r.status != "Finished" for r in self.runs.values())

    def _start(self, schedule: Schedule, variables: dict[str, str], query: str) -> Run:
        outcomes = self._outcomes_for(schedule, variables)
        run = Run(str(uuid.uuid4()), schedule, variables, query, outcomes)
        self.runs[run.id] = run
        self.spawn(self._drive(run))
        return run

    def _outcomes_for(self, schedule: Schedule, variables: dict[str, str]) -> list[str]:
        chosen = list(self._outcomes.pop(0)) if self._outcomes else []
        if variables.get("forceFail", "").lower() == "true":
            chosen = ["Failed"]
        padding = [self.pass_status] * len(schedule.flows)
        return (chosen + padding)[: len(schedule.flows)]

    async def _drive(self, run: Run) -> None:
        """Move a run through Executing to Finished, add a late item, then call back."""
        quarter = self.run_duration_s / 4
        late = 1 if self.late_item_s > 0 else 0
        await asyncio.sleep(quarter)  # simulated time in this run's own task
        run.status = "Executing"
        for index in range(len(run.outcomes) - late):
            run.add_item(index, "Running")
        await asyncio.sleep(3 * quarter)
        run.finish()
        if late:
            await asyncio.sleep(self.late_item_s)
            run.add_item(len(run.outcomes) - 1, run.outcomes[-1])
        await self._call_back(run)

    # --- callbacks -----------------------------------------------------------------------

    async def _call_back(self, run: Run) -> None:
        url = run.variables.get("callbackUrl")
        if not url:
            return
        record: dict[str, Any] = {"runId": run.id, "url": url}
        if self.faults.drop_callbacks:
            self.callbacks.append({**record, "dropped": True})
            return
        headers = {"Content-Type": "application/json"}
        token = run.variables.get("callbackToken")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        status = await self.post(url, orjson.dumps(callback_body(run)), headers)
        self.callbacks.append({**record, **_result(status)})


def _result(status: int | None) -> dict[str, Any]:
    return {"status": status} if status is not None else {"error": "undelivered"}


def variable_problem(query: MultiMapping[str]) -> str | None:
    """Why runNow refuses these variables (its 400), or None."""
    names = list(query.keys())
    for name in names:
        if not VARIABLE_NAME.match(name):
            return f"Variable name {name!r} is invalid"
    if len(names) != len(set(names)):
        return "Variable with such name is already in request"
    return None


def run_item_doc(run: Run, item: RunItem) -> dict[str, Any]:
    """A run item as `GET /api/v4/runItems/{id}` answers it. [U] The docs show RunId and
    AgentInfo.EnvironmentTitle, Leapwork's plugins read AutomationRunId and AgentTitle:
    both spellings are sent (contracts/leapwork.json)."""
    flow = {"$id": "2", "FlowId": str(uuid.uuid5(uuid.NAMESPACE_URL, item.title))}
    agent = {"$id": "3", "AgentId": "7dbf0000-0000-4000-8000-000000000001"}
    agent |= {"AgentTitle": "Simulated Agent", "EnvironmentTitle": "Simulated Agent"}
    agent |= {"ConnectionType": "RemoteAgent"}
    return {
        "$id": "1",
        "RunItemId": item.id,
        "RunId": run.id,
        "AutomationRunId": run.id,
        "FlowInfo": {**flow, "FlowTitle": item.title, "Status": item.status},
        "AgentInfo": agent,
        "CreatedAt": item.created_at,
        "RunType": "Manual",
    }


def callback_body(run: Run) -> dict[str, Any]:
    """Our documented Leapwork callback (README "Pointing the platforms at the service")."""
    passed = sum(outcome in PASSING for outcome in run.outcomes)
    outputs = {"passed": passed, "failed": len(run.outcomes) - passed, "total": len(run.outcomes)}
    return {
        "runId": run.id,
        "scheduleId": run.schedule.id,
        "status": "Finished",
        "result": "Passed" if run.passed else "Failed",
        "correlationId": run.variables.get("correlationId"),
        "finishedAt": run.finished_at,
        "outputs": outputs,
    }
