"""Shared fixtures of the budget/ledger tests: the same tests run on SQLite and on PostgreSQL.

PostgreSQL tests need TOKENPILOT_TEST_PG_URL. Without it they are skipped on a developer's machine
and FAIL under CI (CI set), so a CI run can never silently skip the shared store.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Read at import: the autouse conftest fixture removes TOKENPILOT_* variables before each test.
PG_URL = os.environ.get("TOKENPILOT_TEST_PG_URL")
IN_CI = bool(os.environ.get("CI"))
STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def require_pg() -> str:
    if PG_URL:
        return PG_URL
    if IN_CI:
        pytest.fail("CI is set but TOKENPILOT_TEST_PG_URL is not: PostgreSQL tests must run in CI")
    pytest.skip("TOKENPILOT_TEST_PG_URL is not set (PostgreSQL tests run in CI)")


def pg_schema_url(base: str, schema: str) -> str:
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store: a SQLite file, or a new schema in the test PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "ledger.db")
        return
    import sqlalchemy

    base = require_pg()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield pg_schema_url(base, schema)
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()
