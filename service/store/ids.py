"""Keys: any string a sender chooses, as the store can key it (event ids above all).

CloudEvents allows any non-empty string as an event id, and LeanIX's ids, Fact Sheet ids
and event types make up other keys. The key columns hold 100 characters: PostgreSQL
refuses a longer value (SQLite would store it), and no text column takes a NUL. A string
of at most 100 characters, without NUL, that does not begin with "sha256:" is its own
key; any other is keyed by "sha256:" and the hex SHA-256 of its UTF-8 (71 characters).
The two kinds never meet, so two strings never share a key.

Every table keyed by an event id (handled, fact_sheet_sequence, runs, events, attempts)
maps it through `event_key`, in the store, so callers pass the id as the event has it.
"""

from __future__ import annotations

import hashlib

KEY_LENGTH = 100  # the length of every key column (schema.py)
HASHED = "sha256:"


def store_key(text: str, length: int = KEY_LENGTH) -> str:
    """`text` as a key column of `length` characters holds it: itself, or its hash."""
    if len(text) <= length and "\x00" not in text and not text.startswith(HASHED):
        return text
    return HASHED + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def event_key(event_id: str) -> str:
    """The key of an event id in every table that keys on one."""
    return store_key(event_id)
