"""The LeanIX simulator's `allFactSheets`: forward Relay pagination and the type facet.

As ../shared/reference/leanix.md 3.5: `first` (at most MAX_PAGE), `after` (an opaque
cursor), `pageInfo { hasNextPage endCursor }`; results are live, not a snapshot. Only the
FactSheetTypes facet is served (other facets are ignored, as if they matched everything).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from graphql import GraphQLError

MAX_PAGE = 1000


def cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _offset(after: str | None) -> int:
    if not after:
        return 0
    try:
        return int(base64.b64decode(after).decode().removeprefix("offset:")) + 1
    except ValueError:
        raise GraphQLError(f"invalid cursor {after!r}") from None


def _types(filter: Mapping[str, Any] | None) -> set[str] | None:
    for facet in (filter or {}).get("facetFilters") or []:
        if facet and facet.get("facetKey") == "FactSheetTypes":
            return set(facet.get("keys") or [])
    return None


def page(
    sheets: Iterable[Any],
    view: Callable[[Any], dict[str, Any]],
    first: int | None,
    after: str | None,
    filter: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """One page of the fact sheets (in insertion order) that pass the type facet."""
    size = min(first or MAX_PAGE, MAX_PAGE)
    types = _types(filter)
    chosen = [view(fs) for fs in sheets if types is None or fs.type in types]
    start = _offset(after)
    items = chosen[start : start + size]
    end = start + len(items) - 1
    return {
        "totalCount": len(chosen),
        "pageInfo": {
            "hasNextPage": end + 1 < len(chosen),
            "endCursor": cursor(end) if items else None,
        },
        "edges": [{"node": item} for item in items],
    }
