"""Admin API keys: scoped, optionally bound to networks, stored as hashes.

A key reads `lxb_<id>_<secret>`. Only the SHA-256 of the secret is stored (the secret is
32 random bytes, so a fast hash is enough); the key is shown once, when created, and is
compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from service.store.schema import api_keys

SCOPES = frozenset({"events:read", "events:replay", "runs:read", "rules:read", "status:read"})
PREFIX = "lxb"


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: frozenset[str]
    allow_from: tuple[str, ...]
    created_at: float
    revoked_at: float | None = None
    last_used_at: float | None = None

    def allows(self, address: str | None) -> bool:
        """Whether a call from `address` may use this key (no list: from anywhere)."""
        if not self.allow_from:
            return True
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(net, strict=False) for net in self.allow_from)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "scopes": sorted(self.scopes),
            "allow_from": list(self.allow_from), "created_at": self.created_at,
            "revoked_at": self.revoked_at, "last_used_at": self.last_used_at,
        }  # fmt: skip


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_scopes(scopes: list[str]) -> frozenset[str]:
    """The scopes, if every one is known; ValueError naming the others."""
    unknown = sorted(set(scopes) - SCOPES)
    if unknown or not scopes:
        raise ValueError(f"unknown scopes {unknown}; choose from {sorted(SCOPES)}")
    return frozenset(scopes)


def check_networks(networks: list[str]) -> tuple[str, ...]:
    for net in networks:
        ipaddress.ip_network(net, strict=False)  # ValueError names the bad one
    return tuple(networks)


class KeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(
        self, name: str, scopes: list[str], allow_from: list[str]
    ) -> tuple[ApiKey, str]:
        """A new key and its full text (shown once)."""
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        row = {
            "id": key_id, "name": name, "secret_hash": _digest(secret),
            "scopes": " ".join(sorted(check_scopes(scopes))),
            "allow_from": " ".join(check_networks(allow_from)), "created_at": time.time(),
        }  # fmt: skip
        async with self.engine.begin() as connection:
            await connection.execute(api_keys.insert().values(**row))
        key = await self.get(key_id)
        assert key is not None
        return key, f"{PREFIX}_{key_id}_{secret}"

    async def verify(self, presented: str) -> ApiKey | None:
        """The live key behind a presented text, or None."""
        prefix, _, rest = presented.partition("_")
        key_id, _, secret = rest.partition("_")
        if prefix != PREFIX or not key_id or not secret:
            return None
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(sa.select(api_keys).where(api_keys.c.id == key_id))
            ).first()
        expected = row.secret_hash if row is not None else _digest("no such key")
        matches = hmac.compare_digest(_digest(secret), expected)
        if row is None or not matches or row.revoked_at is not None:
            return None
        await self._touch(key_id)
        return _key(row)

    async def get(self, key_id: str) -> ApiKey | None:
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(sa.select(api_keys).where(api_keys.c.id == key_id))
            ).first()
        return _key(row) if row is not None else None

    async def list(self) -> list[ApiKey]:
        async with self.engine.connect() as connection:
            rows = await connection.execute(sa.select(api_keys).order_by(api_keys.c.created_at))
            return [_key(row) for row in rows]

    async def revoke(self, key_id: str) -> bool:
        statement = (
            api_keys.update()
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=time.time())
        )
        async with self.engine.begin() as connection:
            return (await connection.execute(statement)).rowcount == 1

    async def _touch(self, key_id: str) -> None:
        statement = (
            api_keys.update().where(api_keys.c.id == key_id).values(last_used_at=time.time())
        )
        async with self.engine.begin() as connection:
            await connection.execute(statement)


def _key(row: sa.Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id, name=row.name, scopes=frozenset(row.scopes.split()),
        allow_from=tuple(row.allow_from.split()), created_at=row.created_at,
        revoked_at=row.revoked_at, last_used_at=row.last_used_at,
    )  # fmt: skip
