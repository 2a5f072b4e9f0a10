"""One schema for SQLite and PostgreSQL (SQLAlchemy Core), with named migrations applied on open.

A new database gets the current tables in one step, with every migration recorded as applied; a
database from an older tokenpilot gets the migrations it lacks, in order. `tp_migrations` keeps the
name of each applied migration and the time it was applied.

Times are Unix seconds (float) so both stores compare and sum them the same way. Scopes use binary
collation on PostgreSQL ("C") as SQLite does, so subtree range scans (`scope >= 'a/' AND scope <
'a0'`) mean the same thing on both.
"""

from __future__ import annotations

import time
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
    false,
    select,
    text,
)
from sqlalchemy.engine import Connection

metadata = MetaData()

Scope = String(400).with_variant(String(400, collation="C"), "postgresql")
# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
RowId = BigInteger().with_variant(Integer(), "sqlite")
Tokens = BigInteger()
Seconds = Float(precision=53)

# The numbered schema of tokenpilot before named migrations; version N = the first N migrations.
schema_version = Table(
    "tp_schema",
    metadata,
    Column("version", Integer, nullable=False),
)

migrations = Table(
    "tp_migrations",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("applied_at", Seconds, nullable=False),
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
    # Counters, kept in the same transaction as the records and holds that change them, so that a
    # reservation is one conditional UPDATE of this row. `bucket` is the period bucket they count
    # (see `tokenpilot._budget.periods`); spent_* is the whole counted window, bucket_* its newest
    # bucket only (the same for calendar periods); dollars are whole nano-dollars so sums are exact.
    Column("bucket", Seconds, nullable=False, server_default=text("0")),
    *(
        Column(f"{kind}_{unit}", Tokens, nullable=False, server_default=text("0"))
        for kind in ("spent", "bucket", "reserved")
        for unit in ("input", "output", "nusd")
    ),
    *(
        Column(f"{kind}_{unit}", Tokens, nullable=False, server_default=text("0"))
        for kind in ("spent", "bucket")
        for unit in ("calls", "unknown")
    ),
    Column("holds", Tokens, nullable=False, server_default=text("0")),
)

# Spend per budget and bucket, for every bucket but the one a budget row counts itself.
spent = Table(
    "tp_spent",
    metadata,
    Column("scope", Scope, primary_key=True),
    Column("bucket", Seconds, primary_key=True),
    Column("input", Tokens, nullable=False),
    Column("output", Tokens, nullable=False),
    Column("nusd", Tokens, nullable=False),
    Column("calls", Tokens, nullable=False),
    Column("unknown", Tokens, nullable=False),
)
COUNTER_COLUMNS = tuple(
    c.name for c in budgets.c if c.name.startswith(("spent_", "bucket_", "reserved_")) or c.name == "holds"
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
    Column("session", String(200)),
    Column("provider", String(100)),
    # Only live holds are kept (settling deletes the row), so a scan finds expired ones: no index
    # on expires_at, and on SQLite no rowid, so a hold writes one B-tree page instead of three.
    sqlite_with_rowid=False,
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
    Column("session", String(200)),
    Column("http_status", Integer),
    Column("ttft_s", Float(precision=53)),
    Column("usage_estimated", Boolean, nullable=False, server_default=false()),
    Column("max_tokens_requested", Tokens),
    Column("optimized_from", Tokens),
    Column("optimized_to", Tokens),
    Column("optimize_actions", Text),
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


TABLES = (migrations, budgets, spent, reservations, records, alerts)


def _add_columns(conn: Connection, table: Table, names: tuple[str, ...]) -> None:
    """ALTER TABLE … ADD COLUMN for `names`, typed and defaulted as `table` declares them."""
    for name in names:
        column = table.c[name]
        ddl = f"ALTER TABLE {table.name} ADD COLUMN {name} {column.type.compile(dialect=conn.dialect)}"
        if isinstance(column.type, Boolean):
            ddl += " NOT NULL DEFAULT " + ("false" if conn.dialect.name == "postgresql" else "0")
        elif column.server_default is not None:
            ddl += " NOT NULL DEFAULT 0"
        conn.execute(text(ddl))


def m001_initial(conn: Connection) -> None:
    """Budgets, reservations, records (with task_type) and alerts: tokenpilot's schema version 1."""
    raise AssertionError("m001 is never applied alone: a new database gets the current tables")


def m002_call_details(conn: Connection) -> None:
    """Session, HTTP status, time to first token, estimated usage and the proxy's rewrite per call."""
    _add_columns(
        conn,
        records,
        (
            "session",
            "http_status",
            "ttft_s",
            "usage_estimated",
            "max_tokens_requested",
            "optimized_from",
            "optimized_to",
            "optimize_actions",
        ),
    )
    _add_columns(conn, reservations, ("session", "provider"))


def m003_counters(conn: Connection) -> None:
    """Spent and reserved counters per budget and period bucket, counted from the existing ledger."""
    _add_columns(conn, budgets, ("bucket", *COUNTER_COLUMNS))
    spent.create(conn)
    # Holds are found by expiry; by scope only when a budget is recounted. One index less to write.
    conn.execute(text("DROP INDEX IF EXISTS tp_reservations_scope"))
    from tokenpilot._account.counters import recount_all

    recount_all(conn, time.time())


def m005_lean_reservations(conn: Connection) -> None:
    """Reservations without the expiry index, and on SQLite in one B-tree keyed by id (no rowid)."""
    conn.execute(text("DROP INDEX IF EXISTS tp_reservations_expires"))
    if conn.dialect.name != "sqlite":
        return
    conn.execute(text("ALTER TABLE tp_reservations RENAME TO tp_reservations_m004"))
    reservations.create(conn)
    names = ", ".join(c.name for c in reservations.c)
    conn.execute(text(f"INSERT INTO tp_reservations ({names}) SELECT {names} FROM tp_reservations_m004"))
    conn.execute(text("DROP TABLE tp_reservations_m004"))


def m004_hot_path_functions(conn: Connection) -> None:
    """PostgreSQL: the one-round-trip reserve and settle functions (`tokenpilot._account.hot_path`)."""
    # Made by `migrate` after every migration run, this one included; nothing to do on SQLite.


# Applied in this order. Never edit a released entry: append a new one (ALTER TABLE …) and change the
# table definitions above to match, since a new database is created from them directly.
MIGRATIONS: tuple[tuple[str, Callable[[Connection], None]], ...] = (
    ("m001_initial", m001_initial),
    ("m002_call_details", m002_call_details),
    ("m003_counters", m003_counters),
    ("m004_hot_path_functions", m004_hot_path_functions),
    ("m005_lean_reservations", m005_lean_reservations),
)
MIGRATION_NAMES = tuple(name for name, _ in MIGRATIONS)


def applied_migrations(conn: Connection) -> list[str] | None:
    """Names of the applied migrations; None when the database has no tokenpilot schema at all."""
    if conn.dialect.has_table(conn, migrations.name):
        return [row[0] for row in conn.execute(select(migrations.c.name).order_by(migrations.c.applied_at))]
    if conn.dialect.has_table(conn, schema_version.name):
        version = int(conn.execute(select(schema_version.c.version)).scalar() or 0)
        return [f"m{number:03d}" for number in range(1, version + 1)] or None
    return None


def unknown_migrations(applied: list[str]) -> list[str]:
    """Applied migrations this tokenpilot does not know (the database is from a newer one)."""
    known = set(MIGRATION_NAMES) | {name[:4] for name in MIGRATION_NAMES}
    return [name for name in applied if name not in known]


def pending_migrations(applied: list[str] | None) -> list[str]:
    if applied is None:
        return list(MIGRATION_NAMES)
    done = set(applied)
    return [name for name in MIGRATION_NAMES if name not in done and name[:4] not in done]


def migrate(conn: Connection) -> list[str]:
    """Bring the schema up to date inside the caller's transaction; return the migrations applied."""
    applied = applied_migrations(conn)
    now = time.time()
    if applied is None:
        schema_version.drop(conn, checkfirst=True)
        for table in TABLES:
            table.create(conn)
        conn.execute(migrations.insert(), [{"name": name, "applied_at": now} for name in MIGRATION_NAMES])
        _create_functions(conn)
        return list(MIGRATION_NAMES)
    if not conn.dialect.has_table(conn, migrations.name):
        # A numbered (pre-named) schema: record its migrations under their names, then drop the number.
        migrations.create(conn)
        legacy = [name for name in MIGRATION_NAMES if name[:4] in set(applied)]
        if legacy:
            conn.execute(migrations.insert(), [{"name": name, "applied_at": now} for name in legacy])
        schema_version.drop(conn)
        applied = legacy
    pending = pending_migrations(applied)
    for name in pending:
        dict(MIGRATIONS)[name](conn)
        conn.execute(migrations.insert().values(name=name, applied_at=time.time()))
    if pending:
        _create_functions(conn)
    return pending


def _create_functions(conn: Connection) -> None:
    # The hot path's PostgreSQL functions name the tables' columns: made again whenever they change.
    from tokenpilot._account.hot_path import create_functions

    create_functions(conn)
