"""The durable store: run tracking, handled events, Fact Sheet sequence numbers, and the
rate limits every worker shares.

One code path (SQLAlchemy Core, async) over an embedded SQLite file by default and
PostgreSQL for deployments with several workers. The schema is migrated at start-up.
"""

from service.store.database import Database

__all__ = ["Database"]
