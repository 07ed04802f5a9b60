"""The `http` platform's client: start a run by calling the rule's endpoint, poll the
status URL its answer gave.

    start   method + URL (the rule's origin; event values only in path and query, encoded)
            + the rule's literal headers + the named credential's headers (only to its
            hosts) + X-Correlation-Id; the JSON body is the rendered `start.inputs` (less
            those the URL's variables took), with our correlation id, the callback URL and
            the run's own callback token placed where the rule points
    status  GET <the rule's origin><status path> with the same credential

HTTPS only, unless a host is listed in `plain_http_hosts` (tests, a sidecar). Errors as
in clients/base.py: 429 and 5xx retry later (Retry-After kept), 4xx and redirects are
refused. No error text carries a header, a credential or a query string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from service import callback_tokens
from service.clients.base import RunnerApi
from service.errors import ConfigError, VendorRejected
from service.runs import RunState
from service.vendors.http.answer import AWAITING_CALLBACK, VENDOR, polled, started
from service.vendors.http.endpoint import Endpoint, build_url, endpoint, same_origin
from service.vendors.http.settings import Credential, HttpApi, named_credentials

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class HttpClient(RunnerApi):
    """Call any HTTPS endpoint a rule names, with credentials from settings only."""

    vendor = VENDOR

    def __init__(self, session: aiohttp.ClientSession, settings: HttpApi) -> None:
        super().__init__(session, settings.timeout_s)
        self.settings = settings
        self.run_deadline_s = settings.run_deadline_s
        self._credentials = named_credentials(settings)

    def __repr__(self) -> str:
        return f"HttpClient(timeout_s={self.timeout_s:g}, credentials={sorted(self._credentials)})"

    async def start(
        self,
        target: Mapping[str, Any],
        inputs: Mapping[str, Any],
        *,
        correlation_id: str,
        callback_url: str | None = None,
        callback_secret: str | None = None,
    ) -> RunState:
        """Call the endpoint; answer its outcome if it gave one, else a running run.

        `callback_secret` is the run's own callback token (callback_tokens.py), or SIGNED
        when the endpoint is to sign its callback with a secret of its own."""
        spec = self.endpoint(target)
        url, rest = self.url(spec, inputs)
        headers = self.headers(spec, url, {spec.correlation_header: correlation_id})
        callback = Callback(callback_url, callback_secret) if callback_url else None
        body = request_body(spec, rest, correlation_id, callback)
        response = await self.call(spec.method, url, headers=headers, json=body)
        return started(spec, response, url, correlation_id)

    async def status(self, run_id: str, target: Mapping[str, Any]) -> RunState:
        """The run's state at its status URL; without one, running: only a callback tells."""
        spec = self.endpoint(target)
        if not run_id.startswith("/") or run_id.startswith("//"):
            return RunState(VENDOR, run_id, "running", detail=AWAITING_CALLBACK)
        url = URL(str(spec.origin) + run_id, encoded=True)
        if not same_origin(url, spec.origin):
            raise VendorRejected(VENDOR, "the run's status path leaves the rule's host")
        response = await self.call("GET", url, headers=self.headers(spec, url))
        return polled(spec, response, run_id, str(url))

    def endpoint(self, target: Mapping[str, Any]) -> Endpoint:
        """The rule's endpoint; a target that cannot be called is refused, not retried."""
        try:
            spec = endpoint(target, "start.target")
        except ConfigError as exc:
            raise VendorRejected(VENDOR, str(exc)) from None
        self._scheme(spec.origin)
        return spec

    def url(self, spec: Endpoint, inputs: Mapping[str, Any]) -> tuple[URL, dict[str, Any]]:
        """The URL with the inputs its variables name, and the inputs left for the body;
        refused if they would move it (a `..` segment, another host)."""
        try:
            return build_url(spec, inputs)
        except ValueError as exc:
            raise VendorRejected(VENDOR, f"the inputs cannot fill the URL: {exc}") from None

    def headers(
        self, spec: Endpoint, url: URL, extra: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """The rule's literal headers, then the credential's (which nothing can replace)."""
        headers = {"Accept": "application/json", **spec.headers, **(extra or {})}
        credential = self._credential(spec.credential, url)
        if credential is not None:
            headers = _without(headers, credential.headers) | dict(credential.headers)
        return headers

    def _credential(self, name: str | None, url: URL) -> Credential | None:
        if name is None:
            return None
        credential = self._credentials.get(name)
        if credential is None:
            raise VendorRejected(
                VENDOR, f"no credential {name!r}: add one to [[clients.http.credentials]]"
            )
        if not credential.allows(url.host or "", url.explicit_port):
            raise VendorRejected(
                VENDOR,
                f"credential {name!r} is not bound to host {url.host}: add the host to its "
                "hosts in clients.http.credentials if it is meant to go there",
            )
        return credential

    def _scheme(self, origin: URL) -> None:
        if origin.scheme == "http" and not self.settings.plain_http(origin.host or ""):
            raise VendorRejected(
                VENDOR,
                f"{origin.host} is called over plain http: use https, or list the host in "
                "clients.http.plain_http_hosts (tests and localhost only)",
            )


@dataclass(frozen=True)
class Callback:
    """Where the run calls back, and its own token (or SIGNED: no token, a signature)."""

    url: str
    token: str | None = field(default=None, repr=False)


def request_body(
    spec: Endpoint, inputs: Mapping[str, Any], correlation_id: str, callback: Callback | None
) -> Any:
    """The JSON body: the inputs, with our id, callback URL and token where the rule says."""
    if spec.method not in BODY_METHODS:
        return None
    body: dict[str, Any] = dict(inputs)
    if spec.correlation_pointer:
        body = placed(body, spec.correlation_pointer, correlation_id)
    if callback is None:
        return body
    if spec.callback_pointer:
        body = placed(body, spec.callback_pointer, callback.url)
    token = callback.token
    if spec.callback_token_pointer and token and callback_tokens.well_formed(token):
        body = placed(body, spec.callback_token_pointer, token)
    return body


def placed(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `doc` with `value` at the JSON pointer `path` (objects made on the way)."""
    steps = [s.replace("~1", "/").replace("~0", "~") for s in path.split("/")[1:]]
    if not steps:
        return doc
    copy = dict(doc)
    node = copy
    for step in steps[:-1]:
        child = node.get(step)
        node[step] = dict(child) if isinstance(child, Mapping) else {}
        node = node[step]
    node[steps[-1]] = value
    return copy


def _without(headers: Mapping[str, str], drop: Mapping[str, str]) -> dict[str, str]:
    names = {name.lower() for name in drop}
    return {name: value for name, value in headers.items() if name.lower() not in names}
