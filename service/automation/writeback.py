"""Write-back: a finished run's outcome onto the Fact Sheet that started it.

The rule says what to set for success and for failure (fields, tags, lifecycle, lxState,
all templated from the run: one updateFactSheet) and what to comment. Other writers
change the same Fact Sheet meanwhile: a stale rev is re-read and re-applied by the
client, and one that stays stale (RevisionConflict) retries the event on its schedule;
only a validation error is permanent. A rule that says nothing still gets a
comment with the outcome and a link to the run: nobody should have to look it up.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from service.automation.rules import Outcome, Rule
from service.automation.templates import render
from service.clients.leanix_graphql import Patch
from service.errors import RejectEvent
from service.resources import Resources
from service.store.runs import Run

DEFAULT_COMMENT = (
    "leanix-bridge: {{ run.vendor }} run {{ run.id }} {{ run.outcome }}"
    " ({{ run.vendor_state }}) for rule {{ rule.name }}. {{ run.detail }} {{ run.url }}"
)


def run_context(run: Run, rule: Rule | None) -> dict[str, Any]:
    """What write-back templates can refer to."""
    now = datetime.now(UTC)
    return {
        "run": {
            "vendor": run.vendor, "id": run.run_id, "correlation_id": run.correlation_id,
            "outcome": run.outcome, "succeeded": run.outcome == "succeeded",
            "timed_out": run.outcome == "timed_out",
            "vendor_state": run.vendor_state, "outputs": dict(run.outputs), "detail": run.detail,
            "url": run.run_url, "inputs": dict(run.inputs),
        },
        "fact_sheet": {"id": run.fact_sheet_id},
        "rule": {"name": rule.name if rule else run.rule},
        "now": now.isoformat(timespec="seconds"),
        "today": now.date().isoformat(),
    }  # fmt: skip


def patches(outcome: Outcome, context: dict[str, Any]) -> list[Patch]:
    """The GraphQL patches for one outcome: every value a string, as LeanIX wants."""
    found = [Patch("replace", f"/{name}", _text(render(value, context)))
             for name, value in outcome.fields.items()]  # fmt: skip
    found += [Patch("replace", f"/lifecycle/{phase}", _text(render(day, context)))
              for phase, day in outcome.lifecycle.items()]  # fmt: skip
    if outcome.lx_state:
        found.append(Patch("replace", "/lxState", _text(render(outcome.lx_state, context))))
    return found


async def write_back(run: Run, rule: Rule | None, resources: Resources, log: Any) -> None:
    """Apply the rule's write-back for the run's outcome to its Fact Sheet."""
    leanix = resources.leanix_for(run.workspace)
    if leanix is None:
        raise RejectEvent(
            f"cannot write back: no LeanIX client is configured for workspace {run.workspace}"
        )
    if not run.fact_sheet_id:
        log.warning("writeback.no_fact_sheet", run_id=run.run_id)
        return
    context = run_context(run, rule)
    outcome = _outcome(run, rule)
    changes = patches(outcome, context)
    if outcome.tags:  # one write with the fields: one rev to hold, half the conflicts
        names = [_text(render(t, context)) for t in outcome.tags]
        changes.append(Patch.json("add", "/tags", [{"tagName": name} for name in names]))
    note = f"leanix-bridge: {run.vendor} run {run.run_id} {run.outcome}"
    if changes:  # a stale rev on every try raises RevisionConflict: the event is retried
        await leanix.update_fact_sheet(run.fact_sheet_id, changes, comment=note)
    comment = _comment(rule)
    if comment:
        message = " ".join(_text(render(comment, context)).split())
        await leanix.create_comment(run.fact_sheet_id, message)


def _outcome(run: Run, rule: Rule | None) -> Outcome:
    # Failed and timed-out runs alike: whatever did not succeed gets on_failure.
    if rule is None:
        return Outcome()
    return rule.write_back.on_success if run.outcome == "succeeded" else rule.write_back.on_failure


def _comment(rule: Rule | None) -> str | None:
    if rule is None:
        return DEFAULT_COMMENT
    wb = rule.write_back
    if wb.comment is not None:
        return wb.comment or None  # comment = "" turns the comment off
    return DEFAULT_COMMENT if wb.on_success.empty and wb.on_failure.empty else None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()
