"""Shared rate limits: one token bucket per API user, in the store every worker shares.

A bucket is a row: its level `tokens` at time `stamp` (unix seconds). Taking tokens is
one atomic UPDATE ... RETURNING (a row lock on PostgreSQL, the write lock on SQLite), so
workers on any number of hosts draw from one bucket:

    level  = min(burst, tokens + max(0, now - stamp) * rate)
    tokens = level - count          below 0: tokens owed, due one per 1/rate after stamp
    stamp  = max(now, stamp)        ahead of now while an API's Retry-After holds

`hold` is that Retry-After: nothing is due before `until`. The caller turns an answer into
due times (service/clients/ratelimit.py). Database errors are raised as ConnectionError,
so the caller can pace on its own meanwhile.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from service.store.schema import rate_limits as table


def _later(column: Any, moment: float) -> Any:
    """max(column, moment), in SQL both databases speak."""
    return sa.case((table.c[column] < moment, sa.literal(moment, sa.Float)), else_=table.c[column])


def _level(rate_per_s: float, burst: float, now: float) -> Any:
    """The bucket's level at `now`: refilled since its stamp, at most `burst`."""
    elapsed = sa.case((table.c.stamp < now, now - table.c.stamp), else_=sa.literal(0.0, sa.Float))
    refilled = table.c.tokens + elapsed * rate_per_s
    return sa.case((refilled > burst, sa.literal(burst, sa.Float)), else_=refilled)


class RateLimitStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def take(
        self, name: str, count: int, rate_per_s: float, burst: float, now: float
    ) -> tuple[float, float]:
        """Take `count` tokens at `now`; answer the bucket's (tokens, stamp) after it."""
        values = {"tokens": _level(rate_per_s, burst, now) - count, "stamp": _later("stamp", now)}
        statement = table.update().where(table.c.name == name).values(**values)
        row = await self._upsert(statement, name, tokens=burst, stamp=now)
        return float(row[0]), float(row[1])

    async def hold(self, name: str, rate_per_s: float, now: float, until: float) -> None:
        """Let nothing new fall due before `until` (a 429's Retry-After, for every worker)."""
        level = _level(rate_per_s, 0.0, now)  # at most 0: what is still owed stays owed
        values = {"tokens": level, "stamp": _later("stamp", until)}
        statement = table.update().where(table.c.name == name).values(**values)
        await self._upsert(statement, name, tokens=0.0, stamp=until)

    async def _upsert(self, update: sa.Update, name: str, **new: float) -> tuple[Any, ...]:
        """Run `update` on the bucket, creating it with `new` first if it does not exist."""
        returning = update.returning(table.c.tokens, table.c.stamp)
        try:
            for _ in range(2):
                async with self.engine.begin() as connection:
                    row = (await connection.execute(returning)).first()
                if row is not None:
                    return tuple(row)
                await self._create(name, new)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            # The type only: a driver's text may carry the database URL.
            raise ConnectionError(f"the store is unreachable ({type(exc).__name__})") from None
        raise ConnectionError(f"the rate limit bucket {name!r} vanished while in use")

    async def _create(self, name: str, new: dict[str, float]) -> None:
        try:
            async with self.engine.begin() as connection:
                await connection.execute(table.insert().values(name=name, **new))
        except sa.exc.IntegrityError:
            pass  # another worker created it first
