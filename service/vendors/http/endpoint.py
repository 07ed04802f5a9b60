"""Endpoint: what a rule's `start.target` tells the `http` platform to call.

    start.target = { method = "POST", credential = "n8n",
                     url = "https://n8n.example.com/webhook/apps/{factSheetId}?name={name}",
                     headers = { "X-Flow" = "provision" },
                     correlation_pointer = "/correlationId", callback_pointer = "/callbackUrl",
                     callback_token_pointer = "/callbackToken", run_id = "/executionId",
                     status_url = "location", state = "/status",
                     states = { success = "succeeded", error = "failed" },
                     outputs = "/data", detail = "/error" }
    start.inputs = { factSheetId = "{{ fact_sheet.id }}", name = "{{ fact_sheet.name }}" }

The scheme and host are literal in the rule. A `{name}` variable (RFC 6570 simple
expansion) may stand only in the path or the query; it takes the rendered input `name`,
percent-encoded whole (it can add no segment, parameter or fragment, and never reach the
host), and that input is then sent in the URL only, not in the body. After expansion the
URL's origin is checked again. Header values are literal and credentials come from
settings, by name: event data fills the path, the query and the JSON body, nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import quote, urlsplit

import orjson
from yarl import URL

from service.errors import ConfigError
from service.runs import RunStatus
from service.vendors.http.settings import HEADER_NAME

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
STATUSES = frozenset({"pending", "running", "succeeded", "failed"})
# Credentials come from settings; framing is aiohttp's. A rule may set neither.
FORBIDDEN_HEADERS = frozenset({
    "authorization", "proxy-authorization", "cookie", "host", "content-length",
    "transfer-encoding", "connection", "upgrade", "te", "trailer", "keep-alive",
})  # fmt: skip
TEMPLATE = re.compile(r"\{\{.*?\}\}")  # a rule template: never in a target, which is not rendered
VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MARK = "zq0variable0qz"  # stands in for a variable while the URL is parsed
_LITERAL_SAFE = "/?&=:;@!$'()*+,~%[]"  # a rule's own URL text is sent as written
_POINTERS = ("correlation_pointer", "callback_pointer", "callback_token_pointer", "run_id",
             "state", "outputs", "detail")  # fmt: skip
_KEYS = {"method", "url", "credential", "headers", "correlation_header", "status_url", "states",
         *_POINTERS}  # fmt: skip


@dataclass(frozen=True)
class Endpoint:
    """A rule's endpoint, checked: its URL's origin is fixed, its headers literal."""

    method: str
    url: str  # {name} variables only in the path and query
    origin: URL  # scheme://host[:port], literal in the rule
    credential: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    correlation_header: str = "X-Correlation-Id"
    correlation_pointer: str | None = None  # where the body carries our correlation id
    callback_pointer: str | None = None  # where the body carries the callback URL
    callback_token_pointer: str | None = None  # ... and the run's own callback token
    run_id: str | None = None  # where the start answer names the run
    status_url: str = "location"  # the Location header, or a pointer into the start answer
    state: str | None = None  # where a status (or start) answer gives the run's state
    states: Mapping[str, RunStatus] = field(default_factory=dict)
    outputs: str | None = None
    detail: str | None = None


def endpoint(target: Mapping[str, Any], key: str) -> Endpoint:
    """A rule's `start.target` as an Endpoint; ConfigError names the key that is wrong."""
    unknown = set(target) - _KEYS
    if unknown:
        raise ConfigError(f"{key}.{sorted(unknown)[0]}", f"unknown key (expected {sorted(_KEYS)})")
    url = target.get("url")
    if not isinstance(url, str) or not url:
        raise ConfigError(f"{key}.url", "required: the https:// URL to call")
    pointers = {name: _pointer(target.get(name), f"{key}.{name}") for name in _POINTERS}
    return Endpoint(
        method=_method(target.get("method", "POST"), f"{key}.method"),
        url=url,
        origin=origin_of(url, f"{key}.url"),
        credential=_optional_text(target.get("credential"), f"{key}.credential"),
        headers=_headers(target.get("headers"), f"{key}.headers"),
        correlation_header=_header_name(
            target.get("correlation_header", "X-Correlation-Id"), f"{key}.correlation_header"
        ),
        status_url=_status_url(target.get("status_url", "location"), f"{key}.status_url"),
        states=_states(target.get("states"), f"{key}.states"),
        **pointers,
    )


def origin_of(url: str, key: str) -> URL:
    """scheme://host[:port] of a URL template, which must be literal there."""
    if TEMPLATE.search(url):
        raise ConfigError(key, "takes {name} variables from start.inputs, not {{ templates }}")
    if "{" in VARIABLE.sub("", url) or "}" in VARIABLE.sub("", url):
        raise ConfigError(key, "a variable is {name}: letters, digits and _ between braces")
    parts = urlsplit(VARIABLE.sub(_MARK, url))
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ConfigError(key, "must be an absolute https:// URL")
    if _MARK in parts.scheme + parts.netloc or "\\" in url:
        raise ConfigError(key, "the scheme and host must be literal: variables only in path/query")
    if "@" in parts.netloc:
        raise ConfigError(key, "no user information in the URL: name a credential instead")
    if parts.fragment or "#" in url:
        raise ConfigError(key, "no #fragment: it is never sent")
    try:
        origin = URL(f"{parts.scheme}://{parts.netloc}")
        origin.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError:
        raise ConfigError(key, "the host or port cannot be parsed") from None
    if not origin.host:
        raise ConfigError(key, "names no host")
    return origin


def build_url(endpoint: Endpoint, inputs: Mapping[str, Any]) -> tuple[URL, dict[str, Any]]:
    """The URL to call, each variable's input percent-encoded whole, and the inputs left
    for the body. ValueError if an input is missing, if the path would hold a `.` or `..`
    segment, or if the origin moved."""
    base = _base(endpoint.url)
    rest, pieces, last, used = endpoint.url[len(base) :], [], 0, set()
    for match in VARIABLE.finditer(rest):
        name = match.group(1)
        if name not in inputs:
            raise ValueError(f"start.inputs has no {name!r} for the URL's {{{name}}}")
        pieces.append(quote(rest[last : match.start()], safe=_LITERAL_SAFE))
        pieces.append(quote(_text(inputs[name]), safe=""))
        used.add(name)
        last = match.end()
    pieces.append(quote(rest[last:], safe=_LITERAL_SAFE))
    url = URL(base + "".join(pieces), encoded=True)
    if not same_origin(url, endpoint.origin):
        raise ValueError("the expanded URL left the rule's scheme and host")
    if any(segment in (".", "..") for segment in url.raw_path.split("/")):
        raise ValueError("an input would make a '.' or '..' path segment")
    return url, {name: value for name, value in inputs.items() if name not in used}


def same_origin(url: URL, origin: URL) -> bool:
    """Whether `url` has the scheme, host and port of `origin`."""
    return (url.scheme, url.host, url.port) == (origin.scheme, origin.host, origin.port)


def _base(url: str) -> str:
    """The literal `scheme://authority` a URL template starts with."""
    parts = urlsplit(VARIABLE.sub(_MARK, url))
    return url[: len(parts.scheme) + 3 + len(parts.netloc)]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list):
        return orjson.dumps(value).decode()
    return str(value).lower() if isinstance(value, bool) else str(value)


def _method(value: Any, key: str) -> str:
    method = value.upper() if isinstance(value, str) else ""
    if method not in METHODS:
        raise ConfigError(key, f"must be one of {', '.join(sorted(METHODS))}")
    return method


def _optional_text(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or TEMPLATE.search(value):
        raise ConfigError(key, "must be the literal name of a credential in clients.http")
    return value


def _header_name(value: Any, key: str) -> str:
    if not isinstance(value, str) or not HEADER_NAME.match(value):
        raise ConfigError(key, "must be a header name")
    if value.lower() in FORBIDDEN_HEADERS:
        raise ConfigError(key, f"{value} cannot be set by a rule")
    return value


def _headers(value: Any, key: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(key, "must be a table of header names to literal values")
    headers = {}
    for name, text in value.items():
        if not isinstance(name, str) or not HEADER_NAME.match(name):
            raise ConfigError(key, f"{str(name)[:40]!r} is not a header name")
        if name.lower() in FORBIDDEN_HEADERS:
            raise ConfigError(f"{key}.{name}", "credentials come from clients.http.credentials")
        if not isinstance(text, str) or TEMPLATE.search(text):
            raise ConfigError(f"{key}.{name}", "must be a literal string (no templates)")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
            raise ConfigError(f"{key}.{name}", "holds a control character")
        headers[name] = text
    return headers


def _pointer(value: Any, key: str) -> str | None:
    """A JSON pointer (RFC 6901): "" (the whole document) or "/a/0/b"."""
    if value is None:
        return None
    if not isinstance(value, str) or (value and not value.startswith("/")):
        raise ConfigError(key, 'must be a JSON pointer such as "/status" or "/data/id"')
    return value


def _status_url(value: Any, key: str) -> str:
    if value == "location":
        return "location"
    pointer = _pointer(value, key)
    if not pointer:
        raise ConfigError(key, '"location" (the Location header) or a JSON pointer')
    return pointer


def _states(value: Any, key: str) -> dict[str, RunStatus]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(key, 'a table of the endpoint\'s words, e.g. { success = "succeeded" }')
    for word, status in value.items():
        if status not in STATUSES:
            raise ConfigError(f"{key}.{word}", f"must be one of {', '.join(sorted(STATUSES))}")
    return {str(word): cast(RunStatus, status) for word, status in value.items()}
