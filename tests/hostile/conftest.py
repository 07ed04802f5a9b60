"""Hostile tests: each tries an attack for real (a real socket, a real RabbitMQ, a real
PostgreSQL) and asserts its outcome, bounded in time and count. Each area keeps its
fixtures in its own files (tests/hostile/<area>_*.py) so that the files do not collide."""
