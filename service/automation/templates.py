"""Templates: `{{ fact_sheet.name }}` placeholders filled from an event, a Fact Sheet, a run.

Deliberately tiny: a placeholder is a dotted path into a context of plain dicts, nothing
is evaluated, and event data can never inject a template. A value that is exactly one
placeholder keeps its type (a dict stays a dict); inside text it is converted to text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*\}\}")
ROOTS = frozenset({"event", "fact_sheet", "run", "rule", "now", "today"})


class TemplateError(ValueError):
    """A template refers to something the context does not have."""


def paths(template: Any) -> list[str]:
    """Every placeholder path in a template (strings nested in dicts and lists included)."""
    if isinstance(template, str):
        return PLACEHOLDER.findall(template)
    if isinstance(template, Mapping):
        return [p for value in template.values() for p in paths(value)]
    if isinstance(template, list | tuple):
        return [p for value in template for p in paths(value)]
    return []


def render(template: Any, context: Mapping[str, Any]) -> Any:
    """Fill every placeholder of `template` (recursively) from `context`."""
    if isinstance(template, Mapping):
        return {key: render(value, context) for key, value in template.items()}
    if isinstance(template, list | tuple):
        return [render(value, context) for value in template]
    if not isinstance(template, str):
        return template
    whole = PLACEHOLDER.fullmatch(template.strip())
    if whole:
        return lookup(context, whole.group(1))
    return PLACEHOLDER.sub(lambda m: _text(lookup(context, m.group(1))), template)


def lookup(context: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path; a missing step is None, an impossible one an error."""
    value: Any = context
    for step in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(step)
        elif isinstance(value, list | tuple) and step.isdigit():
            value = value[int(step)] if int(step) < len(value) else None
        elif value is None:
            return None
        else:
            raise TemplateError(
                f"{path!r}: {step!r} cannot be looked up in a {type(value).__name__}"
            )
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode() if isinstance(value, Mapping | list) else str(value)
