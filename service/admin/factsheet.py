"""The Fact Sheet an event is about, as the console shows it: id, name, type, LeanIX link.

Read from the event's own data (a LeanIX delivery carries `factSheet`, directly or inside
`payload`), never fetched from LeanIX inside the request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from service.admin.bodies import FactSheet
from service.settings import LeanixApi
from service.store.eventlog import LoggedEvent


def fact_sheet(event: LoggedEvent, leanix: LeanixApi) -> FactSheet | None:
    """The event's Fact Sheet, or None when it is not about one."""
    found = _found(event.data)
    fact_id = _text(found.get("id")) or (event.subject if _from_leanix(event) else None)
    if not fact_id:
        return None
    kind = _text(found.get("type"))
    name = _text(found.get("displayName")) or _text(found.get("name"))
    return FactSheet(fact_id, name, kind, _url(leanix, fact_id, kind))


def _found(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        return {}
    inner = data.get("payload")
    for holder in (data, inner if isinstance(inner, dict) else {}):
        if isinstance(holder.get("factSheet"), dict):
            return dict(holder["factSheet"])
    return {}


def _from_leanix(event: LoggedEvent) -> bool:
    return event.type.startswith("leanix.factsheet.")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _url(leanix: LeanixApi, fact_id: str, kind: str | None) -> str | None:
    """A link into LeanIX: only with a workspace name and the Fact Sheet's type."""
    if not leanix.workspace_name or not kind:
        return None
    parts = (leanix.workspace_name, "factsheet", kind, fact_id)
    return leanix.base_url.rstrip("/") + "/" + "/".join(quote(p, safe="") for p in parts)
