"""Store outages: which errors mean "the store cannot be reached now" and how to say so.

An outage is waited for at start-up and answered 503 + Retry-After by the admin API: the
server refused or dropped the connection, did not answer in time, is starting or shutting
down, or has no connection slot free. Anything else (a refused login, a missing database,
an error in our SQL) is not cured by waiting. A description never carries the password.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import make_url

# SQLSTATEs that waiting cures: class 08 (connection exception), class 53 (insufficient
# resources: too many connections), 57P01-57P03 (shutting down, crashed, starting up).
_PASSING_STATES = ("08", "53", "57P01", "57P02", "57P03")
_NAMES = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` says the store is unreachable for now (retry later)."""
    if isinstance(exc, OSError | sa.exc.TimeoutError):  # refused, unreachable, timed out
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    state = getattr(exc.orig, "sqlstate", None)
    if isinstance(state, str):
        return state.startswith(_PASSING_STATES)
    return "database is locked" in str(exc.orig)  # SQLite: another writer held on too long


def name(url: str | sa.URL) -> str:
    """`the store (PostgreSQL)`: what an operator knows it as."""
    backend = make_url(url).get_backend_name()
    return f"the store ({_NAMES.get(backend, backend)})"


def describe(exc: BaseException, url: str | sa.URL) -> str:
    """What went wrong, on one line, without the password of `url`."""
    cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    text = (lines[0] if lines else "") or type(cause).__name__
    password = make_url(url).password
    if password:
        text = text.replace(str(password), "***")
    return text[:300]
