"""Store outages: which errors are waited for (503, retry later) and which stop start-up."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from service.store import outages

URL = "postgresql+asyncpg://bridge:PWsecret@db.internal:5432/bridge"


class PgError(Exception):
    def __init__(self, text: str, sqlstate: str) -> None:
        super().__init__(text)
        self.sqlstate = sqlstate


def wrapped(orig: Exception) -> sa.exc.DBAPIError:
    return sa.exc.DBAPIError("SELECT 1", {}, orig)


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        OSError(-2, "Name or service not known"),
        sa.exc.TimeoutError("QueuePool limit reached"),
        wrapped(PgError("the database system is starting up", "57P03")),
        wrapped(PgError("sorry, too many clients already", "53300")),
        wrapped(PgError("connection does not exist", "08003")),
        wrapped(Exception("database is locked")),
    ],
)
def test_what_waiting_cures_is_an_outage(exc: BaseException) -> None:
    assert outages.is_outage(exc)


@pytest.mark.parametrize(
    "exc",
    [
        wrapped(PgError('database "bridge" does not exist', "3D000")),
        wrapped(PgError('password authentication failed for user "bridge"', "28P01")),
        wrapped(PgError('relation "runs" does not exist', "42P01")),
        ValueError("a bug"),
    ],
)
def test_what_waiting_does_not_cure_is_not(exc: BaseException) -> None:
    assert not outages.is_outage(exc)


def test_the_store_is_named_as_an_operator_knows_it() -> None:
    assert outages.name(URL) == "the store (PostgreSQL)"
    assert outages.name("sqlite+aiosqlite:///var/x.sqlite3") == "the store (SQLite)"


def test_a_description_is_one_line_without_the_password() -> None:
    exc = wrapped(PgError("login as bridge:PWsecret refused\nDETAIL: more", "28P01"))
    assert outages.describe(exc, URL) == "login as bridge:*** refused"
    assert outages.describe(TimeoutError(), URL) == "TimeoutError"
