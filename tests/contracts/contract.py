"""The vendors' API contracts (../shared/contracts/*.json) and the checks against them.

One `Contract` per vendor: its operations (plus the token exchange of `auth`, as the
operation "Token"), its webhooks, and its `$defs`, validated with jsonschema (draft 2020-12,
`format` checked). Every check answers a list of texts, empty when everything conforms;
each text names the vendor and the operation or webhook, and where in the document.

Allowances, each a point the contract files leave open (see `unverified` there):
- 429 and 5xx answers are not listed per operation by any vendor: rate limits and
  outages happen on every call, so they are accepted without a body schema.
- 401 (missing or wrong credentials) is listed by few operations; it is accepted for
  every one, without a body schema (RFC 9110 §15.5.2).
- The token endpoints' error answers (400/401) follow RFC 6749 §5.2, not the contract.
- 403 is accepted, without a body schema, on an operation that names `oauth_scopes_any_of`:
  a token without one of those scopes is refused (RFC 6750 §3.1 insufficient_scope). [U]
  UiPath's spec lists no 403; the status is the OAuth convention.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from multidict import CIMultiDict

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = REPO.parent / "shared" / "contracts"

RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$"
)
FORMATS = FormatChecker()


@FORMATS.checks("date-time")
def _date_time(instance: object) -> bool:
    """RFC 3339 date-time (jsonschema checks it only with an optional package)."""
    if not isinstance(instance, str):
        return True
    match = RFC3339.match(instance)
    if match is None:
        return False
    try:
        datetime(*(int(part) for part in match.groups()))
    except ValueError:
        return False
    return True


def contracts_dir() -> Path:
    """The contracts folder, or a failure that says where it was looked for."""
    if not (CONTRACTS / "README.md").is_file():
        pytest.fail(
            f"the vendor contracts are missing: expected them in {CONTRACTS} "
            "(CI clones the repository with ../shared beside it; do the same locally)",
            pytrace=False,
        )
    return CONTRACTS


@functools.cache
def contract(vendor: str) -> Contract:
    """The contract of one vendor, loaded once."""
    doc = json.loads((contracts_dir() / f"{vendor}.json").read_text())
    return Contract(vendor, doc)


# --- validation ---------------------------------------------------------------------------


def problems(defs: Mapping[str, Any], schema: Any, instance: Any, where: str) -> list[str]:
    """What keeps `instance` from matching `schema` ($defs merged in, formats checked)."""
    if not isinstance(schema, dict) or not _specified(schema):
        return []
    validator = _validator(json.dumps({**schema, "$defs": defs}, sort_keys=True))
    found = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"{where}: {error.json_path}: {_message(error)}" for error in found]


@functools.cache
def _validator(schema_text: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_text), format_checker=FORMATS)


def _specified(schema: Mapping[str, Any]) -> bool:
    """Whether a schema says anything ({} or only a $comment says nothing)."""
    return any(key != "$comment" for key in schema)


def _message(error: ValidationError) -> str:
    text = error.message if len(error.message) <= 300 else error.message[:300] + "..."
    if error.context:  # oneOf/anyOf: the deepest failure in a branch tells most
        closest = max(_leaves(error), key=lambda e: (len(e.absolute_path), e.validator != "type"))
        text += f" (closest: {closest.json_path}: {closest.message[:200]})"
    return text


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    if not error.context:
        yield error
    for branch in error.context or ():
        yield from _leaves(branch)


def media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def body_instance(body: bytes, content_type: str | None) -> tuple[Any, str | None]:
    """(the body as data, None) or (None, why it cannot be read)."""
    if not body.strip():
        return None, None
    if media_type(content_type) == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode(), keep_blank_values=True)), None
    try:
        return json.loads(body), None
    except (ValueError, UnicodeDecodeError):
        return None, f"the body is not JSON: {body[:80]!r}"


# --- operations ---------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True)
class Request:
    """One HTTP request as it reached a simulator."""

    method: str
    path: str  # decoded
    query: tuple[tuple[str, str], ...]
    headers: CIMultiDict[str]
    body: bytes


@dataclass
class Operation:
    vendor: str
    doc: dict[str, Any]
    defs: Mapping[str, Any]
    # a check of the request body beyond its schema (LeanIX GraphQL: the SDL's signatures)
    body_check: Callable[[Any, str], list[str]] | None = None
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        self.pattern = _path_pattern(self.path)

    @property
    def name(self) -> str:
        return str(self.doc["name"])

    @property
    def path(self) -> str:
        return str(self.doc["path"])

    @property
    def specificity(self) -> int:
        return len(_PLACEHOLDER.sub("", self.path))

    def matches(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters if this operation is `method path`, else None."""
        allowed = str(self.doc["method"])
        if allowed.isalpha() and allowed.upper() != method.upper():
            return None  # "<as defined by the endpoint ...>" allows any method
        match = self.pattern.search(path)
        return match.groupdict() if match else None

    def _basic_auth_noted(self, request: Request) -> bool:
        """HTTP Basic where the operation's notes say it also works (Workato's API
        Platform: user "api-token", the token as password), though no header lists it."""
        notes = " ".join(self.doc.get("notes") or [])
        given = request.headers.get("Authorization", "")
        return "Basic auth" in notes and given.startswith("Basic ") and bool(given[6:].strip())

    def request_problems(self, request: Request) -> list[str]:
        """What about our request the contract does not allow."""
        where = f"{self.vendor} {self.name} request"
        found = self._params_problems(request, where)
        if not (self._credentials_in_body(request) or self._basic_auth_noted(request)):
            headers = self.doc.get("required_headers") or {}
            found += header_problems(headers, request.headers, where)
        found += self._content_type_problems(request, where)
        found += self._body_problems(request, where)
        return found

    def response_problems(self, status: int, body: bytes, content_type: str | None) -> list[str]:
        """What about a simulator's answer the contract does not allow."""
        where = f"{self.vendor} {self.name} response {status}"
        schema, known = self.response_schema(status)
        if not known:
            return [f"{where}: status {status} is not in the contract for this operation"]
        if schema is None:
            return [] if not body.strip() else [f"{where}: the contract says no body"]
        if schema == "any":
            return []
        instance, unreadable = body_instance(body, content_type)
        if unreadable and _specified(schema):
            return [f"{where}: {unreadable}"]
        return problems(self.defs, schema, instance, where)

    def refused(self, status: int, body: bytes) -> bool:
        """Whether an answer refuses the request: a 4xx, or GraphQL errors[] (which LeanIX
        answers with 200, per the contract's GraphQL notes)."""
        if 400 <= status < 500:
            return True
        if self.body_check is None:
            return False
        answer, _ = body_instance(body, "application/json")
        return isinstance(answer, dict) and bool(answer.get("errors"))

    def response_schema(self, status: int) -> tuple[Any, bool]:
        """(schema or None or "any", whether the status is allowed)."""
        responses = self.doc.get("responses") or {}
        for key in (str(status), f"{status // 100}XX"):
            if key in responses:
                return responses[key], True
        if status == 429 or status >= 500 or status == 401:
            return "any", True  # see the module docstring: allowances
        if status == 403 and self.doc.get("oauth_scopes_any_of"):
            return "any", True  # insufficient scope: see the module docstring
        return None, False

    def _params_problems(self, request: Request, where: str) -> list[str]:
        found: list[str] = []
        path_params = self.matches(request.method, request.path) or {}
        path_schema = self.doc.get("path_params")
        if path_schema:
            found += problems(self.defs, path_schema, _typed(path_params, path_schema), where)
        query_schema = self.doc.get("query_params")
        query = dict(request.query)
        if query_schema:
            found += problems(self.defs, query_schema, _typed(query, query_schema), where)
        elif query:
            found.append(f"{where}: query parameters {sorted(query)} are not in the contract")
        return found

    def _credentials_in_body(self, request: Request) -> bool:
        """A token request with client_id and client_secret in its form, which RFC 6749
        §2.3.1 allows instead of Basic (and ../shared/reference/leanix.md §1 for LeanIX)."""
        if self.name != "Token":
            return False
        form, _ = body_instance(request.body, request.headers.get("Content-Type"))
        return isinstance(form, dict) and {"client_id", "client_secret"} <= set(form)

    def _content_type_problems(self, request: Request, where: str) -> list[str]:
        wanted = media_type(self.doc.get("request_content_type"))
        if not request.body.strip() or not re.fullmatch(r"[\w.+-]+/[\w.+-]+", wanted):
            return []
        sent = media_type(request.headers.get("Content-Type"))
        return [] if sent == wanted else [f"{where}: Content-Type {sent!r}, not {wanted!r}"]

    def _body_problems(self, request: Request, where: str) -> list[str]:
        schema = self.doc.get("request_schema")
        if schema is None:
            return [] if not request.body.strip() else [f"{where}: the contract says no body"]
        instance, unreadable = body_instance(request.body, request.headers.get("Content-Type"))
        if unreadable:
            return [f"{where}: {unreadable}"]
        if instance is None and self.doc.get("request_body_required"):
            return [f"{where}: the contract requires a body"]
        found = problems(self.defs, schema, instance, where)
        return found + (self.body_check(instance, where) if self.body_check else [])


def _path_pattern(template: str) -> re.Pattern[str]:
    """A template such as /odata/Jobs({key}) as a regex anchored at the path's end."""
    parts = _PLACEHOLDER.split(template)
    regex = "".join(
        re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+?)"
        for index, part in enumerate(parts)
    )
    return re.compile(f"{regex}$")  # searched: the base path comes before it


def _typed(values: Mapping[str, str], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Query or path values (text) as the types their schema gives them."""
    properties = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    typed: dict[str, Any] = {}
    for name, text in values.items():
        spec = properties.get(name, extra if isinstance(extra, dict) else {})
        typed[name] = _as_type(text, spec.get("type") if isinstance(spec, dict) else None)
    return typed


def _as_type(text: str, kind: Any) -> Any:
    try:
        if kind == "integer" and re.fullmatch(r"-?\d+", text):
            return int(text)
        if kind == "number":
            return float(text)
    except ValueError:
        return text
    if kind == "boolean" and text in ("true", "false"):
        return text == "true"
    return text


# --- headers ------------------------------------------------------------------------------


def header_problems(
    required: Mapping[str, str], headers: CIMultiDict[str], where: str
) -> list[str]:
    """Each required header present, in the shape its description gives.

    A description is a literal ("application/json"), a scheme then a placeholder
    ("Bearer <access_token>", "RC-WSKEY <key>"), or a placeholder ("<API access key>";
    digits when it says int64). "send one of the two" makes the headers alternatives.
    """
    results = {
        name: _header_problem(name, text, headers.get(name)) for name, text in required.items()
    }
    if any("one of the two" in text for text in required.values()):
        if any(problem is None for problem in results.values()):
            return []
        return [f"{where}: none of the headers {sorted(required)} is sent as described"]
    return [f"{where}: {problem}" for problem in results.values() if problem]


def _header_problem(name: str, description: str, value: str | None) -> str | None:
    if value is None or not value.strip():
        return f"header {name} is missing"
    described = description.split("  (", 1)[0].strip()
    if described.startswith("<"):
        digits = "int64" in described or "int32" in described
        return f"header {name} is not an integer" if digits and not value.isdigit() else None
    scheme, _, placeholder = described.partition(" <")
    if placeholder:
        ok = value.startswith(f"{scheme} ") and value[len(scheme) + 1 :].strip()
        return None if ok else f"header {name} does not start with {scheme!r}"
    offered = [media_type(part) for part in value.split(",")]
    return None if media_type(described) in offered else f"header {name} is not {described!r}"


# --- the contract of one vendor -----------------------------------------------------------


class Contract:
    """One vendor's contract file."""

    def __init__(self, vendor: str, doc: dict[str, Any]) -> None:
        self.vendor = vendor
        self.doc = doc
        self.defs: dict[str, Any] = doc.get("$defs") or {}
        ops = [Operation(vendor, op, self.defs) for op in doc.get("operations") or []]
        token = _token_operation(doc.get("auth") or {})
        self.operations = ops + ([Operation(vendor, token, self.defs)] if token else [])
        graphql = doc.get("graphql")
        if graphql:
            from tests.contracts.graphql_sdl import Sdl  # it builds on this module

            endpoint = urlsplit(str(graphql["endpoint"]).split()[-1].replace("{base}", "")).path
            for op in self.operations:
                if op.path == endpoint:
                    op.body_check = Sdl(graphql["sdl"]).request_problems

    def operation(self, name: str) -> Operation:
        return next(op for op in self.operations if op.name == name)

    def match(self, method: str, path: str) -> Operation | None:
        """The operation `method path` is, the most specific if several fit."""
        fitting = [op for op in self.operations if op.matches(method, path) is not None]
        return max(fitting, key=lambda op: op.specificity) if fitting else None

    def webhook(self, event: str) -> dict[str, Any]:
        """The webhook named `event`, or the first whose name starts with it."""
        hooks = self.doc.get("webhooks") or []
        exact = [w for w in hooks if w["event"] == event]
        return (exact or [w for w in hooks if str(w["event"]).startswith(event)])[0]

    def payload_problems(self, event: str, payload: Any) -> list[str]:
        hook = self.webhook(event)
        return problems(self.defs, hook["payload_schema"], payload, f"{self.vendor} {event}")


def _token_operation(auth: Mapping[str, Any]) -> dict[str, Any] | None:
    """The token exchange of `auth` written as an operation named "Token"."""
    endpoint = auth.get("token_endpoint")
    if not endpoint:
        return None
    path = urlsplit(str(endpoint).replace("{base}", "https://base")).path
    headers = {"Authorization": "Basic <apitoken:API token>"} if auth.get("client_auth") else {}
    return {
        "name": "Token",
        "method": auth.get("method", "POST"),
        "path": path,
        "required_headers": headers,
        "request_content_type": auth.get("content_type"),
        "request_schema": auth.get("request_schema"),
        "request_body_required": True,
        # RFC 6749 §5.2 errors: not described by the contract, accepted as they come.
        "responses": {"200": auth.get("response_schema"), "400": {}, "401": {}},
    }


# --- webhook signatures -------------------------------------------------------------------


def sign(spec: Mapping[str, Any], secret: str, body: bytes) -> str:
    """The signature header's value for `body`, computed as the contract's `signature` says."""
    encoding = str(spec["encoding"])
    if spec["algorithm"] != "HMAC-SHA256" or not encoding.startswith(("base64", "hex")):
        raise AssertionError(f"no check for {spec['algorithm']} in {encoding!r}: add one")
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode() if encoding == "base64" else digest.hex()


def signature_problems(
    spec: Mapping[str, Any] | None, headers: CIMultiDict[str], body: bytes, secret: str | None
) -> list[str]:
    """A delivery signed as the contract's `signature` says (None: signs nothing)."""
    if spec is None:
        return []
    sent = headers.get(str(spec["header"]))
    if sent is None:
        return [] if secret is None else [f"no {spec['header']} header"]
    wanted = sign(spec, secret or "", body)
    return [] if hmac.compare_digest(sent, wanted) else [f"{spec['header']} does not verify"]


def delivery_problems(
    vendor: str, event: str, headers: CIMultiDict[str], body: bytes, secret: str | None
) -> list[str]:
    """A webhook delivery held to the contract: its Content-Type, signature and payload."""
    hook = contract(vendor).webhook(event)
    where = f"{vendor} {event}"
    found = []
    wanted = media_type((hook.get("headers") or {}).get("Content-Type"))
    if wanted and media_type(headers.get("Content-Type")) != wanted:
        found.append(f"{where}: Content-Type {headers.get('Content-Type')!r}, not {wanted!r}")
    found += [f"{where}: {p}" for p in signature_problems(hook["signature"], headers, body, secret)]
    payload, unreadable = body_instance(body, "application/json")
    if unreadable:
        return [*found, f"{where}: {unreadable}"]
    return found + contract(vendor).payload_problems(event, payload)
