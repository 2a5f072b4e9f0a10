"""Budget rows (SQL): set and remove a budget, counting it afresh from the ledger when it is set.

Setting a budget on an existing ledger recounts its scope (a scan of the records beneath it, once),
so its counters are exact from the start. On PostgreSQL it first locks the reservation and record
tables against writers: a hold or record that commits during the recount would otherwise be missed.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.engine import Connection

from tokenpilot._account import schema as s
from tokenpilot._account.counters import recount
from tokenpilot._budget import Budget


def _lock_writers(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        # Conflicts with the ROW EXCLUSIVE lock every reserve, settle, record and import takes first.
        conn.exec_driver_sql("LOCK TABLE tp_reservations, tp_records IN SHARE ROW EXCLUSIVE MODE")


def upsert_budget(conn: Connection, budget: Budget, now: float) -> None:
    """Create or replace the budget on `budget.scope` and recount it."""
    _lock_writers(conn)
    values = budget.as_dict()
    updated = conn.execute(
        s.budgets.update()
        .where(s.budgets.c.scope == budget.scope)
        .values(**{k: v for k, v in values.items() if k != "scope"}, updated_at=now)
    )
    if updated.rowcount == 0:
        conn.execute(s.budgets.insert().values(**values, created_at=now, updated_at=now))
    recount(conn, budget, now)


def delete_budget(conn: Connection, scope: str) -> bool:
    """Remove the budget on exactly `scope` and its counters; the records stay."""
    conn.execute(delete(s.spent).where(s.spent.c.scope == scope))
    return bool(conn.execute(delete(s.budgets).where(s.budgets.c.scope == scope)).rowcount)
