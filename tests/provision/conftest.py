"""A real PostgreSQL server for the records tests (tests/postgres.py)."""

from tests.postgres import postgres_url  # noqa: F401  (fixture)
