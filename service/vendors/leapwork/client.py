"""Leapwork Controller REST API v4: run a schedule now, then follow the run to its verdict.

Leapwork has no completion webhook, so `status()` polls the run and its run items the way
Leapwork's own CI plugins do (../shared/reference/vendors.md §1). A flow can still call
back: `start()` passes `callbackUrl` and `callbackToken` as schedule variables for a closing
HTTP Request block. runNow takes variables in its query string only (its body is empty), so
that is where the token goes: it is the run's own (callback_tokens.py), good for that one
run's completion, never a shared secret. Still, never log that URL.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from service.clients.base import Response, RunnerApi
from service.errors import VendorRejected, VendorUnavailable
from service.runs import RunState, RunStatus
from service.vendors.leapwork.settings import LeapworkApi

# FlowInfo.Status of a run item, as Leapwork's Jenkins plugin reads it. [U] The docs show
# "Pass" where the plugins read "Passed": both pass. "Done" passes, as with the plugin's
# default "Done status as Success". Any other word fails, naming the word, so that a
# status we do not know ends the run visibly instead of polling it forever.
PASSED = frozenset({"Pass", "Passed", "Done"})
FAILED = frozenset({"Failed", "Error", "Inconclusive", "Timeout", "Cancelled"})
IN_PROGRESS = frozenset(
    {"NoStatus", "Initializing", "Connecting", "Connected", "Running", "IsProcessing"}
)

# runNow statuses that say "not now" rather than "never": the request is fine, the
# controller cannot take it yet, so the event is retried later.
NOT_NOW = {
    410: "the schedule is still executing its previous run",
    446: "the controller has not enough disk space to start the schedule",
    455: "the controller's database is not responding",
}

RUNS_REMEMBERED = 256  # runs whose finished items are cached between polls
VARIABLE_FIELDS = ("Variables", "ScheduleVariables")  # [U] a schedule's variables, if sent


@dataclass(frozen=True)
class Flow:
    """One run item: the flow's title and its FlowInfo.Status."""

    title: str
    status: str

    @property
    def finished(self) -> bool:
        return self.status not in IN_PROGRESS

    @property
    def passed(self) -> bool:
        return self.status in PASSED


class LeapworkClient(RunnerApi):
    """Run Leapwork schedules and poll their runs; target = {"schedule_id": ...}."""

    vendor = "leapwork"

    def __init__(self, session: aiohttp.ClientSession, settings: LeapworkApi) -> None:
        super().__init__(session, settings.timeout_s)
        self._api = settings.base_url.rstrip("/") + "/api/v4"
        self._headers = {"AccessKey": settings.access_key, "Accept": "application/json"}
        # Finished items never change, so each is fetched once per run (as the plugins do).
        self._finished: OrderedDict[str, dict[str, Flow]] = OrderedDict()

    async def start(
        self,
        target: Mapping[str, Any],
        inputs: Mapping[str, Any],
        *,
        correlation_id: str,
        callback_url: str | None = None,
        callback_secret: str | None = None,
    ) -> RunState:
        """Run the target schedule now, with the inputs as schedule variables."""
        schedule = _guid(_required(target, "schedule_id"), "schedule_id")
        variables = schedule_variables(inputs, correlation_id, callback_url, callback_secret)
        url = self._url(f"/schedules/{_segment(schedule)}/runNow", encode_query(variables))
        doc = strip_ids((await self.call("PUT", url, headers=self._headers)).json())
        return RunState(self.vendor, self._run_id(doc), "pending")

    async def status(self, run_id: str, target: Mapping[str, Any]) -> RunState:
        """Poll the run and its items; it is done only once every listed item has finished."""
        run = _segment(_guid(run_id, "run id"))
        # Status first: every item created before "Finished" is then already listed.
        word = status_word(await self._get(f"/run/{run}/status"))
        ids = item_ids(await self._get(f"/run/{run}/runItemIds"))
        flows = await self._flows(run_id, ids)
        return self._state(run_id, word, ids, flows)

    def translate(self, where: str, response: Response) -> Exception:
        """The error for an unexpected status; Leapwork's "not now" codes are retryable."""
        reason = NOT_NOW.get(response.status)
        if reason is None:
            return super().translate(where, response)
        return VendorUnavailable(self.vendor, f"{where} answered {response.status}: {reason}")

    async def defined_variables(self, schedule_id: str) -> frozenset[str] | None:
        """The names of the variables the schedule defines; None when the controller does
        not say. runNow drops, without a word, every variable a schedule does not define.

        Read from `GET /api/v4/schedules` (ListSchedules, the one schedule read in
        ../shared/contracts/leapwork.json). [U] Its documented items list no variables: a
        `Variables` (or `ScheduleVariables`) field is read when a controller sends one;
        without it nothing can be checked. A schedule missing from the list is refused.
        """
        for item in await self._get("/schedules"):
            if isinstance(item, dict) and item.get("Id") == schedule_id:
                return variable_names(item)
        detail = f"no schedule {schedule_id} in GET /api/v4/schedules (wrong schedule_id?)"
        raise VendorRejected(self.vendor, detail, status=404)

    def _url(self, path: str, query: str = "") -> URL:
        # Already percent-encoded by us: yarl would otherwise turn spaces into "+".
        return URL(self._api + path + (f"?{query}" if query else ""), encoded=True)

    async def _get(self, path: str) -> Any:
        response = await self.call("GET", self._url(path), headers=self._headers)
        return strip_ids(response.json())

    def _run_id(self, doc: Any) -> str:
        # [U] runNow answers {"RunId": ...}; run-flow answers a bare string: take either.
        run_id = doc.get("RunId") if isinstance(doc, dict) else doc
        if not isinstance(run_id, str) or not run_id:
            # The run may have started: retrying could start it twice, so don't.
            raise VendorRejected(self.vendor, "runNow answered without a RunId")
        return run_id

    async def _flows(self, run_id: str, ids: Sequence[str]) -> list[Flow]:
        known = self._remembered(run_id)
        flows = []
        for item_id in ids:  # one at a time: a schedule has few flows, and errors stay plain
            flow = known.get(item_id) or await self._flow(item_id)
            if flow.finished:
                known[item_id] = flow
            flows.append(flow)
        return flows

    async def _flow(self, item_id: str) -> Flow:
        doc = await self._get(f"/runItems/{_segment(item_id)}")
        info = doc.get("FlowInfo") if isinstance(doc, dict) else None
        info = info if isinstance(info, dict) else {}
        return Flow(str(info.get("FlowTitle") or item_id), str(info.get("Status") or "NoStatus"))

    def _remembered(self, run_id: str) -> dict[str, Flow]:
        known = self._finished.pop(run_id, {})
        self._finished[run_id] = known
        while len(self._finished) > RUNS_REMEMBERED:
            self._finished.popitem(last=False)
        return known

    def _state(self, run_id: str, word: str, ids: Sequence[str], flows: list[Flow]) -> RunState:
        finished = [flow for flow in flows if flow.finished]
        failed = [flow for flow in finished if not flow.passed]
        # Items may still appear after "Finished": wait for at least one, and for all listed.
        done = word == "Finished" and 0 < len(ids) <= len(finished)
        if done:
            self._finished.pop(run_id, None)
        outputs = {"passed": len(finished) - len(failed), "failed": len(failed), "total": len(ids)}
        status = run_status(word, done, bool(failed))
        return RunState(self.vendor, run_id, status, word, outputs, failures(failed))


def run_status(word: str, done: bool, any_failed: bool) -> RunStatus:
    """The neutral status of a run from its Status word and its items."""
    if done:
        return "failed" if any_failed else "succeeded"
    return "pending" if word == "Queued" else "running"


def failures(failed: Sequence[Flow]) -> str | None:
    """A line naming the failed flows, or None."""
    if not failed:
        return None
    return "failed flows: " + ", ".join(f"{flow.title} ({flow.status})" for flow in failed)


def schedule_variables(
    inputs: Mapping[str, Any],
    correlation_id: str,
    callback_url: str | None,
    callback_secret: str | None,
) -> dict[str, str]:
    """The runNow variables: the inputs, then ours (which win: a repeated name is a 400)."""
    variables = {name: variable_text(value) for name, value in inputs.items()}
    variables["correlationId"] = correlation_id
    if callback_url:
        variables["callbackUrl"] = callback_url
    if callback_secret:
        variables["callbackToken"] = callback_secret
    return variables


def variable_text(value: Any) -> str:
    """A schedule variable's text: Leapwork variables are strings."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def encode_query(variables: Mapping[str, str]) -> str:
    """`k=v&...` with every name and value percent-encoded (the plugins forget to)."""
    return "&".join(f"{_segment(name)}={_segment(value)}" for name, value in variables.items())


def strip_ids(doc: Any) -> Any:
    """The document without the "$id" reference keys of .NET's JSON serializer."""
    if isinstance(doc, dict):
        return {key: strip_ids(value) for key, value in doc.items() if key != "$id"}
    if isinstance(doc, list):
        return [strip_ids(value) for value in doc]
    return doc


def status_word(doc: Any) -> str:
    """The Status of a run; missing means "Queued", as in Leapwork's Jenkins plugin."""
    word = doc.get("Status") if isinstance(doc, dict) else doc
    return word if isinstance(word, str) and word else "Queued"


def item_ids(doc: Any) -> list[str]:
    """Run item ids; [U] v3 docs say "RunItemsIds", the plugins "RunItemIds": take either."""
    if isinstance(doc, dict):
        doc = doc.get("RunItemIds") or doc.get("RunItemsIds") or []
    return [str(item) for item in doc] if isinstance(doc, list) else []


def variable_names(schedule: Any) -> frozenset[str] | None:
    """The variable names in a schedule document: a list of names or of {Name|Key: ...}
    objects, or an object of name -> value; None when it has no such field."""
    found = None
    if isinstance(schedule, dict):
        found = next((schedule[k] for k in VARIABLE_FIELDS if schedule.get(k) is not None), None)
    if isinstance(found, dict):
        return frozenset(str(name) for name in found)
    if not isinstance(found, list):
        return None
    names = [item if isinstance(item, str) else _variable_name(item) for item in found]
    return frozenset(name for name in names if name)


def _variable_name(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    name = next((item[k] for k in ("Name", "Key", "name", "key") if item.get(k)), None)
    return name if isinstance(name, str) else None


def _segment(text: str) -> str:
    return quote(text, safe="")


def _guid(value: str, what: str) -> str:
    """A schedule or run id, which Leapwork's API takes only as a GUID (contracts/leapwork)."""
    try:
        uuid.UUID(value)
    except ValueError:
        raise VendorRejected(
            "leapwork", f"{what} {value[:80]!r} is not a Leapwork id (a GUID)"
        ) from None
    return value


def _required(target: Mapping[str, Any], key: str) -> str:
    value = target.get(key)
    if not isinstance(value, str) or not value:
        raise VendorRejected("leapwork", f"the target needs a {key!r}")
    return value
