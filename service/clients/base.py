"""What every vendor client shares: one bounded HTTP call with errors translated, and the
base of the platform clients that start runs (run states themselves: service/runs.py).

    connection error, timeout, 5xx, 429  -> VendorUnavailable (retry later; Retry-After kept)
    any 3xx                              -> VendorRedirected (permanent), naming the target
    any other 4xx                        -> VendorRejected (permanent)

Redirects are never followed: aiohttp would re-send our headers (AccessKey, API-TOKEN,
RC-WSKEY, bearer tokens) to whatever host the Location names. Error texts carry the
vendor, method, path and status, never a header, a query string or a credential.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDict
from yarl import URL

from service.errors import VendorRedirected, VendorRejected, VendorUnavailable
from service.runs import RunState

REDIRECTS = range(300, 400)
SHOWN_PATH_CHARS = 200  # of a redirect target's path, in error texts


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; an unparsable body from a vendor is a retryable fault."""
        if not self.body.strip():
            return None
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise VendorUnavailable(
                "vendor", f"answered {self.status} with a non-JSON body"
            ) from None


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class HttpApi:
    """One vendor's HTTP calls over the shared session, bounded and translated."""

    vendor = "vendor"

    def __init__(self, session: aiohttp.ClientSession, timeout_s: float) -> None:
        self.session = session
        self.timeout_s = timeout_s

    async def call(
        self,
        method: str,
        url: str | URL,
        *,
        ok: Collection[int] = (200, 201, 202, 204),
        **kwargs: Any,
    ) -> Response:
        """Make one request; return the response if its status is in `ok`, else raise."""
        started = time.perf_counter()
        outcome = "unavailable"
        try:
            response = await self._call(method, url, ok, **kwargs)
            outcome = "ok"
            return response
        except VendorRejected:
            outcome = "rejected"
            raise
        finally:
            elapsed = time.perf_counter() - started
            # Imported here: service.settings imports the platforms, hence this module, and
            # prometheus_client must not be imported before its multiprocess directory is set
            # (service/processes.py prepare_metrics, after the settings are loaded).
            from service import metrics

            metrics.vendor_seconds.labels(self.vendor, outcome).observe(elapsed)

    async def _call(
        self, method: str, url: str | URL, ok: Collection[int], **kwargs: Any
    ) -> Response:
        where = f"{method} {URL(url).path}"
        try:
            async with asyncio.timeout(self.timeout_s):
                request = self.session.request(method, url, allow_redirects=False, **kwargs)
                async with request as raw:
                    body = await raw.read()
                    response = Response(raw.status, CIMultiDict(raw.headers), body)
        except TimeoutError:
            raise VendorUnavailable(
                self.vendor, f"{where} timed out after {self.timeout_s:g} s"
            ) from None
        except aiohttp.ClientError as exc:
            raise VendorUnavailable(self.vendor, f"{where} failed: {type(exc).__name__}") from None
        if response.status in REDIRECTS:
            raise self.redirected(where, URL(url), response)
        if response.status not in ok:
            raise self.translate(where, response)
        return response

    def translate(self, where: str, response: Response) -> Exception:
        """The error for an unexpected status."""
        text = response.body[:300].decode("utf-8", errors="replace")
        detail = f"{where} answered {response.status}: {text}"
        if response.status == 429 or response.status >= 500:
            wait = retry_after(response.headers.get("Retry-After"))
            return VendorUnavailable(self.vendor, detail, retry_after_s=wait)
        return VendorRejected(self.vendor, detail, status=response.status)

    def redirected(self, where: str, url: URL, response: Response) -> VendorRedirected:
        """The error for a redirect, naming its target (without query or user info)."""
        target = redirect_target(url, response.headers.get("Location"))
        shown = target or "an unreadable or missing Location"
        detail = (
            f"{where} answered {response.status}, a redirect to {shown}: not followed, as it "
            "would carry our credentials there; configure the URL that answers directly"
        )
        return VendorRedirected(self.vendor, detail, response.status, target)


def redirect_target(url: URL, location: str | None) -> str | None:
    """scheme://host[:port]/path of a Location, resolved against `url`; None if unreadable."""
    if not location:
        return None
    try:
        target = url.join(URL(location.strip()))
        origin = target.host_port_subcomponent  # IDNA-encoded, [IPv6], default port left out
    except ValueError:
        return None
    if not target.is_absolute() or not origin:
        return None
    return f"{target.scheme}://{origin}{target.raw_path[:SHOWN_PATH_CHARS]}"


class RunnerApi(HttpApi):
    """A platform client that starts runs (a `service.runs.RunClient`). `find` answers None:
    "cannot tell".

    A platform that can look a run up by our correlation id overrides `find`, so a start
    whose answer was lost is found instead of repeated. A platform whose runs may never
    report their end sets `run_deadline_s`: the poller then times such a run out.
    """

    run_deadline_s: float | None = None

    async def find(self, target: Mapping[str, Any], correlation_id: str) -> RunState | None:
        return None
