"""One schema for SQLite and PostgreSQL (SQLAlchemy Core), with numbered migrations applied on open.

Times are Unix seconds (float) so both stores compare and sum them the same way. Scopes use binary
collation on PostgreSQL ("C") as SQLite does, so subtree range scans (`scope >= 'a/' AND scope <
'a0'`) mean the same thing on both.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)
from sqlalchemy.engine import Connection

metadata = MetaData()

Scope = String(400).with_variant(String(400, collation="C"), "postgresql")
# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
RowId = BigInteger().with_variant(Integer(), "sqlite")
Tokens = BigInteger()
Seconds = Float(precision=53)

schema_version = Table(
    "tp_schema",
    metadata,
    Column("version", Integer, nullable=False),
)

budgets = Table(
    "tp_budgets",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("scope", Scope, nullable=False, unique=True),
    Column("tokens", Tokens),
    Column("input_tokens", Tokens),
    Column("output_tokens", Tokens),
    Column("usd", Float(precision=53)),
    Column("period", String(32), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("warn_at", Float(precision=53), nullable=False),
    Column("created_at", Seconds, nullable=False),
    Column("updated_at", Seconds, nullable=False),
)

reservations = Table(
    "tp_reservations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("scope", Scope, nullable=False),
    Column("model", String(200), nullable=False),
    Column("phase", String(200)),
    Column("agent", String(200)),
    Column("task_type", String(200)),
    Column("request_id", String(200)),
    Column("attempt", Integer, nullable=False),
    Column("input_tokens", Tokens, nullable=False),
    Column("output_tokens", Tokens, nullable=False),
    Column("usd", Float(precision=53)),
    Column("created_at", Seconds, nullable=False),
    Column("expires_at", Seconds, nullable=False),
    Column("holder", String(200)),
    Index("tp_reservations_scope", "scope"),
    Index("tp_reservations_expires", "expires_at"),
)

records = Table(
    "tp_records",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("ts", Seconds, nullable=False),
    Column("scope", Scope, nullable=False),
    Column("phase", String(200)),
    Column("agent", String(200)),
    Column("task_type", String(200)),
    Column("model", String(200), nullable=False),
    Column("provider", String(100)),
    Column("request_id", String(200)),
    Column("reservation_id", String(32)),
    Column("input_tokens", Tokens, nullable=False),
    Column("output_tokens", Tokens, nullable=False),
    Column("cache_read_tokens", Tokens, nullable=False),
    Column("cache_write_tokens", Tokens, nullable=False),
    Column("reasoning_tokens", Tokens, nullable=False),
    Column("max_tokens", Tokens),
    Column("output_utilization", Float(precision=53)),
    Column("finish_reason", String(64)),
    Column("truncated", Boolean, nullable=False),
    Column("cost_usd", Float(precision=53)),
    Column("latency_s", Float(precision=53)),
    Column("attempt", Integer, nullable=False),
    Column("status", String(32), nullable=False),
    Column("error", Text),
    Column("source", String(32), nullable=False),
    Index("tp_records_scope_ts", "scope", "ts"),
    Index("tp_records_ts", "ts"),
)

alerts = Table(
    "tp_alerts",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("ts", Seconds, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("scope", Scope),
    Column("model", String(200)),
    Column("message", Text, nullable=False),
    Column("data", Text, nullable=False),
    # One alert per key (e.g. one capacity warning per budget and period); NULL = no de-duplication.
    Column("dedupe_key", String(600), unique=True),
    Column("acknowledged_at", Seconds),
    Index("tp_alerts_ts", "ts"),
)


def _migration_1(conn: Connection) -> None:
    """Budgets, reservations, records (with task_type) and alerts."""
    for table in (budgets, reservations, records, alerts):
        table.create(conn)


# Numbered migrations: entry i brings the schema from version i to i + 1. Never edit a released
# entry; append a new one (ALTER TABLE …) and change the table definitions above to match.
MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_migration_1,)
LATEST_VERSION = len(MIGRATIONS)


def current_version(conn: Connection) -> int:
    """The schema version stored in the database (0 for an empty database)."""
    if not conn.dialect.has_table(conn, schema_version.name):
        return 0
    value = conn.execute(select(schema_version.c.version)).scalar()
    return int(value or 0)


def migrate(conn: Connection) -> int:
    """Apply every pending migration inside the caller's transaction; return the new version."""
    version = current_version(conn)
    if version == 0 and not conn.dialect.has_table(conn, schema_version.name):
        schema_version.create(conn)
        conn.execute(schema_version.insert().values(version=0))
    for number in range(version, LATEST_VERSION):
        MIGRATIONS[number](conn)
        conn.execute(schema_version.update().values(version=number + 1))
    return max(version, LATEST_VERSION)
