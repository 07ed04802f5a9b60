"""LeanIX client: token exchange, GraphQL (Pathfinder) calls and fact sheet updates.

    token    POST /services/mtm/v1/oauth2/token, Basic apitoken:<API token>; the access
             token is cached until shortly before it expires, fetched by one caller at a
             time, and renewed once when GraphQL answers 401
    metrics  POST /services/metrics/v1/points, Bearer, paced like GraphQL: one point
    graphql  POST /services/pathfinder/v1/graphql, Bearer; every request is paced by one
             token bucket (LeanIX limits each user: resources.py shares it through the
             store between every worker with the same API token); a 429 is waited out
             by everyone sharing the bucket (Retry-After, else 1 s; 5 times, 60 s at
             most); a 5xx or a timeout raises VendorUnavailable at once; errors[] raises
             GraphQLErrors, a VendorRejected
    writes   updateFactSheet under optimistic locking on rev: a stale rev is re-read and the
             patches re-applied after a jittered, doubling backoff (5 writes at most, then
             RevisionConflict: retry later); update_many puts many mutations in one
             request with aliases

The documents, values and error helpers are in leanix_graphql.py; the pace in ratelimit.py.

It must never put the API token or an access token in an exception, a log line or a repr.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import random
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import orjson
import structlog

from service.clients.base import HttpApi, Response, retry_after
from service.clients.leanix_graphql import (
    COMMENT_MUTATION,
    FACT_SHEET_FIELDS,
    UPDATE_MUTATION,
    FactSheet,
    GraphQLErrors,
    Patch,
    RevisionConflict,
    Update,
    UpdateResult,
    as_int,
    batch_mutation,
    by_alias,
    error_list,
    errors_of,
    is_stale,
    result_of,
)
from service.clients.ratelimit import Pacer, RateLimiter
from service.errors import VendorRejected, VendorUnavailable
from service.settings import LeanixApi

log = structlog.get_logger("service.clients.leanix")

TOKEN_PATH = "/services/mtm/v1/oauth2/token"
GRAPHQL_PATH = "/services/pathfinder/v1/graphql"
METRICS_PATH = "/services/metrics/v1/points"
RATE_LIMITED_RETRIES = 5  # 429s waited out for one request
RATE_LIMITED_BUDGET_S = 60.0  # ...and the most time spent waiting them out
STALE_ATTEMPTS = 5  # writes of one update when its rev keeps turning out stale
STALE_BACKOFF_S = 0.05  # the first pause before re-reading a stale rev; doubles each time
STALE_BACKOFF_MAX_S = 2.0
BATCH_SIZE = 25  # mutations per request in update_many
T = TypeVar("T")


@dataclass(frozen=True)
class _AccessToken:
    value: str = field(repr=False)
    renew_at: float  # on the client's clock
    subject: str | None
    user_ids: frozenset[str]  # every claim that may name us in a webhook's userId
    workspace_id: str | None = None  # principal.permission.workspaceId


class LeanixClient(HttpApi):
    """LeanIX's token exchange and GraphQL API, as one technical user."""

    vendor = "leanix"

    def __init__(
        self,
        session: aiohttp.ClientSession,
        settings: LeanixApi,
        clock: Callable[[], float] = time.monotonic,
        limiter: Pacer | None = None,
    ) -> None:
        super().__init__(session, settings.timeout_s)
        self.settings = settings
        self.limiter = limiter or RateLimiter(settings.rate_limit_rps)
        self._base = settings.base_url.rstrip("/")
        self._clock = clock
        self._token: _AccessToken | None = None
        self._subject: str | None = None
        self._user_ids: frozenset[str] = frozenset()
        self._workspace_id: str | None = None
        self._auth_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"LeanixClient(base_url={self.settings.base_url!r})"

    @property
    def technical_user_id(self) -> str | None:
        """The technical user behind the API token (the JWT's `sub`), once a token is held."""
        return self._subject

    @property
    def own_user_ids(self) -> frozenset[str]:
        """Every id of our technical user seen in its tokens: `sub` and `principal.id`.

        Which of them LeanIX puts in a webhook's `userId` is not documented: both are ours.
        """
        return self._user_ids

    @property
    def workspace_id(self) -> str | None:
        """The workspace the API token belongs to (its JWT's claims), once a token is held."""
        return self._workspace_id

    async def authenticate(self) -> str | None:
        """Make sure an access token is held; return the technical user id."""
        await self._access_token()
        return self._subject

    async def access_token(self) -> str:
        """The Bearer token for LeanIX's REST APIs (leanix_webhooks.py): cached, renewed."""
        return await self._access_token()

    def forget_token(self, value: str) -> None:
        """A REST API refused `value` (401): the next `access_token` fetches a new one."""
        self._forget(value)

    # --- GraphQL ----------------------------------------------------------------------------

    async def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one GraphQL operation and return its `data`; raise GraphQLErrors on errors[]."""
        answer = await self._execute(query, variables)
        if answer.get("errors"):
            raise GraphQLErrors(error_list(answer["errors"]))
        data = answer.get("data")
        return data if isinstance(data, dict) else {}

    async def fact_sheet(self, id: str, extra: str = "") -> FactSheet:
        """Read one fact sheet; `extra` is more selection, written in code, never from input."""
        query = (
            f"query FactSheet($id: ID!) {{ factSheet(id: $id) {{ {FACT_SHEET_FIELDS} {extra} }} }}"
        )
        data = await self.graphql(query, {"id": id})
        return self._found(data.get("factSheet"), id)

    async def update_fact_sheet(
        self,
        id: str,
        patches: Sequence[Patch],
        comment: str | None = None,
        rev: int | None = None,
        validate_only: bool = False,
    ) -> FactSheet:
        """Apply patches at `rev` (read first if None). A stale rev is re-read and the
        patches re-applied after a jittered backoff; still stale after STALE_ATTEMPTS
        writes -> RevisionConflict (retry later). Any other GraphQL error is raised as is."""
        for attempt in range(1, STALE_ATTEMPTS + 1):
            try:
                return await self._update_once(id, patches, comment, rev, validate_only)
            except GraphQLErrors as exc:
                if not exc.stale:
                    raise
                log.info("leanix.rev.stale", fact_sheet_id=id, rev=rev, attempt=attempt)
                stale, rev = exc, None
            if attempt < STALE_ATTEMPTS:
                await asyncio.sleep(stale_backoff_s(attempt))
        raise RevisionConflict(id, STALE_ATTEMPTS, stale)

    async def create_comment(self, fact_sheet_id: str, message: str) -> str:
        """Comment on a fact sheet; return the comment's id."""
        variables = {"factSheetId": fact_sheet_id, "message": message}
        data = await self.graphql(COMMENT_MUTATION, variables)
        comment = data.get("createComment")
        if not isinstance(comment, dict) or not comment.get("id"):
            raise VendorRejected(self.vendor, f"no comment was created on {fact_sheet_id}")
        return str(comment["id"])

    async def add_tags(self, fact_sheet_id: str, names: Sequence[str]) -> FactSheet:
        """Attach tags by name; LeanIX creates the ones that do not exist yet."""
        patch = Patch.json("add", "/tags", [{"tagName": name} for name in names])
        return await self.update_fact_sheet(fact_sheet_id, [patch])

    async def update_many(
        self, updates: Sequence[Update], batch_size: int = BATCH_SIZE
    ) -> list[UpdateResult]:
        """Apply many updates, `batch_size` per request; return one result per update, in order.

        A stale rev is re-read and retried in a later batch, after a jittered backoff. A
        request that fails as a whole raises; the updates of earlier batches have been
        applied by then.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        results: dict[int, UpdateResult] = {}
        pending = dict(enumerate(updates))
        for attempt in range(1, STALE_ATTEMPTS + 1):
            pending = await self._fill_revs(pending, results, batch_size)
            last = attempt == STALE_ATTEMPTS
            pending = await self._write(pending, results, batch_size, retry_stale=not last)
            if not pending:
                break
            await asyncio.sleep(stale_backoff_s(attempt))
        return [results[i] for i in range(len(updates))]

    async def _update_once(
        self,
        id: str,
        patches: Sequence[Patch],
        comment: str | None,
        rev: int | None,
        validate_only: bool,
    ) -> FactSheet:
        if rev is None:
            rev = (await self.fact_sheet(id)).rev
        variables = {
            "id": id,
            "rev": rev,
            "comment": comment,
            "patches": [p.variable() for p in patches],
            "validateOnly": validate_only,
        }
        data = await self.graphql(UPDATE_MUTATION, variables)
        result = data.get("updateFactSheet")
        return self._found(result.get("factSheet") if isinstance(result, dict) else None, id)

    def _found(self, node: Any, id: str) -> FactSheet:
        if not isinstance(node, dict):
            raise VendorRejected(self.vendor, f"fact sheet {id} not found", status=404)
        return FactSheet.from_node(node)

    async def post_metric(self, point: Mapping[str, Any]) -> None:
        """POST one Metrics API (v1) point, in the token's workspace unless it names one.

        The workspace comes from the JWT's principal.permission.workspaceId, a claim seen in
        LeanIX's own code but not documented: without it the point goes without one (the
        SDK's model requires no field), and LeanIX takes the token's workspace, we assume."""
        await self._access_token()  # learns the workspace from the token's claims
        if "workspaceId" not in point and self._workspace_id:
            point = {**point, "workspaceId": self._workspace_id}
        await self._post_json(METRICS_PATH, point, (200, 201, 202, 204))

    # --- update_many ------------------------------------------------------------------------

    async def _fill_revs(
        self, pending: dict[int, Update], results: dict[int, UpdateResult], batch_size: int
    ) -> dict[int, Update]:
        """Give every update without a rev the current one; record the unreadable as failed."""
        ids = list(dict.fromkeys(u.id for u in pending.values() if u.rev is None))
        revs: dict[str, int | tuple[Mapping[str, Any], ...]] = {}
        for chunk in _chunks(ids, batch_size):
            revs.update(await self._read_revs(chunk))
        ready: dict[int, Update] = {}
        for index, update in pending.items():
            found = update.rev if update.rev is not None else revs[update.id]
            if isinstance(found, int):
                ready[index] = dataclasses.replace(update, rev=found)
            else:
                results[index] = UpdateResult(update, errors=found)
        return ready

    async def _read_revs(
        self, ids: Sequence[str]
    ) -> dict[str, int | tuple[Mapping[str, Any], ...]]:
        """Read the revs of many fact sheets in one request: rev, or that alias's errors."""
        params = ", ".join(f"$id{n}: ID!" for n in range(len(ids)))
        reads = " ".join(f"r{n}: factSheet(id: $id{n}) {{ id rev }}" for n in range(len(ids)))
        answer = await self._execute(
            f"query Revs({params}) {{ {reads} }}", {f"id{n}": id for n, id in enumerate(ids)}
        )
        data, errors = by_alias(answer)
        revs: dict[str, int | tuple[Mapping[str, Any], ...]] = {}
        for n, id in enumerate(ids):
            node = data.get(f"r{n}")
            if isinstance(node, dict) and node.get("rev") is not None:
                revs[id] = as_int(node["rev"])
            else:
                revs[id] = errors_of(errors, f"r{n}", f"fact sheet {id} not found")
        return revs

    async def _write(
        self,
        pending: dict[int, Update],
        results: dict[int, UpdateResult],
        batch_size: int,
        retry_stale: bool,
    ) -> dict[int, Update]:
        """Send the updates a batch per request; record outcomes; return the stale to retry."""
        stale: dict[int, Update] = {}
        for chunk in _chunks(list(pending.items()), batch_size):
            answer = await self._execute(*batch_mutation([u for _, u in chunk]))
            data, errors = by_alias(answer)
            for n, (index, update) in enumerate(chunk):
                outcome = result_of(update, data.get(f"u{n}"), errors_of(errors, f"u{n}"))
                if retry_stale and any(is_stale(e) for e in outcome.errors):
                    stale[index] = dataclasses.replace(update, rev=None)
                else:
                    results[index] = outcome
        return stale

    # --- REST (the Webhooks API) -------------------------------------------------------------

    async def rest(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        """Call a LeanIX REST API as the technical user, paced like GraphQL; return its JSON.

        Re-authenticates once on a 401. The Webhooks API's success codes are not published
        (../shared/contracts/leanix.json: "2XX"), so any 2xx is taken.
        """
        data = None if body is None else orjson.dumps(body)
        for _ in (False, True):
            token = await self._access_token()
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            response = await self._paced(
                path, (*range(200, 300), 401), method, data=data, headers=headers, params=params
            )
            if response.status != 401:
                return response.json()
            self._forget(token)
        raise VendorRejected(
            self.vendor, f"{method} {path} refused a fresh access token (401)", status=401
        )

    # --- HTTP -------------------------------------------------------------------------------

    async def _execute(self, query: str, variables: dict[str, Any] | None) -> dict[str, Any]:
        """POST one operation; return the whole answer. Re-authenticate once on a 401."""
        body = {"query": query, "variables": variables or {}}
        return self._answer(await self._post_json(GRAPHQL_PATH, body, (200,)))

    async def _post_json(self, path: str, doc: Mapping[str, Any], ok: Collection[int]) -> Response:
        """POST a JSON document with the access token; re-authenticate once on a 401."""
        body = orjson.dumps(doc)
        for renewed in (False, True):
            token = await self._access_token()
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            response = await self._paced(path, (*ok, 401), data=body, headers=headers)
            if response.status != 401:
                return response
            self._forget(token)
            log.info("leanix.token.refused", renewed=renewed)
        raise VendorRejected(
            self.vendor, f"POST {path} refused a fresh access token (401)", status=401
        )

    async def _paced(
        self, path: str, ok: Collection[int], method: str = "POST", **kwargs: Any
    ) -> Response:
        """Call at the client's pace, waiting out 429s (Retry-After, else 1 s) within budget."""
        deadline = self._clock() + RATE_LIMITED_BUDGET_S
        wait_s: float | None = None
        for attempt in range(RATE_LIMITED_RETRIES + 1):
            await self.limiter.acquire()
            response = await self.call(method, self._base + path, ok=(*ok, 429), **kwargs)
            if response.status != 429:
                return response
            wait_s = retry_after(_header(response, "Retry-After"))
            wait_s = 1.0 if wait_s is None else wait_s
            if attempt == RATE_LIMITED_RETRIES or self._clock() + wait_s > deadline:
                break
            log.warning("leanix.rate_limited", path=path, wait_s=wait_s, attempt=attempt + 1)
            await self.limiter.hold(wait_s)  # the vendor asked for this wait: the next acquire
        raise VendorUnavailable(
            self.vendor, f"POST {path} is still rate limited (429)", retry_after_s=wait_s
        )

    def _answer(self, response: Response) -> dict[str, Any]:
        answer = response.json()
        if not isinstance(answer, dict):
            raise VendorUnavailable(self.vendor, f"POST {GRAPHQL_PATH} gave no GraphQL document")
        return answer

    def translate(self, where: str, response: Response) -> Exception:
        """The base translation, with any credential echoed in the body masked."""
        body = response.body
        for secret in (self.settings.api_token, self._token.value if self._token else ""):
            if secret:
                body = body.replace(secret.encode(), b"***")
        return super().translate(where, dataclasses.replace(response, body=body))

    # --- access token -----------------------------------------------------------------------

    async def _access_token(self) -> str:
        """The cached access token, fetched first if missing or due for renewal."""
        async with self._auth_lock:
            if self._token is None or self._clock() >= self._token.renew_at:
                self._token = await self._exchange()
                self._subject = self._token.subject or self._subject
                self._user_ids |= self._token.user_ids
                self._workspace_id = self._token.workspace_id or self._workspace_id
            return self._token.value

    def _forget(self, value: str) -> None:
        """Drop the cached token if it is still `value` (another caller may have renewed it)."""
        if self._token is not None and self._token.value == value:
            self._token = None

    async def _exchange(self) -> _AccessToken:
        """Trade the API token for an access token."""
        response = await self._paced(
            TOKEN_PATH,
            (200,),
            headers={
                "Authorization": aiohttp.encode_basic_auth("apitoken", self.settings.api_token)
            },
            data={"grant_type": "client_credentials"},
        )
        doc = response.json()
        value = doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(value, str) or not value:
            raise VendorUnavailable(self.vendor, f"POST {TOKEN_PATH} gave no access_token")
        expires_in = _positive(doc.get("expires_in"), default=3600.0)
        renew_at = self._clock() + expires_in - min(60.0, expires_in / 10)
        subject, user_ids = jwt_subject(value), jwt_user_ids(value)
        log.info("leanix.token.fetched", expires_in_s=expires_in, technical_user_id=subject)
        workspace = jwt_workspace_id(value)
        return _AccessToken(value, renew_at, subject, frozenset(user_ids), workspace)


# --- pure helpers ---------------------------------------------------------------------------


def rate_limit_key(settings: LeanixApi) -> str:
    """The shared bucket of this API token's user: a hash, never the token itself."""
    material = f"{settings.base_url.rstrip('/')}\n{settings.api_token}".encode()
    return "leanix:" + hashlib.sha256(material).hexdigest()[:40]


def jwt_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, read without verifying; {} if the token is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = orjson.loads(payload)
    except ValueError:  # binascii.Error and orjson.JSONDecodeError are ValueErrors
        return {}
    return claims if isinstance(claims, dict) else {}


def jwt_subject(token: str) -> str | None:
    """The `sub` claim of a JWT, read without verifying; None if the token is not a JWT."""
    subject = jwt_claims(token).get("sub")
    return subject if isinstance(subject, str) and subject else None


def jwt_user_ids(token: str) -> tuple[str, ...]:
    """The ids a JWT gives its user: `sub`, then `principal.id` when it differs."""
    claims = jwt_claims(token)
    principal = claims.get("principal")
    found = [claims.get("sub"), principal.get("id") if isinstance(principal, dict) else None]
    return tuple(dict.fromkeys(i for i in found if isinstance(i, str) and i))


def jwt_workspace_id(token: str) -> str | None:
    """The workspace of a JWT's `principal.permission.workspaceId` claim, if it has one."""
    principal = jwt_claims(token).get("principal")
    permission = principal.get("permission") if isinstance(principal, dict) else None
    found = permission.get("workspaceId") if isinstance(permission, dict) else None
    return found if isinstance(found, str) and found else None


def stale_backoff_s(attempt: int) -> float:
    """The pause after the `attempt`th stale write: full jitter over a doubling window, so
    writers that collided do not collide again in step."""
    window = min(STALE_BACKOFF_MAX_S, STALE_BACKOFF_S * 2 ** (attempt - 1))
    return random.uniform(0, window)


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _header(response: Response, name: str) -> str | None:
    """A response header, matched without regard to case (HTTP/2 sends lowercase names)."""
    wanted = name.lower()
    return next((v for k, v in response.headers.items() if k.lower() == wanted), None)


def _positive(value: Any, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return default
